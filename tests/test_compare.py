"""Comparison of captures: added, removed, moved (not removed), text diffs, table shapes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from watcher.compare import compare, diff_lines, match_moves
from watcher.detect import events_from_comparison
from watcher.extract import extract
from watcher.models import Item, Page, TableShape

FIXTURES = Path(__file__).parent / "fixtures"
EOIR = "https://www.justice.gov/eoir/volume-28"
TODAY = date(2026, 11, 21)


def eoir(day: str) -> Page:
    body = (FIXTURES / "eoir" / f"justice_gov_eoir_volume-28_{day}.html").read_bytes()
    return extract(body, url=EOIR, today=TODAY)


def item(url: str, title: str) -> Item:
    return Item(key=url, title=title, url=url, type="pdf")


def test_eoir_redesign_moves_every_document_and_removes_none() -> None:
    old, new = eoir("2021-12-19"), eoir("2023-11-14")
    result = compare(old, new)
    assert result.removed == []
    assert len(result.moved) == 49
    assert {m.matched_by for m in result.moved} <= {"id", "title", "filename"}
    assert len(result.added) == 83 - 49
    events = events_from_comparison(result, EOIR)
    assert [e.kind for e in events] == ["added", "changed"]
    assert "49 publications moved to new URLs" in events[1].summary


def test_eoir_second_move_is_also_a_move() -> None:
    result = compare(eoir("2023-11-14"), eoir("2024-05-07"))
    assert result.removed == []
    assert len(result.added) == 90 - 83
    assert result.items_before == 83 and result.items_after == 90


def test_removed_items_are_reported_once_each() -> None:
    items = [
        item(f"https://www.ice.gov/doclib/foia/r{i}.pdf", f"Report number {i}") for i in range(25)
    ]
    before = Page(url="u", title="t", items=items)
    after = Page(url="u", title="t", items=items[:10] + items[13:])
    result = compare(before, after)
    assert [i.title for i in result.removed] == [
        "Report number 10",
        "Report number 11",
        "Report number 12",
    ]
    events = events_from_comparison(result, "u")
    assert [e.kind for e in events] == ["disappeared"]
    assert events[0].summary.startswith("3 publications no longer listed: Report number 10")
    assert events[0].data["counts"]["items"] == [25, 22]


def test_move_by_file_name_and_ambiguous_titles_are_not_moves() -> None:
    gone = [
        item("https://www.ice.gov/doclib/a/FY24_detentionStats09302024.xlsx", "FY2024"),
        item("https://www.ice.gov/doclib/x/annual.pdf", "Annual Report"),
    ]
    came = [
        item("https://www.ice.gov/doclib/detention/FY24_detentionStats09302024.xlsx", "FY2024"),
        item("https://www.ice.gov/doclib/y/one.pdf", "Annual Report"),
        item("https://www.ice.gov/doclib/z/two.pdf", "Annual Report"),
    ]
    moves = match_moves(gone, came)
    assert [(m.old.url, m.matched_by) for m in moves] == [(gone[0].url, "filename")]


def test_text_diff_counts_lines_and_trims_common_ends() -> None:
    before = [f"row {i}" for i in range(20000)]
    after = [*before[:100], "row new", *before[100:19000], *before[19001:]]
    added, removed, diff = diff_lines(before, after)
    assert (added, removed) == (1, 1)
    assert diff == ["-row 19000", "+row new"] or sorted(diff) == ["+row new", "-row 19000"]


def test_table_shape_changes_are_reported() -> None:
    before = Page(url="u", title="t", tables=[TableShape("Facilities", 201, 12)])
    after = Page(url="u", title="t", tables=[TableShape("Facilities", 172, 12)])
    result = compare(before, after)
    assert len(result.tables) == 1
    events = events_from_comparison(result, "u")
    assert events[0].kind == "changed"
    assert events[0].summary == "Table 'Facilities' 201×12 → 172×12"


def test_identical_pages_compare_equal() -> None:
    page = eoir("2024-05-07")
    result = compare(page, page)
    assert not result.any_change
    assert events_from_comparison(result, EOIR) == []


def test_new_dated_edition_under_the_same_title_replaces_not_removes() -> None:
    # ICE's detention page swaps FY26_detentionStats09172026.xlsx for a newly dated file
    # under the same link text every two weeks.
    title = "FY2026 Detention Statistics (XLSX, 1.2 MB)"
    old = Item(
        "https://www.ice.gov/doclib/detention/FY26_detentionStats09172026.xlsx",
        title,
        "https://www.ice.gov/doclib/detention/FY26_detentionStats09172026.xlsx",
        "xlsx",
        date(2026, 9, 17),
        "filename",
    )
    new = Item(
        "https://www.ice.gov/doclib/detention/FY26_detentionStats10022026.xlsx",
        title.replace("1.2", "1.3"),
        "https://www.ice.gov/doclib/detention/FY26_detentionStats10022026.xlsx",
        "xlsx",
        date(2026, 10, 2),
        "filename",
    )
    result = compare(Page(url="u", title="t", items=[old]), Page(url="u", title="t", items=[new]))
    assert result.removed == [] and result.moved == [] and result.added == []
    assert [(m.old.key, m.new.key) for m in result.replaced] == [(old.key, new.key)]
    (event,) = events_from_comparison(result, "u")
    assert event.kind == "added"
    assert event.summary == (
        "1 new publication: FY2026 Detention Statistics (XLSX, 1.3 MB) "
        "(replaces an earlier edition)"
    )
