"""The alert lifecycle on a real store: confirmation, one alert per condition, repeats,
recovery, muting, and the outbox rows that announce each step."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watcher import alerts
from watcher.alerts import Assessment, Context, Observation
from watcher.config import SlackConfig, Target
from watcher.store import Store

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
TARGET = Target(id="foia", name="ICE FOIA Library", agency="ICE", url="https://www.ice.gov/foia")
SLACK = SlackConfig(webhook_url="https://hooks.slack.com/services/T0/B0/x")  # type: ignore[arg-type]
GONE = Observation("disappeared", "page", "ICE FOIA Library", TARGET.url, "The page answers 404")
ERROR = Observation("error", "page", "ICE FOIA Library", TARGET.url, "Blocked by a firewall")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path)


def step(
    store: Store,
    hours: float,
    *obs: Observation,
    unknown: set[tuple[str, str]] | None = None,
    slack: SlackConfig | None = SLACK,
    confirm: int = 2,
    recovery: str = "The page is back",
) -> alerts.Applied:
    a = Assessment(unknown=unknown or set(), recovery={("disappeared", "page"): recovery})
    for o in obs:
        a.add(o)
    ctx = Context(TARGET, T0 + timedelta(hours=hours), confirm, slack, snapshot_id=7)
    with store.transaction() as db:
        return alerts.apply(db, ctx, a)


def outbox(store: Store) -> list[tuple[str, dict[str, object]]]:
    rows = store.db.execute("SELECT dedupe_key, payload FROM outbox ORDER BY id").fetchall()
    return [(r[0], json.loads(r[1])) for r in rows]


def test_confirmed_alert_fires_once_and_recovers_once(store: Store) -> None:
    first = step(store, 0, GONE)
    assert first.firing == [] and first.events[0].summary.endswith("(unconfirmed: 1 of 2 checks)")
    second = step(store, 6, GONE)
    assert second.firing == ["disappeared"]
    assert second.events[0].summary == "The page answers 404"
    assert second.events[0].data["alert"]["state"] == "firing"
    for h in (12, 18, 20):
        assert step(store, h, GONE).firing == ["disappeared"]
    (alert,) = store.alerts()
    assert (alert.state, alert.streak, alert.fired_at) == ("firing", 5, "2026-11-20T14:00:00+00:00")
    back = step(store, 30)
    assert back.firing == [] and [(e.kind, e.summary) for e in back.events] == [
        ("recovered", "The page is back")
    ]
    assert [k for k, _ in outbox(store)] == [
        f"slack:{alert.id}:fired",
        f"slack:{alert.id}:recovered",
    ]
    fired, recovered = (p for _, p in outbox(store))
    assert fired["kind"] == "disappeared" and fired["checked_at"] == "2026-11-20T14:00:00+00:00"
    assert fired["snapshot_id"] == 7 and fired["agency"] == "ICE" and fired["repeat"] is False
    assert recovered["kind"] == "recovered" and recovered["alert_kind"] == "disappeared"
    assert store.alerts()[0].state == "resolved"


def test_unconfirmed_condition_that_clears_is_silent(store: Store) -> None:
    step(store, 0, ERROR)
    cleared = step(store, 6)
    assert cleared.events == [] and cleared.firing == []
    assert outbox(store) == []
    (alert,) = store.alerts()
    assert alert.state == "resolved" and alert.fired_at is None


def test_stopped_fires_without_confirmation(store: Store) -> None:
    late = Observation("stopped", "page", "x.xlsx", TARGET.url, "No new issue for 22 days")
    assert step(store, 0, late).firing == ["stopped"]
    assert [k.split(":")[2] for k, _ in outbox(store)] == ["fired"]


def test_unknown_conditions_are_left_as_they_are(store: Store) -> None:
    step(store, 0, GONE)
    step(store, 6, GONE)
    # The page cannot be read now: whether it is back is unknown, so nothing resolves.
    still = step(store, 12, ERROR, unknown={("disappeared", "page")})
    assert still.firing == ["disappeared"]
    assert [a.kind for a in store.alerts(open_only=True)] == ["disappeared", "error"]


def test_reminders_every_repeat_interval_not_every_check(store: Store) -> None:
    for h in range(0, 60, 6):
        step(store, h, GONE)
    keys = [k.split(":", 2)[2] for k, _ in outbox(store)]
    # Fired at 6h; reminders 24h and 48h later.
    assert keys == ["fired", "repeat:2026-11-21T14:00:00+00:00", "repeat:2026-11-22T14:00:00+00:00"]
    assert [p["repeat"] for _, p in outbox(store)] == [False, True, True]


def test_more_items_missing_while_firing_is_announced(store: Store) -> None:
    def missing(*keys: str, confirmed: bool = True) -> Observation:
        items = [{"key": k, "title": k, "url": k, "confirmed": confirmed} for k in keys]
        return Observation("disappeared", "item", "a", "a", f"{len(keys)} gone", items=items)

    step(store, 0, missing("a", confirmed=False))
    step(store, 6, missing("a"))
    step(store, 12, missing("a"))
    pending = missing("a").items + missing("b", confirmed=False).items
    step(store, 18, Observation("disappeared", "item", "a", "a", "2 gone", items=pending))
    assert len(outbox(store)) == 1  # "b" is not confirmed yet
    step(store, 24, missing("a", "b"))
    keys = [k.split(":", 2)[2] for k, _ in outbox(store)]
    assert keys == ["fired", "grew:2026-11-21T08:00:00+00:00"]


def test_muted_target_records_alerts_but_notifies_nothing(store: Store) -> None:
    with store.transaction() as db:
        alerts.set_mute(db, TARGET, T0 + timedelta(days=1))
    step(store, 0, GONE)
    assert step(store, 6, GONE).firing == ["disappeared"]
    assert outbox(store) == []
    # The mute ends while the alert still fires: the message it held back goes out now.
    step(store, 30, GONE)
    assert [k.split(":")[2] for k, _ in outbox(store)] == ["fired"]


def test_recovery_of_an_alert_nobody_was_told_about_is_not_sent(store: Store) -> None:
    step(store, 0, GONE, slack=None)
    step(store, 6, GONE, slack=None)
    step(store, 12, slack=SLACK)
    assert outbox(store) == []


def test_kinds_not_configured_for_slack_are_not_queued(store: Store) -> None:
    only_stops = SlackConfig(
        webhook_url="https://hooks.slack.com/services/T0/B0/x",  # type: ignore[arg-type]
        kinds=["stopped"],
    )
    step(store, 0, GONE, slack=only_stops)
    step(store, 6, GONE, slack=only_stops)
    assert outbox(store) == []


def test_a_data_dir_from_before_alerts_upgrades_without_surprise_alerts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import watcher.store
    from watcher.conditions import missing_items
    from watcher.schema import MIGRATIONS

    monkeypatch.setattr(watcher.store, "MIGRATIONS", MIGRATIONS[:1])
    with Store(tmp_path) as old:
        assert old.schema_version == 1
        old.db.execute(
            "INSERT INTO items (target_id, key, title, url, type, first_seen, last_seen,"
            " gone_since) VALUES ('foia', 'k', 't', 'u', 'pdf', '2026-01-01', '2026-01-02',"
            " '2026-01-03')"
        )
    monkeypatch.setattr(watcher.store, "MIGRATIONS", MIGRATIONS)
    with Store(tmp_path) as new:
        assert new.schema_version == len(MIGRATIONS) == 2
        # Version 1 did not record why an item went (it may have moved): it stays quiet.
        assert missing_items(new.db, "foia", 2) == []
        assert new.db.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == 0
