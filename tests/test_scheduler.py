"""Scheduling decisions with an injected clock: restarts, catch-up, and the digest across DST."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from watcher.scheduler import (
    DIGEST_GRACE,
    catch_up_digest,
    digest_key,
    digest_slot,
    digest_window,
    misfire_grace,
    next_digest_time,
    plan_first_runs,
    previous_digest_time,
)

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


@dataclass(frozen=True)
class T:
    id: str
    every: timedelta = 6 * H


def interval(t: T) -> timedelta:
    return t.every


def test_a_restart_keeps_each_targets_place_in_its_cycle() -> None:
    targets = [T("a"), T("b", every=12 * H)]
    last = {"a": NOW - 1 * H, "b": NOW - 2 * H}
    plan = plan_first_runs(targets, last, NOW, interval, spread=10 * timedelta(minutes=1))
    assert plan == {"a": NOW + 5 * H, "b": NOW + 10 * H}


def test_overdue_targets_run_first_most_overdue_first_and_spread_out() -> None:
    targets = [T("late"), T("fine"), T("new"), T("later"), T("due-now")]
    last: dict[str, datetime | None] = {
        "late": NOW - 7 * H,  # due 1h ago
        "fine": NOW - 1 * H,
        "new": None,  # never checked: first of all
        "later": NOW - 30 * H,  # due a day ago
        "due-now": NOW - 6 * H,  # due exactly now: due, not "on schedule"
    }
    plan = plan_first_runs(targets, last, NOW, interval, spread=timedelta(minutes=4))
    order = sorted((t for t in plan if plan[t] <= NOW + timedelta(minutes=4)), key=plan.get)
    assert order == ["new", "later", "late", "due-now"]
    assert [plan[t] - NOW for t in order] == [timedelta(minutes=m) for m in (0, 1, 2, 3)]
    assert plan["fine"] == NOW + 5 * H


def test_no_spread_runs_every_overdue_target_at_once() -> None:
    plan = plan_first_runs([T("a"), T("b")], {}, NOW, interval, spread=timedelta(0))
    assert plan == {"a": NOW, "b": NOW}


def test_misfire_grace_covers_one_interval_so_a_backlog_coalesces_into_one_check() -> None:
    assert misfire_grace(6 * H, timedelta(minutes=15)) == 6 * 3600 + 900
    assert misfire_grace(timedelta(0), timedelta(0)) == 1


def _slots_between(first: date, last: date, at: time) -> list[datetime]:
    """Chain next_digest_time from midnight before ``first``, as the daemon does."""
    now = datetime.combine(first, time(0), tzinfo=NY).astimezone(UTC) - timedelta(seconds=1)
    slots = []
    while True:
        now = next_digest_time(now, at, NY)
        if now.astimezone(NY).date() > last:
            return slots
        slots.append(now)


@pytest.mark.parametrize("at", [time(8, 0), time(2, 30), time(1, 30), time(0, 0), time(23, 59)])
@pytest.mark.parametrize("change", [date(2026, 3, 8), date(2026, 11, 1)])
def test_one_digest_per_local_day_across_dst(at: time, change: date) -> None:
    first, last = change - timedelta(days=3), change + timedelta(days=3)
    slots = _slots_between(first, last, at)
    days = [s.astimezone(NY).date() for s in slots]
    assert days == [first + timedelta(days=i) for i in range(7)]  # none skipped, none doubled
    for s in slots:
        assert previous_digest_time(s, at, NY) == s
        assert previous_digest_time(s - timedelta(seconds=1), at, NY) < s


def test_a_digest_at_a_skipped_time_goes_out_once_just_after_the_gap() -> None:
    slot = digest_slot(date(2026, 3, 8), time(2, 30), NY)  # 02:30 does not exist that night
    assert slot == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 03:30 EDT
    assert slot.astimezone(NY).hour == 3
    before = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)  # 01:00 EST
    assert next_digest_time(before, time(2, 30), NY) == slot
    assert next_digest_time(slot, time(2, 30), NY) == datetime(2026, 3, 9, 6, 30, tzinfo=UTC)


def test_a_digest_at_a_repeated_time_goes_out_at_the_first_occurrence_only() -> None:
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT; 06:30 UTC is 01:30 EST
    assert digest_slot(date(2026, 11, 1), time(1, 30), NY) == first
    assert next_digest_time(first, time(1, 30), NY) == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


def test_digest_hour_follows_local_time_across_the_change() -> None:
    assert digest_slot(date(2026, 3, 7), time(8), NY) == datetime(2026, 3, 7, 13, tzinfo=UTC)
    assert digest_slot(date(2026, 3, 8), time(8), NY) == datetime(2026, 3, 8, 12, tzinfo=UTC)


def test_digest_window_starts_where_the_last_scheduled_digest_ended() -> None:
    slot = digest_slot(date(2026, 3, 8), time(8), NY)
    # First digest: the local day before, 23 hours long on the spring-forward day.
    start, end = digest_window(slot, time(8), NY, None)
    assert (start, end) == (digest_slot(date(2026, 3, 7), time(8), NY), slot)
    assert end - start == 23 * H
    # After an outage the window reaches back to the last digest, so nothing falls between.
    last_end = slot - timedelta(days=3)
    assert digest_window(slot, time(8), NY, last_end) == (last_end, slot)
    # ...but not forever.
    assert digest_window(slot, time(8), NY, slot - timedelta(days=30))[0] == start


def test_digest_key_is_one_per_local_day() -> None:
    slot = digest_slot(date(2026, 11, 24), time(23, 30), NY)  # already the 25th in UTC
    assert digest_key(slot, NY) == "digest:day:2026-11-24"


def test_catch_up_only_a_recent_unsent_digest_of_a_watched_day() -> None:
    slot = NOW - H
    watched = NOW - 48 * H
    assert catch_up_digest(NOW, slot, already_queued=False, first_check=watched)
    assert not catch_up_digest(NOW, slot, already_queued=True, first_check=watched)
    assert not catch_up_digest(NOW, slot, already_queued=False, first_check=None)
    assert not catch_up_digest(NOW, slot, already_queued=False, first_check=NOW - 0.5 * H)
    old = NOW - DIGEST_GRACE - H
    assert not catch_up_digest(NOW, old, already_queued=False, first_check=watched)
