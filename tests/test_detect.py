"""Detection rules on their own: what vanished items mean, when a redirect means a page is
gone, shrink baselines, and the publication dates behind `stopped`."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from watcher.compare import compare
from watcher.conditions import TABLE_MIN_ROWS, step, update_baselines
from watcher.config import Target
from watcher.detect import classify
from watcher.errors import FetchError
from watcher.models import Item, Page, TableShape
from watcher.units import Threshold
from watcher.verdict import failure_verdict, redirect_verdict

BASE = "https://www.ice.gov/doclib/detention/"


def xlsx(name: str, title: str, day: date | None) -> Item:
    return Item(BASE + name, title, BASE + name, "xlsx", day, "filename" if day else None)


def listing(n: int, start: int = 0) -> list[Item]:
    """Entries newest first, as the FOIA Library lists them; a higher number is older."""
    return [
        Item(
            f"https://www.ice.gov/node/{i}",
            f"FOIA record {i}",
            f"https://www.ice.gov/node/{i}",
            "html",
            date(2025, 4, 30) - timedelta(days=i),
            "time",
        )
        for i in range(start, start + n)
    ]


def run(before: list[Item], after: list[Item], **kw: object) -> object:
    a, b = Page("u", "t", items=before), Page("u", "t", items=after)
    seen = kw.get("seen", {i.key for i in before})
    missing = kw.get("missing", [])
    return classify(compare(a, b), a, b, seen=seen, missing=missing)  # type: ignore[arg-type]


def test_new_release_supersedes_the_old_file_under_the_same_link_text() -> None:
    old = xlsx("FY25_detentionStats09102025.xlsx", "FY2025 Detention Statistics", date(2025, 9, 10))
    new = xlsx("FY25_detentionStats09252025.xlsx", "FY2025 Detention Statistics", date(2025, 9, 25))
    c = run([old], [new])
    assert c.added == [new] and c.removed == [] and c.superseded == [(old, new)]  # type: ignore[attr-defined]
    assert c.gone_reasons() == {old.key: ("superseded", None)}  # type: ignore[attr-defined]
    assert c.real_change  # type: ignore[attr-defined]


def test_reverting_to_the_older_file_withdraws_the_newer_and_adds_nothing() -> None:
    old = xlsx("FY25_detentionStats09102025.xlsx", "FY2025 Detention Statistics", date(2025, 9, 10))
    new = xlsx("FY25_detentionStats09252025.xlsx", "FY2025 Detention Statistics", date(2025, 9, 25))
    c = run([new], [old], seen={old.key, new.key})
    assert c.added == [] and c.returned == [old]  # type: ignore[attr-defined]
    assert c.reverted == [(new, old)] and c.removed == [new]  # type: ignore[attr-defined]
    assert not c.real_change  # type: ignore[attr-defined]


def test_a_missing_publication_reposted_elsewhere_is_not_new() -> None:
    # ICE took its 2015 facility list down for over a year and reposted it elsewhere.
    gone = Item(
        BASE + "facilities-2015.pdf",
        "2015 Detention Facility List",
        BASE + "facilities-2015.pdf",
        "pdf",
    )
    moved = "https://www.ice.gov/doclib/foia/facilities-2015.pdf"
    back = Item(moved, "2015 Detention Facility List", moved, "pdf")
    others = listing(3)
    c = run(others, [*others, back], missing=[gone])
    assert c.added == [] and c.reposted == [(gone.key, back)]  # type: ignore[attr-defined]
    assert c.carried() == {back.key: gone.key}  # type: ignore[attr-defined]


def test_entries_pushed_off_a_paginated_listing_rolled_off() -> None:
    old = listing(25, start=10)
    new = listing(3, start=0) + old[:-3]
    c = run(old, new)
    assert c.rolled == old[-3:] and c.removed == []  # type: ignore[attr-defined]


def test_entries_removed_without_new_ones_are_removed() -> None:
    old = listing(25)
    c = run(old, old[:4] + old[5:11] + old[12:24])
    assert [i.title for i in c.removed] == ["FOIA record 4", "FOIA record 11", "FOIA record 24"]  # type: ignore[attr-defined]


def test_newer_entries_vanishing_from_the_end_are_not_rolled_off() -> None:
    # Items at the end of the list that are newer than what stays were taken down, not aged out.
    old = listing(5)
    url = "https://www.ice.gov/node/99"
    newer = [Item(url, "Newest", url, "html", date(2025, 5, 30), "time")]
    c = run(old + newer, listing(1, start=50) + old)
    assert c.removed == newer  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("final", "gone"),
    [
        ("https://www.ice.gov/", "redirect_home"),
        ("https://www.ice.gov/index.html", "redirect_home"),
        ("https://www.ice.gov/home", "redirect_home"),
        ("https://www.ice.gov/about", "redirect_away"),
        ("https://www.dhs.gov/news", "redirect_away"),
        ("https://www.ice.gov/detain/detention-management/", None),
        ("http://ice.gov/detain/detention-management", None),
        ("https://www.ice.gov/detain/detention-statistics", None),
        ("https://www.ice.gov/detention-management", None),
        ("https://www.ice.gov/DETAIN/Detention-Management", None),
    ],
)
def test_redirect_verdicts(final: str, gone: str | None) -> None:
    verdict = redirect_verdict("https://www.ice.gov/detain/detention-management", final)
    assert (verdict[0] if verdict else None) == gone


def test_redirect_of_a_home_page_target_is_not_a_disappearance() -> None:
    assert redirect_verdict("https://www.ice.gov/", "https://www.ice.gov/index.html") is None


@pytest.mark.parametrize(
    ("kind", "status", "ever_read", "gone"),
    [
        ("http", 404, True, True),
        ("http", 410, True, True),
        ("dns", None, True, True),
        ("http", 404, False, False),  # never read: a wrong URL, not a disappearance
        ("blocked", 403, True, False),
        ("http", 503, True, False),
        ("timeout", None, True, False),
        ("connect", None, True, False),
        ("tls", None, True, False),
    ],
)
def test_failure_verdicts(kind: str, status: int | None, ever_read: bool, gone: bool) -> None:
    error = FetchError(kind, "x", url="https://www.ice.gov/p", status=status)
    assert failure_verdict(error, ever_read=ever_read).gone is gone


def test_a_one_off_spike_never_becomes_the_yardstick() -> None:
    pct = Threshold(value=0.10, relative=True)
    base, recent, shrunk = step(None, [], 25, pct, 2)
    for value in (25, 40, 25, 25):  # 40 for one check (a half-cached listing)
        base, recent, shrunk = step(base, recent, value, pct, 2)
        assert not shrunk
    assert base == 25
    base, recent, shrunk = step(base, recent, 22, pct, 2)
    assert shrunk and base == 25
    base, recent, shrunk = step(base, recent, 22, pct, 2)
    assert shrunk and base == 25  # frozen while shrunk: the alert holds until it recovers


def test_small_layout_tables_do_not_shrink_but_data_tables_do() -> None:
    target = Target(id="t", url="https://www.justice.gov/eoir/volume-28")
    state: dict[str, object] = {}
    before = {"table:table 1:rows": 2, "table:Facilities:rows": 201, "table:Facilities:columns": 12}
    assert update_baselines(state, dict(before), target, 2) == []
    after = {"table:table 1:rows": 1, "table:Facilities:rows": 172, "table:Facilities:columns": 12}
    facets = update_baselines(state, after, target, 2)  # type: ignore[arg-type]
    assert [f.describe() for f in facets] == ["Table 'Facilities' lost 29 of 201 rows (14%)"]
    assert TABLE_MIN_ROWS > 2
    assert [f.describe() for f in update_baselines(state, {}, target, 2)] == [  # type: ignore[arg-type]
        "Table 'Facilities' is gone (201 rows)"
    ]


def test_tables_compare_by_shape() -> None:
    a = Page("u", "t", tables=[TableShape("Facilities", 201, 12)])
    b = Page("u", "t", tables=[TableShape("Facilities", 172, 12)])
    c = run([], [])
    assert compare(a, b).tables and not c.real_change  # type: ignore[attr-defined]


def test_at_the_fiscal_year_rollover_the_next_file_supersedes_the_last() -> None:
    # The link text changes with the fiscal year, so no title matches; the file names still
    # say this is the next release of the same spreadsheet.
    old = xlsx("FY26_detentionStats09172026.xlsx", "FY2026 Detention Statistics", date(2026, 9, 17))
    new = xlsx("FY27_detentionStats10022026.xlsx", "FY2027 Detention Statistics", date(2026, 10, 2))
    c = run([old], [new])
    assert c.added == [new] and c.removed == [] and c.superseded == [(old, new)]  # type: ignore[attr-defined]
