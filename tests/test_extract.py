"""extract() on the real ICE and EOIR captures, the built ICE pages, and hostile input."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from watcher.extract import MISSING_PATTERNS, extract, informative, validate_selector
from watcher.models import Page, TableShape
from watcher.urls import doc_type, file_name, normalise_url

FIXTURES = Path(__file__).parent / "fixtures"
ICE_TODAY = date(2026, 4, 15)  # the ICE pages were saved in April 2026
ID = re.compile(r"\bID\s*(\d{4})\b")
STATS_SELECTOR = "a[href*='detentionStats'], a[href*='detention-stats']"


def read(rel: str) -> bytes:
    return (FIXTURES / rel).read_bytes()


def ice(name: str, today: date = ICE_TODAY, **kwargs: str) -> Page:
    rel = f"ice/{name}.html" if name.startswith("ice_") else name
    return extract(read(rel), url=f"https://www.ice.gov/x/{name}", today=today, **kwargs)


EOIR = {
    "2021-12-19": (49, 3985, 4033, date(2021, 12, 9)),
    "2023-11-14": (83, 3985, 4067, date(2023, 11, 2)),
    "2024-05-07": (90, 3985, 4074, date(2024, 4, 16)),
}


def eoir(version: str) -> Page:
    body = read(f"eoir/justice_gov_eoir_volume-28_{version}.html")
    return extract(
        body, url="https://www.justice.gov/eoir/volume-28", today=date.fromisoformat(version)
    )


def shell(main: str, title: str = "Test page | ICE") -> bytes:
    """The real ICE page shell with ``main`` as the content of <main>."""
    html = read("ice/ice_contact_field-offices_listing.html").decode()
    start, end = html.index('<main class="main-content'), html.index("</main>") + len("</main>")
    html = html[:start] + f'<main class="main-content" role="main">{main}</main>' + html[end:]
    return html.replace("ICE Field Offices | ICE", title).encode()


# --- titles and missing pages --------------------------------------------------------------

TITLES = {
    "ice/ice_contact_field-offices_listing.html": "ICE Field Offices | ICE",
    "ice/ice_node_62000.html": "Archived: San Diego businessmen, sanitation company plead guilty "
    "to fraud, illegal pesticides sales | ICE",
    "ice/ice_node_62001.html": "2022 Baker County Sheriff’s Office, Macclenny, FL - Oct. 28-20, "
    "2022 | ICE",
    "ice/ice_node_62010.html": "70CDCR21D00000004: Broward CDF - Pompano Beach, FL | ICE",
    "ice/ice_node_62037.html": "87 FR 76068 | ICE",
    "ice/ice_node_62041.html": "Berks County Residential Center – Aug. 9-11, 2022 | ICE",
    "ice/ice_node_62047.html": "Detainee Death Review Report (OPR) - Kesley Vial (Dec. 8, 2022) "
    "| ICE",
    # the 2023 page also has dozens of SVG <title>s in its body; only <head> counts
    "eoir/justice_gov_eoir_volume-28_2021-12-19.html": "Volume 28",
    "eoir/justice_gov_eoir_volume-28_2023-11-14.html": "Executive Office for Immigration Review "
    "| Volume 28",
    "eoir/justice_gov_eoir_volume-28_2024-05-07.html": "Executive Office for Immigration Review "
    "| Volume 28",
    "built/ice_foia_library.html": "FOIA Library | ICE",
    "built/ice_detention_management.html": "Detention Management | ICE",
}


@pytest.mark.parametrize(("rel", "title"), TITLES.items())
def test_titles_and_never_missing(rel: str, title: str) -> None:
    page = extract(read(rel), url="https://www.ice.gov/x", today=ICE_TODAY)
    assert page.title == title
    assert not page.looks_missing  # ice_node_62000 is "Archived:", which is not missing
    assert not page.is_document


def test_title_fallbacks() -> None:
    og = b'<html><head><meta property="og:title" content="OG title"></head><main>x</main></html>'
    assert extract(og, url="https://x.gov/", today=ICE_TODAY).title == "OG title"
    h1 = b"<html><body><main><h1> First\n  heading </h1><h1>Second</h1></main></body></html>"
    assert extract(h1, url="https://x.gov/", today=ICE_TODAY).title == "First heading"


@pytest.mark.parametrize(
    ("title", "main"),
    [
        ("Page Not Found | ICE", "<h1>Page Not Found</h1><p>Try the search.</p>"),
        ("Page not found | ICE", "<h1>Sorry</h1>"),
        ("404 - File or directory not found.", ""),
        ("ICE", "<h1>Error 404</h1>"),
        ("ICE", "<h1>Oops</h1><p>The page you requested could not be found.</p>"),
        ("ICE", "<h1>Notice</h1><p>This page has been removed.</p>"),
        ("ICE", "<h1>Detainer reports</h1><p>This report is no longer available.</p>"),
    ],
)
def test_looks_missing(title: str, main: str) -> None:
    assert extract(shell(main, title), url="https://www.ice.gov/x", today=ICE_TODAY).looks_missing


@pytest.mark.parametrize(
    ("title", "main"),
    [
        ("Archived: Old news | ICE", "<h1>Archived Content</h1>"),
        ("MATTER OF X, 28 I&N Dec. 404 (BIA 2021) | EOIR", "<h1>28 I&N Dec. 404</h1>"),
        # a long page that mentions a missing report is not itself missing
        (
            "Reports | ICE",
            "<h1>Reports</h1>"
            + "<p>Quarterly statistics on removals.</p>" * 30
            + "<p>The 2015 facility list is no longer available.</p>",
        ),
    ],
)
def test_not_missing(title: str, main: str) -> None:
    page = extract(shell(main, title), url="https://www.ice.gov/x", today=ICE_TODAY)
    assert not page.looks_missing


def test_missing_patterns_are_one_documented_constant() -> None:
    assert len(MISSING_PATTERNS) >= 8
    assert all(p.flags & re.IGNORECASE for p in MISSING_PATTERNS)


# --- lines, boilerplate, updated -----------------------------------------------------------


def test_field_offices_lines_skip_uswds_boilerplate() -> None:
    page = ice("ice_contact_field-offices_listing")
    text = "\n".join(page.lines)
    assert page.lines[0] == "ICE Field Offices"
    assert "Adelanto - OPLA" in page.lines
    assert "An official website of the United States government" not in text  # .usa-banner
    assert "Here's how you know" not in text
    assert "Skip to main content" not in text
    assert "Return to top" not in text  # footer
    assert "Submit website errors to Webmaster" not in text  # local footer navs inside <main>
    assert "Breadcrumb" not in text
    assert "gtag(" not in text and "span.country" not in text  # script, style
    assert "Title" not in page.lines  # an HTML comment inside <main>
    assert all(line == " ".join(line.split()) and line for line in page.lines)


def test_field_offices_updated_block() -> None:
    # <span>Updated: <time datetime="2026-02-04T13:51:38-05:00" ...>02/04/2026</time>
    assert ice("ice_contact_field-offices_listing").updated == date(2026, 2, 4)
    assert ice("ice_node_62000").updated == date(2025, 1, 24)
    assert ice("ice_node_62047").updated is None


def test_lines_one_per_block() -> None:
    body = (
        "<h2>Heading</h2><p>First   para\n with <b>bold</b> text.</p><ul><li>One</li>"
        "<li>Two<br>lines</li></ul><table><tr><td>a</td><td>b</td></tr></table>"
        "<script>var x = 1;</script><div>tail <span>text</span></div>"
    )
    page = extract(shell(body), url="https://www.ice.gov/x", today=ICE_TODAY)
    assert page.lines == [
        "Heading",
        "First para with bold text.",
        "One",
        "Two",
        "lines",
        "a b",
        "tail text",
    ]


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (b"<main><p>Last Updated: September 25, 2025</p></main>", date(2025, 9, 25)),
        (b"<main><p>Page last reviewed: 09/25/2025</p></main>", date(2025, 9, 25)),
        (b"<main><div>Updated December 9, 2021</div></main>", date(2021, 12, 9)),
        (
            b"<main><p>x</p></main><footer><p>Last updated <span>Sept. 1, 2025</span></p></footer>",
            date(2025, 9, 1),
        ),
        (
            b'<main><p>x</p></main><div><span>Updated:</span> <time datetime="2025-08-07">Aug 7'
            b"</time></div>",
            date(2025, 8, 7),
        ),
        (
            b'<main><p>x</p></main><div><span>Last <b>updated</b>:</span> <time datetime="'
            b'2025-08-07">Aug 7</time></div>',
            date(2025, 8, 7),
        ),
        (b'<main><p>Published <time datetime="2025-08-07">Aug 7</time></p></main>', None),
        (b"<main><p>This list is updated monthly.</p><p>Sept. 1, 2025</p></main>", None),
        (b"<main><p>Updated: September 25, 2031</p></main>", None),  # future
    ],
)
def test_updated_variants(html: bytes, expected: date | None) -> None:
    assert extract(html, url="https://x.gov/", today=ICE_TODAY).updated == expected


def test_eoir_updated() -> None:
    for version, (_, _, _, updated) in EOIR.items():
        assert eoir(version).updated == updated


# --- items on the real pages ---------------------------------------------------------------


def test_foia_item_page_pdf() -> None:
    page = ice("ice_node_62047")
    assert len(page.items) == 1
    item = page.items[0]
    assert item.url == "https://www.ice.gov/doclib/foia/reports/ddrKesleyVial_opr.pdf"
    assert item.key == item.url
    assert item.type == "pdf"
    assert item.title == "Detainee Death Review Report (OPR) - Kesley Vial (Dec. 8, 2022)"
    assert (item.date, item.date_source) == (date(2022, 12, 8), "text")


@pytest.mark.parametrize(
    ("node", "path", "dated"),
    [
        (
            "62001",
            "odo-compliance-inspections/BakerCountySheriffsOffice_2022.pdf",
            (date(2022, 10, 28), "text"),
        ),
        (
            "62010",
            "detFacContracts/70CDCR21D00000004_08242022_BrowardCDF_PompanoBeachFL.pdf",
            (date(2022, 8, 24), "filename"),
        ),
        ("62041", "prea_audit/2022-BerksCountyResidentialCenter.pdf", (date(2022, 8, 9), "text")),
    ],
)
def test_foia_item_pages(node: str, path: str, dated: tuple[date, str]) -> None:
    (item,) = ice(f"ice_node_{node}").items  # the category link is not a document
    assert item.url == f"https://www.ice.gov/doclib/foia/{path}"
    assert (item.date, item.date_source) == dated


def test_federal_register_time_datetime() -> None:
    page = ice("ice_node_62037")
    assert page.items == []  # the Federal Register link is a web page, not a document
    (item,) = ice("ice_node_62037", select="article").items
    assert item.url.startswith("https://www.federalregister.gov/documents/2022/12/12/")
    # <time datetime="2022-12-12T15:54:30Z">Mon, 12/12/2022 - 10:54</time>
    assert (item.date, item.date_source) == (date(2022, 12, 12), "time")
    assert item.type == "html"


@pytest.mark.parametrize("version", EOIR)
def test_eoir_one_item_per_decision(version: str) -> None:
    count, first, last, _ = EOIR[version]
    items = eoir(version).items
    ids = [ID.findall(item.title) for item in items]
    assert len(items) == count
    assert all(len(found) == 1 for found in ids), [
        i.title for i in items if len(ID.findall(i.title)) != 1
    ]
    assert sorted(int(found[0]) for found in ids) == list(range(first, last + 1))
    assert len({item.key for item in items}) == count
    assert all(item.url.startswith("https://www.justice.gov/") for item in items)
    assert all(item.type in ("pdf", "file") for item in items)
    assert all(item.date is None for item in items)  # the rows carry no dates


def by_id(page: Page) -> dict[int, str]:
    return {int(ID.findall(item.title)[0]): item.key for item in page.items}


def test_eoir_titles_are_row_text() -> None:
    titles = {int(ID.findall(i.title)[0]): i.title for i in eoir("2021-12-19").items}
    assert titles[4033] == "B-Z-R-, 28 I&N Dec. 424 (A.G. 2021) ID 4033 (PDF)"
    # Empty links to 4008's file sit in the rows of 4009 and 4010; 4008 keeps its own row.
    assert titles[4008].startswith("VIERA-GARCIA and ORDONEZ-VIERA")
    assert titles[4010].startswith("L-L-P-,")
    assert by_id(eoir("2021-12-19"))[4008].endswith("/eoir/page/file/1360626/download")


def test_eoir_split_link_4038() -> None:
    # <a href="/file/1468491/dl">ID </a><a href="/media/1208956/dl?inline">4038</a> (PDF)
    for version in ("2023-11-14", "2024-05-07"):
        page = eoir(version)
        (item,) = [i for i in page.items if "ID 4038" in i.title]
        assert item.key == "https://www.justice.gov/media/1208956/dl?inline"
        assert item.title == "T-C-A-, 28 I&N Dec. 472 (BIA 2022) ID 4038 (PDF)"
        assert not any("1468491" in i.key for i in page.items)


def test_eoir_documents_moved_between_versions() -> None:
    # The reason titles must carry IDs: the same decisions moved to new URLs, twice.
    v2021, v2023, v2024 = (by_id(eoir(v)) for v in EOIR)
    assert v2021[4000] != v2023[4000] == v2024[4000]
    assert v2023[4052] != v2024[4052]
    assert v2024[4068] == "https://www.justice.gov/d9/2023-12/4068.pdf"


def test_eoir_tables() -> None:
    tables = eoir("2021-12-19").tables
    assert len(tables) == 48
    assert tables[0] == TableShape("table 1", 1, 2)
    assert [t for t in tables if t.rows == 0] == [TableShape("table 19", 0, 0)]  # <table></table>
    assert len(eoir("2024-05-07").tables) == 90


# --- the built ICE pages -------------------------------------------------------------------


def test_foia_library_listing() -> None:
    page = ice("built/ice_foia_library.html")
    assert len(page.items) == 25
    first = page.items[0]
    assert first.url == "https://www.ice.gov/node/62047"
    assert (
        first.title == "Detainee Death Review Report (OPR) - Kesley Vial (Dec. 8, 2022) | Reports"
    )
    # the <time> wins over the date written in the title
    assert (first.date, first.date_source) == (date(2025, 3, 14), "time")
    assert all(item.date_source == "time" and " | " in item.title for item in page.items)
    assert not any("page=" in item.key for item in page.items)  # pagination is not an item
    assert page.updated == date(2025, 3, 14)


STATS = {
    "FY25_detentionStats09252025.xlsx": date(2025, 9, 25),
    "FY24_detentionStats09302024.xlsx": date(2024, 9, 30),
    "FY23_detentionStats01192022.xlsx": date(2023, 1, 19),
    "FY22_detentionStats03172022b.xlsx": date(2022, 3, 17),
    "FY21_detention-stats_0301.xlsx": date(2021, 3, 1),
}


@pytest.mark.parametrize("select", [None, STATS_SELECTOR])
def test_detention_management(select: str | None) -> None:
    kwargs = {"select": select} if select else {}
    page = ice("built/ice_detention_management.html", **kwargs)
    stats = [i for i in page.items if i.type == "xlsx"]
    assert {file_name(i.url): i.date for i in stats} == STATS
    assert all(i.date_source == "filename" for i in stats)
    assert all(i.url.startswith("https://www.ice.gov/doclib/detention/") for i in stats)
    assert stats[0].title == "FY2025 Detention Statistics (XLSX, 1.2 MB)"
    # the default also finds the standards PDF; the selector only the statistics
    assert len(page.items) == (5 if select else 6)
    assert page.updated == date(2025, 9, 26)


# --- select and within ---------------------------------------------------------------------

LISTING = """
<div id="current"><ul>
  <li><span>Report A</span> <a href="/doclib/a.pdf">(PDF)</a>
      <time datetime="2025-05-01">May 1</time></li>
  <li><a href="/doclib/b.pdf">Report B, issued June 2, 2025</a></li>
  <li>No link here</li>
