"""Each shipped target's extraction rule, run on its page.

Where a real capture exists (ICE shell pages, EOIR volume 28) the rule runs on it. Where we
only have a description of the page, the rule runs on a page built to that description inside
the real ICE USWDS shell, and the description's source is named.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from watcher.config import Target, load_config
from watcher.extract import extract

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
TODAY = date(2026, 11, 21)
CONFIG = load_config(ROOT / "targets.yaml", env={})
TARGETS = {t.id: t for t in CONFIG.targets}


def run_rule(target: Target, body: bytes) -> list[tuple[str, str, date | None]]:
    page = extract(
        body,
        url=target.url,
        today=TODAY,
        select=target.items.select,
        within=target.items.within,
    )
    return [(i.title, i.url, i.date) for i in page.items]


def built(main: str, title: str) -> bytes:
    shell = (FIXTURES / "ice" / "ice_contact_field-offices_listing.html").read_text("utf-8")
    start = shell.index(">", shell.index("<main ")) + 1
    end = shell.index("</main>")
    head = shell[:start].replace("ICE Field Offices | ICE", title)
    return (head + main + shell[end:]).encode()


def test_every_shipped_target_is_covered_here() -> None:
    covered = {"ice-detention-stats", "ice-foia-library", "eoir-bia-precedents"} | set(DESCRIBED)
    assert set(TARGETS) == covered


def test_ice_detention_stats_rule_on_the_built_page() -> None:
    items = run_rule(
        TARGETS["ice-detention-stats"],
        (FIXTURES / "built" / "ice_detention_management.html").read_bytes(),
    )
    names = [url.rsplit("/", 1)[1] for _, url, _ in items]
    assert names == [
        "FY25_detentionStats09252025.xlsx",
        "FY24_detentionStats09302024.xlsx",
        "FY23_detentionStats01192022.xlsx",
        "FY22_detentionStats03172022b.xlsx",
        "FY21_detention-stats_0301.xlsx",
    ]
    dates = [d for _, _, d in items]
    assert dates[0] == date(2025, 9, 25)
    assert dates[4] == date(2021, 3, 1)  # MMDD, year from the fiscal year


def test_ice_foia_library_rule_on_the_built_listing() -> None:
    items = run_rule(
        TARGETS["ice-foia-library"], (FIXTURES / "built" / "ice_foia_library.html").read_bytes()
    )
    assert len(items) == 25
    assert all(d is not None for _, _, d in items)
    assert not any("page=" in url for _, url, _ in items)  # pagination is not a publication


@pytest.mark.parametrize(
    ("day", "count"), [("2021-12-19", 49), ("2023-11-14", 83), ("2024-05-07", 90)]
)
def test_eoir_precedents_rule_on_the_real_volume_pages(day: str, count: int) -> None:
    body = (FIXTURES / "eoir" / f"justice_gov_eoir_volume-28_{day}.html").read_bytes()
    items = run_rule(TARGETS["eoir-bia-precedents"], body)
    assert len(items) == count
    # Every row carries its ID ("ID 4062"), which is what matches a document across moves;
    # the citation text itself has real typos ("28 I&N Dec 714", no dot).
    ids = [int(m.group(1)) for t, _, _ in items if (m := re.search(r"\bID\s*(\d{4})", t))]
    assert sorted(ids) == list(range(3985, 3985 + count))


# Pages we have no capture of, built to public descriptions of their structure.
DESCRIBED = {
    # ICE "Annual Report" page (ice.gov/information-library/annual-report): a year-in-review
    # text, a fact sheet and a link to the full report PDF.
    "ice-annual-report": (
        "<h1>Annual Report</h1><p>Year in Review: ICE Fiscal Year 2024 Annual Report</p>"
        '<p><a href="/doclib/eoy/iceAnnualReportFY2024.pdf">Read the full FY 2024 Annual Report'
        '</a></p><p><a href="/doclib/eoy/iceFactSheetFY2024.pdf">Fact Sheet</a></p>'
        '<p><a href="/about-ice/ero">Enforcement and Removal Operations</a></p>',
        2,
    ),
    # OHSS "Immigration Enforcement and Legal Processes Monthly Tables": headings per topic
    # ("Encounters", "Detentions", ...) each listing spreadsheet tables.
    "dhs-ohss-monthly-tables": (
        "<h1>Immigration Enforcement and Legal Processes Monthly Tables</h1>"
        "<h2>Available Tables</h2><h3>Encounters</h3><ul>"
        '<li><a href="/sites/default/files/2026-10/2026_0915_ohss_nationwide-encounters.xlsx">'
        "Nationwide CBP Encounters by Encounter Type and Region</a></li>"
        '<li><a href="/sites/default/files/2026-10/2026_0915_ohss_sw-border-encounters.xlsx">'
        "SW Border Encounters by Citizenship, Family Status, and Sector</a></li></ul>"
        '<h3>Detentions</h3><ul><li><a href="/sites/default/files/2026-10/'
        '2026_0915_ohss_ero-book-ins.xlsx">ICE ERO Book-Ins to Detention</a></li></ul>',
        3,
    ),
    # DHS FOIA Library: an index of reading-room documents and logs.
    "dhs-foia-library": (
        "<h1>FOIA Library</h1><ul>"
        '<li><a href="/sites/default/files/2026-09/foia-log-fy2026-q3.xlsx">FOIA Log FY2026 Q3'
        '</a></li><li><a href="/sites/default/files/2026-08/2026-annual-foia-report.pdf">'
        "Annual FOIA Report 2025</a></li>"
        '<li><a href="/foia-library/frequently-requested">Frequently requested records</a>'
        "</li></ul>",
        2,
    ),
    # CBP encounter pages: a dashboard with a data-download list of monthly CSV files.
    "cbp-southwest-border-encounters": (
        "<h1>Southwest Land Border Encounters</h1><p>Data are updated monthly.</p><ul>"
        '<li><a href="/sites/default/files/2026-10/sw-border-encounters-fy23-fy26-sep.csv">'
        "Southwest Land Border Encounters (FY23 - FY26 September)</a></li></ul>",
        1,
    ),
    "cbp-nationwide-encounters": (
        "<h1>Nationwide Encounters</h1><p>Data are updated monthly.</p><ul>"
        '<li><a href="/sites/default/files/2026-10/nationwide-encounters-fy23-fy26-sep.csv">'
        "Nationwide Encounters (FY23 - FY26 September)</a></li></ul>",
        1,
    ),
    # USCIS Electronic Reading Room: links to released records, mostly PDFs.
    "uscis-reading-room": (
        "<h1>Electronic Reading Room</h1><ul>"
        '<li><a href="/sites/default/files/document/foia/Policy_Memo_2026.pdf">Policy memo</a></li>'
        '<li><a href="/sites/default/files/document/foia/Contract_70SBUR26.pdf">Contract</a></li>'
        "</ul>",
        2,
    ),
    # EOIR Workload and Adjudication Statistics: one PDF per statistic, EOIR download links.
    "eoir-adjudication-statistics": (
        "<h1>Workload and Adjudication Statistics</h1><ul>"
        '<li><a href="/eoir/page/file/1060836/download">Total Asylum Applications</a></li>'
        '<li><a href="/media/1344791/dl?inline">Pending Cases</a></li></ul>',
        2,
    ),
}


@pytest.mark.parametrize("target_id", sorted(DESCRIBED))
def test_described_pages_yield_their_documents(target_id: str) -> None:
    main, expected = DESCRIBED[target_id]
    items = run_rule(TARGETS[target_id], built(main, target_id))
    assert len(items) == expected, items
    # Navigation and footer links of the shell are never publications.
    assert not any("/contact" in url or "/about" in url for _, url, _ in items)
