"""The `stopped` rule's publication dates and due dates, on a store filled by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcher.cadence import AUTO_MULTIPLIER, due_info
from watcher.config import Config, Target
from watcher.store import Store

URL = "https://www.ice.gov/doclib/detention/"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path)


def config(expect: object) -> tuple[Config, Target]:
    target = Target.model_validate(
        {"id": "stats", "url": "https://www.ice.gov/d", "expect": expect}
    )
    return Config(targets=[target]), target


def capture(store: Store, at: str, real_change: bool = False) -> None:
    store.db.execute(
        "INSERT INTO snapshots (target_id, taken_at, page_sha, content_type, size, final_url,"
        " http_status, real_change) VALUES ('stats', ?, 'x', 'text/html', 1, 'u', 200, ?)",
        (at, int(real_change)),
    )


def item(store: Store, name: str, day: str | None, first_seen: str) -> None:
    store.db.execute(
        "INSERT INTO items (target_id, key, title, url, type, date, first_seen, last_seen)"
        " VALUES ('stats', ?, 'FY Detention Statistics', ?, 'xlsx', ?, ?, ?)",
        (URL + name, URL + name, day, first_seen, first_seen),
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_newest_item_decides_and_a_date_is_capped_at_first_seen(store: Store) -> None:
    cfg, target = config({"every": "14d", "grace": "7d"})
    capture(store, "2025-09-01T12:00:00+00:00")
    item(store, "FY25_detentionStats08282025.xlsx", "2025-08-28", "2025-09-01T12:00:00+00:00")
    # Posted on 09-12 under a name dated 09-15: it counts from the day we saw it.
    item(store, "FY25_detentionStats09152025.xlsx", "2025-09-15", "2025-09-12T12:00:00+00:00")
    info = due_info(store, cfg, target, at("2025-10-03T12:00"))
    assert info is not None and info.newest_date.isoformat() == "2025-09-12"  # type: ignore[union-attr]
    assert info.due_at is not None and info.due_at.date().isoformat() == "2025-10-03"
    assert info.overdue and not info.learned
    assert info.note == (
        "No new issue for 21 days (expected every 14d + 7d); "
        "newest: FY25_detentionStats09152025.xlsx, first seen 2025-09-12"
    )
    assert not due_info(store, cfg, target, at("2025-10-02T12:00")).overdue  # type: ignore[union-attr]


def test_a_typo_year_in_a_new_file_name_does_not_make_the_series_look_stale(store: Store) -> None:
    cfg, target = config({"every": "14d", "grace": "7d"})
    capture(store, "2022-12-01T12:00:00+00:00")
    item(store, "FY22_detentionStats03172022b.xlsx", "2022-03-17", "2022-12-01T12:00:00+00:00")
    # FY23_detentionStats01192022.xlsx appeared in January 2023 with 2022 in its name. Had
    # the name been read at face value (extract corrects this FY case; other names it can't).
    item(store, "FY23_detentionStats01192022.xlsx", "2022-01-19", "2023-01-20T12:00:00+00:00")
    info = due_info(store, cfg, target, at("2023-01-25T12:00"))
    assert info is not None and not info.overdue
    assert info.newest_date.isoformat() == "2023-01-20"  # type: ignore[union-attr]
    assert "date 2022-01-19 in its name ignored" in info.note


def test_old_dates_on_the_first_capture_are_history_not_typos(store: Store) -> None:
    cfg, target = config({"every": "14d", "grace": "7d"})
    capture(store, "2026-04-01T12:00:00+00:00")
    item(store, "FY21_detention-stats_0301.xlsx", "2021-03-01", "2026-04-01T12:00:00+00:00")
    info = due_info(store, cfg, target, at("2026-04-01T12:00"))
    # ICE's FOIA logs stopped in 2018: a series found stopped is overdue at once.
    assert info is not None and info.overdue and info.note.startswith("No new issue for 1857 days")


def test_without_dated_items_the_last_real_content_change_stands_in(store: Store) -> None:
    cfg, target = config({"every": "30d"})
    capture(store, "2026-01-01T12:00:00+00:00")
    capture(store, "2026-01-20T12:00:00+00:00", real_change=True)
    capture(store, "2026-02-01T12:00:00+00:00")  # moves only: not a content change
    item(store, "4070.pdf", None, "2026-01-01T12:00:00+00:00")
    info = due_info(store, cfg, target, at("2026-02-20T12:00"))
    assert info is not None and info.mode == "content" and info.overdue
    assert info.note.startswith("No content change for 31 days (expected every 30d)")


def test_a_document_replaced_in_place_is_a_new_issue(store: Store) -> None:
    cfg, target = config({"every": "14d", "grace": "7d"})
    capture(store, "2025-09-26T12:00:00+00:00")
    item(store, "FY25_detentionStats09252025.xlsx", "2025-09-25", "2025-09-26T12:00:00+00:00")
    store.db.execute(
        "INSERT INTO replacements (target_id, key, url, title, at) VALUES"
        " ('stats', 'k', ?, 'FY25_detentionStats09252025.xlsx', '2025-10-20T12:00:00+00:00')",
        (URL + "FY25_detentionStats09252025.xlsx",),
    )
    info = due_info(store, cfg, target, at("2025-10-30T12:00"))
    assert info is not None and not info.overdue
    assert info.newest_date.isoformat() == "2025-10-20"  # type: ignore[union-attr]


def test_auto_learns_the_cadence_from_releases_it_saw_appear(store: Store) -> None:
    cfg, target = config("auto")
    capture(store, "2025-07-28T12:00:00+00:00")
    # The first capture lists year-end files a year apart: not the series' cadence.
    for fy, day in (("FY23", "2023-01-19"), ("FY24", "2024-09-30"), ("FY25", "2025-07-28")):
        item(store, f"{fy}_{day}.xlsx", day, "2025-07-28T12:00:00+00:00")
    info = due_info(store, cfg, target, at("2025-08-01T12:00"))
    assert info is not None and not info.learned and info.due_at is None
    assert info.note == "learning cadence: 0 of 3 gaps seen"
    for day in ("2025-08-11", "2025-08-27"):
        item(store, f"FY25_{day}.xlsx", day, f"{day}T12:00:00+00:00")
    info = due_info(store, cfg, target, at("2025-09-01T12:00"))
    assert info is not None and info.note == "learning cadence: 2 of 3 gaps seen"
    assert not info.overdue
    item(store, "FY25_2025-09-10.xlsx", "2025-09-10", "2025-09-10T12:00:00+00:00")
    info = due_info(store, cfg, target, at("2025-10-07T12:00"))
    assert info is not None and info.learned and info.every is not None
    assert info.every.days == 14  # gaps 14, 16, 14
    assert info.due_at is not None and info.due_at.date().isoformat() == "2025-10-08"
    assert AUTO_MULTIPLIER == 2 and not info.overdue
    late = due_info(store, cfg, target, at("2025-10-08T12:00"))
    assert late is not None and late.overdue
    assert late.note.startswith("No new issue for 28 days (usually every 14d, learned from 3 gaps)")


def test_no_expectation_means_no_due_date(store: Store) -> None:
    cfg, target = config(None)
    assert due_info(store, cfg, target, at("2025-10-09T12:00")) is None
