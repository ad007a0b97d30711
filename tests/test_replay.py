"""Replays of real page behaviour through ``watcher check --at``: one alert per story,
none for the things real pages do every day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tests.conftest import Watcher, fixture_bytes
from tests.replay import (
    Replay,
    days,
    detention_page,
    foia_entries,
    foia_entry,
    foia_page,
    show_alerts,
    stats_file,
)
from tests.server import PageServer

# Autouse: prints each scenario's alerts (kind, check time, summary) under pytest -s.
__all__ = ["show_alerts"]

STATS_TARGET = (
    "    items: {select: \"a[href*='/doclib/detention/']\"}\n    expect: {every: 14d, grace: 7d}\n"
)
# ICE detention statistics: two-weekly releases (gaps of 14-16 days), then the 47-day
# stall around the fiscal-year rollover (2025-09-25 → 2025-11-11), then two-weekly again.
RELEASES = [
    date(2025, 7, 28),
    date(2025, 8, 11),
    date(2025, 8, 27),
    date(2025, 9, 10),
    date(2025, 9, 25),
    date(2025, 11, 11),
    date(2025, 11, 25),
    date(2025, 12, 10),
]


def stats_on(day: date) -> str:
    """The page as it stood on ``day``: the latest release is current; once a new fiscal
    year has begun, the final release of the last one moves to the year-end list."""
    out = [r for r in RELEASES if r <= day]
    current = out[-1]
    year_end = tuple(
        max(r for r in out if stats_file(r)[0][:4] == stats_file(p)[0][:4])
        for p in out
        if stats_file(p)[0][:4] != stats_file(current)[0][:4]
    )
    return detention_page(current, tuple(dict.fromkeys(year_end)))


def test_detention_statistics_stall_fires_stopped_once_then_recovers(
    server: PageServer, watcher: Watcher
) -> None:
    r = Replay(watcher, server)
    # The same page twice: once with the cadence stated, once with `expect: auto`.
    auto = STATS_TARGET.replace("{every: 14d, grace: 7d}", "auto")
    r.setup(
        "/detain/detention-management",
        STATS_TARGET
        + f"  - id: auto\n    url: {server.url('/detain/detention-management')}\n{auto}",
    )
    for at in days(datetime(2025, 7, 28, 12, tzinfo=UTC), datetime(2025, 12, 12, 12, tzinfo=UTC)):
        server.set("/detain/detention-management", stats_on(at.date()))
        r.check(at)
    timeline = r.timeline()
    assert [(k, at) for k, at, _ in timeline] == [
        ("stopped", "2025-10-16T12:00:00+00:00"),
        ("recovered", "2025-11-11T12:00:00+00:00"),
    ]
    assert timeline[0][2] == (
        "No new issue for 21 days (expected every 14d + 7d); "
        "newest: FY25_detentionStats09252025.xlsx, first seen 2025-09-25"
    )
    assert timeline[1][2].startswith("New issue: FY26_detentionStats11112025.xlsx")
    firing = [c.at[:10] for c in r.checks if c.target["firing"]]
    assert firing[0] == "2025-10-16" and firing[-1] == "2025-11-10" and len(firing) == 26
    assert all(c.target["firing"] in ([], ["stopped"]) for c in r.checks)
    # expect: auto says it is still learning, then learns 14 days from the releases it saw
    # (07-28 → 08-11 → 08-27 → 09-10) and calls the stall after twice the median.
    learning = r.checks[0].of("auto")["due"]
    assert learning["note"] == "learning cadence: 0 of 3 gaps seen" and learning["due_at"] is None
    assert r.checks[30].of("auto")["due"]["note"].startswith("learning cadence: 2 of 3")
    assert [(k, at) for k, at, _ in r.timeline("auto")] == [
        ("stopped", "2025-10-24T12:00:00+00:00"),
        ("recovered", "2025-11-11T12:00:00+00:00"),
    ]
    # Gaps 14, 16, 14, 15: a median of 14.5 days, overdue after 29.
    assert r.timeline("auto")[0][2].startswith(
        "No new issue for 29 days (usually every 14.5d, learned from 4 gaps)"
    )
    # Each new release is an `added`; the file it replaces is not a disappearance.
    added = [c.at[:10] for c in r.checks if "added" in c.kinds]
    assert added == [d.isoformat() for d in RELEASES[1:]]
    assert not any("disappeared" in c.kinds or "shrank" in c.kinds for c in r.checks)


SLACK = "notify:\n  slack:\n    webhook_url: https://hooks.slack.com/services/T000/B000/XXXX\n"
HOURS_12 = timedelta(hours=12)


def twelve_hourly(start: str, n: int) -> list[datetime]:
    first = datetime.fromisoformat(start).replace(tzinfo=UTC)
    return [first + i * HOURS_12 for i in range(n)]


def test_foia_listing_losing_three_of_25_items_is_one_confirmed_alert(
    server: PageServer, watcher: Watcher
) -> None:
    entries = foia_entries()
    assert len(entries) == 25
    r = Replay(watcher, server)
    r.setup("/foia/library", notify=SLACK)
    at = twelve_hourly("2025-03-15T12:00", 6)
    server.set("/foia/library", foia_page(entries))
    assert r.check(at[0]).target["items"] == 25
    assert r.check(at[1]).kinds == []
    # Three entries taken down from the middle and the end of the listing.
    kept = [e for i, e in enumerate(entries) if i not in (4, 11, 24)]
    server.set("/foia/library", foia_page(kept))
    pending = r.check(at[2])
    assert (pending.code, pending.target["firing"]) == (0, [])
    (gone,) = pending.events("disappeared")
    assert gone["subject"] == "item" and "(unconfirmed: 1 of 2 checks)" in gone["summary"]
    fired = r.check(at[3])  # the same capture again: the removal is confirmed
    assert (fired.code, fired.target["firing"]) == (1, ["disappeared"])
    (gone,) = fired.events("disappeared")
    assert gone["summary"].startswith("3 publications no longer listed: ")
    removed = [
        e.split('hreflang="en">')[1].split(" | ")[0] for e in (entries[4], entries[11], entries[24])
    ]
    assert sorted(i["title"].split(" | ")[0] for i in gone["data"]["items"]) == sorted(removed)
    assert {i["last_seen"] for i in gone["data"]["items"]} == {"2025-03-16T00:00:00+00:00"}
    assert gone["data"]["counts"]["items"] == [25, 22]
    still = r.check(at[4])
    assert still.code == 1
    (alert,) = r.alerts()
    assert (alert["kind"], alert["subject"], alert["fired_at"]) == (
        "disappeared",
        "item",
        at[3].isoformat(),
    )
    (notice,) = r.outbox()  # one message, not one per check
    assert notice["key"] == f"slack:{alert['id']}:fired"
    assert notice["counts"] == {"items": [25, 22]} and len(notice["items"]) == 3
    assert all(i["title"] and i["url"] and i["last_seen"] for i in notice["items"])
    server.set("/foia/library", foia_page(entries))
    back = r.check(at[5])
    assert back.code == 0 and back.kinds == ["changed", "recovered"]
    assert back.events("changed")[0]["summary"].startswith("3 earlier publications listed again")
    assert [n["kind"] for n in r.outbox()] == ["disappeared", "recovered"]


def test_foia_listing_pushing_old_entries_onto_page_two_is_not_a_disappearance(
    server: PageServer, watcher: Watcher
) -> None:
    entries = foia_entries()
    r = Replay(watcher, server)
    r.setup("/foia/library")
    at = twelve_hourly("2025-03-15T12:00", 4)
    server.set("/foia/library", foia_page(entries))
    r.check(at[0])
    new = [
        foia_entry(62100 + i, f"New FOIA release {i}", "2025-03-16T09:00:00-04:00")
        for i in range(3)
    ]
    server.set("/foia/library", foia_page(new + entries[:-3]))
    c = r.check(at[1])
    assert c.kinds == ["added", "changed"]
    assert "3 older entries rolled off the listing" in c.events("changed")[0]["summary"]
    assert r.check(at[2]).kinds == [] and r.check(at[3]).code == 0
    assert r.alerts() == []


def test_eoir_volume_28_versions_are_moves_not_disappearances(
    server: PageServer, watcher: Watcher
) -> None:
    r = Replay(watcher, server)
    r.setup("/eoir/volume-28")
    versions = ["2021-12-19", "2023-11-14", "2024-05-07"]
    for i, day in enumerate(versions):
        server.set("/eoir/volume-28", fixture_bytes(f"eoir/justice_gov_eoir_volume-28_{day}.html"))
        for j in range(2):  # each version twice, so a removal would be confirmed
            c = r.check(f"2026-01-{1 + 2 * i + j:02d}T12:00:00+00:00")
            assert "disappeared" not in c.kinds and "shrank" not in c.kinds and c.code == 0
    assert [c.target["items"] for c in r.checks] == [49, 49, 83, 83, 90, 90]
    assert "49 publications moved to new URLs" in r.checks[2].events("changed")[0]["summary"]
    assert r.alerts() == []
    db = r.db()
    assert db.execute("SELECT COUNT(*) FROM items WHERE gone_reason='removed'").fetchone()[0] == 0


def test_a_page_reverting_to_an_older_file_and_flapping_never_alerts_per_check(
    server: PageServer, watcher: Watcher
) -> None:
    older, newer = date(2025, 9, 10), date(2025, 9, 25)
    r = Replay(watcher, server)
    r.setup("/detain/detention-management", STATS_TARGET)
    at = twelve_hourly("2025-09-25T12:00", 10)
    server.set("/detain/detention-management", detention_page(older))
    r.check(at[0])
    server.set("/detain/detention-management", detention_page(newer))
    assert r.check(at[1]).kinds == ["added", "changed"]
    server.set("/detain/detention-management", detention_page(older))
    reverted = r.check(at[2])
    assert "added" not in reverted.kinds and reverted.kinds[0] == "changed"
    assert reverted.events("changed")[0]["summary"].startswith(
        "Reverted to an earlier file: FY25_detentionStats09102025.xlsx"
        " instead of FY25_detentionStats09252025.xlsx"
    )
    assert reverted.target["newest"]["date"] == "2025-09-10"  # the newest date falls back
    assert reverted.code == 0
    # Then it flips back and forth on every check.
    for i, when in enumerate(at[3:]):
        server.set("/detain/detention-management", detention_page(newer if i % 2 == 0 else older))
        c = r.check(when)
        assert "added" not in c.kinds and c.code == 0 and c.target["firing"] == []
    assert r.alerts() == [] and r.recovered() == []


XLSX = {"Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def serve_file(server: PageServer, name: str, body: bytes, tag: str) -> None:
    server.set(f"/doclib/detention/{name}", body, headers={**XLSX, "ETag": f'"{tag}"'})


def test_documents_replaced_in_place_gone_or_cut_down(server: PageServer, watcher: Watcher) -> None:
    r = Replay(watcher, server)
    r.setup("/detain/detention-management", STATS_TARGET + "    documents: true\n")
    current = "FY25_detentionStats09252025.xlsx"
    files = ["FY24_detentionStats09302024.xlsx", "FY23_detentionStats01192022.xlsx"]
    server.set("/detain/detention-management", detention_page(date(2025, 9, 25)))
    serve_file(server, current, b"PK" + b"a" * 50_000, "v1")
    for name in files:
        serve_file(server, name, b"PK" + b"b" * 40_000, "v1")
    at = [f"2025-10-{d:02d}T12:00:00+00:00" for d in range(14, 31)]
    assert r.check(at[0]).kinds == []
    assert r.check(at[1]).kinds == []
    hits = len(server.hits(f"/doclib/detention/{current}"))
    assert r.check(at[2]).kinds == ["stopped"]  # 10-16: 21 days after 09-25
    assert len(server.hits(f"/doclib/detention/{current}")) == hits + 1  # a HEAD, no download
    # ICE replaces the current spreadsheet in place with newer data: a new publication.
    serve_file(server, current, b"PK" + b"c" * 52_000, "v2")
    replaced = r.check(at[3])
    assert replaced.kinds == ["added", "recovered"]
    (added,) = replaced.events("added")
    assert added["subject"] == "document"
    assert added["summary"] == f"{current} replaced in place (new content at the same URL)"
    assert replaced.target["due"]["newest"]["title"] == current
    # A year-end file starts answering 404 while still linked.
    server.set(f"/doclib/detention/{files[0]}", b"<title>Page Not Found</title>", status=404)
    # Another is cut to a tenth of its size.
    serve_file(server, files[1], b"PK" + b"b" * 4_000, "v2")
    first = r.check(at[4])
    assert sorted(first.kinds) == ["added", "disappeared", "shrank"]
    assert first.code == 0
    second = r.check(at[5])
    assert second.code == 1 and second.target["firing"] == ["disappeared", "shrank"]
    (gone,) = second.events("disappeared")
    assert gone["subject"] == "document" and files[0] in gone["url"]
    (cut,) = second.events("shrank")
    assert cut["subject"] == "document" and "40,002 → 4,002 bytes" in cut["summary"]
    serve_file(server, files[0], b"PK" + b"b" * 40_000, "v1")
    serve_file(server, files[1], b"PK" + b"b" * 40_000, "v3")
    back = r.check(at[6])
    assert back.code == 0 and back.kinds.count("recovered") == 2


def test_a_document_too_big_to_download_is_judged_by_its_headers(
    server: PageServer, watcher: Watcher
) -> None:
    r = Replay(watcher, server)
    r.setup(
        "/detain/detention-management",
        STATS_TARGET + "    documents: true\n",
        settings="  max_body: 300KB\n",
    )
    server.set("/detain/detention-management", detention_page(date(2025, 9, 25)))
    big = "FY25_detentionStats09252025.xlsx"
    for name in (
        "FY24_detentionStats09302024.xlsx",
        "FY23_detentionStats01192022.xlsx",
        "FY22_detentionStats03172022b.xlsx",
        "FY21_detention-stats_0301.xlsx",
    ):
        serve_file(server, name, b"PK" + b"b" * 1_000, "v1")  # fmt: skip
    serve_file(server, big, b"PK" + b"a" * 400_000, "v1")
    assert r.check("2025-09-26T12:00:00+00:00").kinds == []
    assert r.check("2025-09-27T12:00:00+00:00").kinds == []
    serve_file(server, big, b"PK" + b"a" * 450_000, "v2")  # new ETag and length: replaced
    replaced = r.check("2025-09-28T12:00:00+00:00")
    assert replaced.kinds == ["added"] and replaced.events("added")[0]["subject"] == "document"