</ul></div>
<div id="archive"><ul><li><a href="/doclib/old.pdf">Old report</a></li></ul></div>
"""


def listing(**kwargs: str) -> Page:
    return extract(shell(LISTING), url="https://www.ice.gov/r/", today=ICE_TODAY, **kwargs)


def test_select_element_uses_first_link_and_own_text() -> None:
    items = listing(select="#current li").items
    assert [i.key for i in items] == [
        "https://www.ice.gov/doclib/a.pdf",
        "https://www.ice.gov/doclib/b.pdf",
    ]
    assert items[0].title == "Report A (PDF) May 1"  # weak link text: the <li>'s text
    assert (items[0].date, items[0].date_source) == (date(2025, 5, 1), "time")
    assert (items[1].date, items[1].date_source) == (date(2025, 6, 2), "text")


def test_select_bare_links_and_within() -> None:
    assert len(listing(select="a[href$='.pdf']").items) == 3
    items = listing(select="a[href$='.pdf']", within="#archive").items
    assert [i.title for i in items] == ["Old report"]
    assert listing(select="a", within="#gone").items == []  # a vanished container is news
    assert [i.title for i in listing(within="#archive").items] == ["Old report"]


def test_invalid_selector() -> None:
    assert validate_selector("li.usa-collection__item") is None
    assert validate_selector("li[") is not None
    with pytest.raises(ValueError, match="invalid CSS selector"):
        listing(select="li[")


def test_same_document_twice_is_one_item() -> None:
    body = (
        '<table><tr><td>Annual report 2024</td><td><a href="/doclib/r.pdf"></a>'
        '<a href="/doclib/r.pdf?utm_source=gd#page=2">PDF</a></td></tr></table>'
        '<p><a href="https://WWW.ICE.GOV:443/doclib/r.pdf">Annual Report 2024 (PDF)</a></p>'
    )
    (item,) = extract(shell(body), url="https://www.ice.gov/r", today=ICE_TODAY).items
    assert item.key == "https://www.ice.gov/doclib/r.pdf"
    assert item.title == "Annual Report 2024 (PDF)"  # the most informative label


def test_titles_from_context_and_labels() -> None:
    body = (
        '<ul><li>Quarterly removals <a href="/q1.xlsx">4038</a></li>'
        '<li><a href="/q2.csv"><img src="i.png" alt="Quarterly detainers"></a></li>'
        '<li><a href="/q3.zip" aria-label="Archive of 2019 files"></a></li></ul>'
        '<p><a href="/media/1234567/dl?inline">Download</a></p>'
    )
    items = extract(shell(body), url="https://www.ice.gov/r", today=ICE_TODAY).items
    assert [(i.title, i.type) for i in items] == [
        ("Quarterly removals 4038", "xlsx"),
        ("Quarterly detainers", "csv"),
        ("Archive of 2019 files", "zip"),
        ("Download", "file"),
    ]


def test_informative() -> None:
    assert not informative("ID 4033")
    assert not informative("4038")
    assert not informative("ID 4055 (PDF)")
    assert not informative("Download (PDF, 1.2 MB)")
    assert informative("FY2025 Detention Statistics (XLSX, 1.2 MB)")


def test_tables() -> None:
    body = (
        "<table><caption> FY2025 removals </caption><tr><th>Month</th><th>Count</th></tr>"
        "<tr><td>Oct</td><td>1</td></tr><tr><td>Nov</td><td>2</td><td>x</td></tr></table>"
        '<table id="t2"><tr><th>Only a header</th></tr></table><table><tr><td>1</td></tr></table>'
    )
    page = extract(shell(body), url="https://www.ice.gov/r", today=ICE_TODAY)
    assert page.tables == [
        TableShape("FY2025 removals", 2, 3),
        TableShape("t2", 0, 1),
        TableShape("table 3", 1, 1),
    ]


# --- documents, decoding, hostile input ----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "body", "content_type", "kind", "dated"),
    [
        (
            "https://www.ice.gov/doclib/detention/FY25_detentionStats09252025.xlsx",
            b"PK\x03\x04rest",
            "application/octet-stream",
            "xlsx",
            date(2025, 9, 25),
        ),
        (
            "https://www.justice.gov/media/1208956/dl?inline",
            b"%PDF-1.7\n...",
            "application/pdf",
            "pdf",
            None,
        ),
        ("https://www.ice.gov/doclib/foia/x.csv", b"a,b\n1,2\n", "text/csv", "csv", None),
        ("https://www.ice.gov/doclib/r.pdf", b"\x00\x01binary", "text/html", "pdf", None),
    ],
)
def test_document_target(
    url: str, body: bytes, content_type: str, kind: str, dated: date | None
) -> None:
    page = extract(body, url=url, today=ICE_TODAY, content_type=content_type)
    assert page.is_document and page.lines == [] and page.tables == []
    assert page.title == file_name(url)
    (item,) = page.items
    assert (item.type, item.date, item.key) == (kind, dated, normalise_url(url))
    assert item.date_source == ("filename" if dated else None)


def test_html_at_a_pdf_url_is_a_page() -> None:
    body = shell("<h1>Page not found</h1>", "Page not found | ICE")
    page = extract(
        body,
        url="https://www.ice.gov/doclib/r.pdf",
        today=ICE_TODAY,
        content_type="application/pdf",
    )
    assert not page.is_document and page.looks_missing


def test_latin1_without_charset() -> None:
    body = "<title>Caf\xe9 r\xe9sum\xe9</title><main><p>\x93Quoted\x94 na\xefve</p></main>"
    page = extract(body.encode("latin-1"), url="https://x.gov/", today=ICE_TODAY)
    assert page.title == "Café résumé"
    assert page.lines == ["“Quoted” naïve"]


@pytest.mark.parametrize(
    ("body", "charset", "title"),
    [
        ("<meta charset='windows-1252'><title>Caf\xe9</title>".encode("cp1252"), None, "Café"),
        (
            "<meta http-equiv='Content-Type' content='text/html; charset=ISO-8859-1'>"
            "<title>Caf\xe9</title>".encode("latin-1"),
            None,
            "Café",
        ),
        ("<title>Café</title>".encode(), "iso-8859-1", "Café"),  # mislabelled UTF-8
        ("<title>Café</title>".encode("latin-1"), "utf-8", "Café"),  # lying header
        ("<title>Café</title>".encode("utf-16"), None, "Café"),
        (b"<title>Caf\xc3\xa9</title>", "no-such-charset", "Café"),
    ],
)
def test_decoding(body: bytes, charset: str | None, title: str) -> None:
    assert extract(body, url="https://x.gov/", today=ICE_TODAY, charset=charset).title == title


@pytest.mark.parametrize(
    "body",
    [
        b"",
        bytes(range(256)) * 400,
        b"<html><body>\x00\x00<p>nul\x00</p></body></html>",
        b"<html><body><main>" + b"<div>" * 20000 + b"deep" + b"</div>" * 20000 + b"</main>",
        b"<table><tr><td>" * 3000 + b'<a href="a.pdf">x</a>',
        b"<p><a href='x.pdf'>" * 3000,
        b'<main><a href="http://[::1">x.pdf</a><a href="javascript:void(0)">y.pdf</a></main>',
        b"<?xml version='1.0' encoding='utf-8'?><html><title>T</title></html>",
    ],
)
def test_hostile_input_never_raises(body: bytes) -> None:
    page = extract(body, url="https://x.gov/", today=ICE_TODAY)
    assert isinstance(page, Page)


def test_large_listing() -> None:
    """20,000 USWDS collection entries in the ICE shell (~5 MB): every one is an item."""
    entry = (
        '<li class="usa-collection__item"><div class="usa-collection__body">'
        '<h4 class="usa-collection__heading"><a href="/foia/library/item-{i}">Inspection '
        'report {i} | Reports</a></h4><time datetime="2024-05-{d:02d}T12:00:00-04:00">'
        "05/{d:02d}/2024</time></div></li>\n"
    )
    entries = "".join(entry.format(i=i, d=i % 28 + 1) for i in range(20000))
    body = shell(f'<ul class="usa-collection">{entries}</ul>')
    assert len(body) > 5_000_000
    page = extract(body, url="https://www.ice.gov/foia/library", today=ICE_TODAY)
    assert len(page.items) == 20000


# --- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        (
            "HTTPS://WWW.ICE.GOV:443/Doclib/FOIA/X.pdf#page=2",
            None,
            "https://www.ice.gov/Doclib/FOIA/X.pdf",
        ),
        ("http://Example.GOV:80", None, "http://example.gov/"),
        ("https://x.gov:8443/a", None, "https://x.gov:8443/a"),
        (
            "/d9/2023-10/4067.pdf?utm_source=gd&b=2&a=1&fbclid=zz&gclid=1",
            "https://www.justice.gov/eoir/volume-28",
            "https://www.justice.gov/d9/2023-10/4067.pdf?a=1&b=2",
        ),
        (
            "page.html?_ga=1&mc_cid=2&mc_eid=3&UTM_Medium=5&id=7",
            "https://www.ice.gov/a/b/",
            "https://www.ice.gov/a/b/page.html?id=7",
        ),
        (
            "/media/1208956/dl?inline",
            "https://www.justice.gov/eoir/volume-28",
            "https://www.justice.gov/media/1208956/dl?inline",
        ),
        ("//www.ice.gov/x", "https://a.gov/", "https://www.ice.gov/x"),
        ("/a b.pdf", "https://x.gov/", "https://x.gov/a%20b.pdf"),
        ("/r%2fx.pdf", "https://x.gov/", "https://x.gov/r%2Fx.pdf"),
        ("  /x.pdf\n", "https://x.gov/", "https://x.gov/x.pdf"),
        ("mailto:foia@ice.dhs.gov", None, "mailto:foia@ice.dhs.gov"),
    ],
)
def test_normalise_url(url: str, base: str | None, expected: str) -> None:
    assert normalise_url(url, base) == expected


def test_file_name_and_doc_type() -> None:
    assert file_name("https://www.ice.gov/doclib/a%20b.pdf?x=1") == "a b.pdf"
    assert file_name("https://x.gov/a/") == ""
    assert doc_type("https://x.gov/R.PDF") == "pdf"
    assert doc_type("/eoir/page/file/1454401/download") == "file"
    assert doc_type("/media/1208956/dl?inline") == "file"
    assert doc_type("/x", "application/pdf") == "pdf"
    assert doc_type("/x", "application/octet-stream") == "file"
    assert doc_type("/download.aspx?file=stats.xlsx") == "xlsx"
    assert doc_type("/node/62047") == "html"
    assert doc_type("/search?q=report.pdf") == "html"
