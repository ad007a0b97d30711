"""When things happen in ``watcher run``: pure functions of the clock, the config and history.

The daemon (``watcher.daemon``) only wires these answers into APScheduler. Keeping the
decisions here, with ``now`` passed in, lets the tests walk through restarts and daylight-saving
changes without waiting for a real clock.

Decisions, written down once:

- **A restart never resets the schedule.** A target's first run after start is its last
  recorded check plus its interval. Targets that are already due (or were never checked) run
  first, most overdue first, spread evenly over ``spread`` so a restart is not a stampede.
- **One digest per local day.** The digest goes out at ``notify.digest.at`` in
  ``settings.timezone``. On the spring-forward day a time that does not exist (02:30 in New
  York) is read with the offset before the change, so it goes out once at 03:30; on the
  fall-back day a time that happens twice goes out at its first occurrence only.
- **A digest window starts where the last scheduled digest ended**, so nothing falls between
  two digests even if one was late or the daemon was down; it is capped at ``MAX_WINDOW``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

# A digest older than this when the daemon starts is not sent late; the next one covers it.
DIGEST_GRACE = timedelta(hours=12)
# The longest span one digest reports on (after a long outage, say).
MAX_WINDOW = timedelta(days=7)


class HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=HasId)


def plan_first_runs(
    targets: Iterable[T],
    last_checked: Mapping[str, datetime | None],
    now: datetime,
    interval_of: Callable[[T], timedelta],
    spread: timedelta,
) -> dict[str, datetime]:
    """The first run of each target after a start or reload.

    A target that is due (last check + interval <= now) or was never checked runs between
    ``now`` and ``now + spread``: never-checked first, then most overdue first, evenly spaced.
    Every other target keeps its place in its cycle: last check + interval.
    """
    overdue: list[tuple[datetime | None, str]] = []
    plan: dict[str, datetime] = {}
    for target in targets:
        last = last_checked.get(target.id)
        due = last + interval_of(target) if last is not None else None
        if due is None or due <= now:
            overdue.append((due, target.id))
        else:
            plan[target.id] = due
    # None (never checked) sorts before any time; ties keep config order via the stable sort.
    overdue.sort(key=lambda d: (d[0] is not None, d[0] or now))
    step = spread / len(overdue) if overdue else timedelta(0)
    for i, (_, target_id) in enumerate(overdue):
        plan[target_id] = now + step * i
    return plan


def misfire_grace(interval: timedelta, jitter: timedelta) -> int:
    """Seconds a check may run late and still run.

    With ``coalesce`` a backlog collapses to its newest missed run, which is never more than one
    interval (plus jitter) old. A grace of that size therefore turns any backlog (a suspended
    VM, a stalled loop) into exactly one check, never zero and never a burst.
    """
    return max(1, int((interval + jitter).total_seconds()))


# --- the daily digest ----------------------------------------------------------------------


def digest_slot(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The digest moment on local date ``day``, as an aware datetime in UTC.

    ``fold=0`` picks the first of two repeated local times (fall back) and reads a skipped
    local time with the offset before the change (spring forward), so every local date has
    exactly one slot.
    """
    return datetime.combine(day, at).replace(tzinfo=tz, fold=0).astimezone(UTC)


def next_digest_time(now: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The first digest slot strictly after ``now``."""
    today = now.astimezone(tz).date()
    for offset in range(-1, 3):
        slot = digest_slot(today + timedelta(days=offset), at, tz)
        if slot > now:
            return slot
    raise AssertionError("unreachable: a slot exists on every local day")


def previous_digest_time(now: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The latest digest slot at or before ``now``."""
    today = now.astimezone(tz).date()
    for offset in range(1, -3, -1):
        slot = digest_slot(today + timedelta(days=offset), at, tz)
        if slot <= now:
            return slot
    raise AssertionError("unreachable: a slot exists on every local day")


def digest_key(slot: datetime, tz: ZoneInfo) -> str:
    """The outbox dedupe key of a scheduled digest: one per local day, whatever ``at`` says."""
    return f"digest:day:{slot.astimezone(tz).date().isoformat()}"


def digest_window(
    slot: datetime, at: time, tz: ZoneInfo, last_end: datetime | None
) -> tuple[datetime, datetime]:
    """The span a scheduled digest reports on: from the end of the last one to ``slot``.

    Without a usable previous digest (first run, or one older than ``MAX_WINDOW``) the window
    is the day before ``slot`` (23 or 25 hours across a daylight-saving change).
    """
    if last_end is not None and slot - MAX_WINDOW <= last_end < slot:
        return last_end, slot
    return previous_digest_time(slot - timedelta(seconds=1), at, tz), slot


def catch_up_digest(
    now: datetime,
    slot: datetime,
    *,
    already_queued: bool,
    first_check: datetime | None,
) -> bool:
    """Whether a starting daemon sends the digest of ``slot`` (the latest one) late.

    Yes when it was never queued, is less than ``DIGEST_GRACE`` old, and the watcher was
    already watching before it (a fresh data dir has no day to report on).
    """
    return (
        not already_queued
        and now - slot <= DIGEST_GRACE
        and first_check is not None
        and first_check < slot
    )


def parse_stored_time(text: str | None) -> datetime | None:
    """Store timestamps are UTC ISO-8601 text; old or hand-written rows may lack the zone."""
    if not text:
        return None
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class DailyAt(BaseTrigger):  # type: ignore[misc]  # APScheduler ships no type hints
    """APScheduler trigger for the digest: ``next_digest_time`` after each run.

    CronTrigger would do for most days; this one is the function the DST tests exercise.
    """

    def __init__(self, at: time, tz: ZoneInfo) -> None:
        self.at = at
        self.tz = tz

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        return next_digest_time(previous_fire_time or now, self.at, self.tz)

    def __str__(self) -> str:
        return f"daily at {self.at:%H:%M} {self.tz.key}"
