"""A simulated agency site for ``watcher demo``, and the weeks of trouble it goes through.

Every page is the real ICE Drupal/USWDS shell (``demo_site/ice_shell.html``, a capture of
ice.gov) with its main content swapped, so the demo exercises the same extraction as the
real site. The timeline replays what has really happened to publications our users follow:
a weekly report "temporarily suspended" (ICE's Declined Detainer Outcome Report, 2017), FOIA
documents taken down, a statistics table losing rows, a page gone and back, a firewall block.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

AKAMAI_BLOCK = (
    "<HTML><HEAD>\n<TITLE>Access Denied</TITLE>\n</HEAD><BODY>\n<H1>Access Denied</H1>\n\n"
    "You don't have permission to access \"http&#58;&#47;&#47;www&#46;ice&#46;gov&#47;ero&#47;"
    'annual&#45;report" on this server.<P>\nReference&#32;&#35;18&#46;6f2d3217&#46;1761900000'
    "&#46;2b3c4d5e\n</BODY>\n</HTML>\n"
)
FACILITY_STATES = ["TX", "LA", "GA", "AZ", "CA", "FL", "NM", "NJ", "PA", "WA", "CO", "MS"]


def _shell() -> tuple[str, str]:
    html = resources.files("watcher").joinpath("demo_site/ice_shell.html").read_text("utf-8")
    start = html.index(">", html.index("<main ")) + 1
    end = html.index("</main>")
    return html[:start], html[end:]


@dataclass
class Response:
    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class Site:
    """The agency's pages as they stand at one moment of the timeline."""

    def __init__(self) -> None:
        self._head, self._tail = _shell()
        self.pages: dict[str, Response] = {}
        self.lock = threading.Lock()

    def page(self, path: str, title: str, main: str, updated: date) -> None:
        head = self._head.replace(
            "<title>ICE Field Offices | ICE</title>", f"<title>{title} | ICE</title>"
        )
        stamp = (
            '<div class="views-row"><span class="field-content">Updated: '
            f'<time datetime="{updated.isoformat()}T09:00:00-05:00">'
            f"{updated:%m/%d/%Y}</time></span></div>"
        )
        body = f'{head}<div class="grid-container"><h1>{title}</h1>{main}{stamp}</div>{self._tail}'
        self.set(path, Response(200, body))

    def set(self, path: str, response: Response) -> None:
        with self.lock:
            self.pages[path] = response

    def get(self, path: str) -> Response:
        with self.lock:
            return self.pages.get(path) or Response(404, _not_found(self._head, self._tail))


def _not_found(head: str, tail: str) -> str:
    head = head.replace(
        "<title>ICE Field Offices | ICE</title>", "<title>Page Not Found | ICE</title>"
    )
    return f"{head}<h1>Page Not Found</h1><p>The requested page could not be found.</p>{tail}"


class SiteServer:
    """Serves a ``Site`` on 127.0.0.1 from a background thread; stops with the demo."""

    def __init__(self, site: Site) -> None:
        owner = site

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                r = owner.get(self.path.split("?")[0])
                data = r.body.encode("utf-8")
                self.send_response(r.status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                for k, v in r.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> SiteServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


# --- the pages ---------------------------------------------------------------------------------


def _fiscal_year(day: date) -> int:
    return day.year + 1 if day.month >= 10 else day.year


def stats_page(site: Site, files: list[date], facilities: int, updated: date) -> None:
    """ICE Detention Management: the current fiscal year's spreadsheet, named by its release
    date, plus the year-end file of each earlier fiscal year."""
    latest: dict[int, date] = {}
    for day in files:
        latest[_fiscal_year(day)] = day
    links = []
    for fy in sorted(latest, reverse=True):
        day = latest[fy]
        links.append(
            f'<li><a href="/doclib/detention/FY{fy % 100:02d}_detentionStats{day:%m%d%Y}.xlsx">'
            f"FY{fy} Detention Statistics (XLSX, 1.2 MB)</a></li>"
        )
    links.append(
        '<li><a href="/doclib/detention/FY25_detentionStats09252025.xlsx">'
        "FY2025 Detention Statistics (XLSX, 1.1 MB)</a></li>"
    )
    rows = "".join(
        f"<tr><td>Facility {i:03d}</td><td>City {i}</td><td>{FACILITY_STATES[i % 12]}</td>"
        f"<td>{(i * 37) % 900 + 20}</td></tr>"
        for i in range(1, facilities + 1)
    )
    main = (
        "<h2>Detention Statistics</h2><p>ICE publishes detention statistics semimonthly "
        "under 8 U.S.C. §1378a.</p>"
        f"<ul>{''.join(links)}</ul>"
        '<table id="facilities"><caption>Detention facilities</caption>'
        "<thead><tr><th>Name</th><th>City</th><th>State</th><th>ADP</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
    site.page("/detain/detention-management", "Detention Management", main, updated)


FOIA_TITLES = [
    "Detention Facility Inspection Report",
    "PREA Audit Report",
    "Detainee Death Review Report",
    "Detention Facility Contract",
    "Use of Force Review",
]


def foia_page(site: Site, removed: set[int], updated: date) -> None:
    """ICE FOIA Library, first page: 25 ``li.usa-collection__item`` entries with dates."""
    entries = []
    for n in range(25):
        if n in removed:
            continue
        day = date(2026, 9, 30) - timedelta(days=n * 3)
        title = f"{FOIA_TITLES[n % 5]} No. {62100 - n} | {('Detention', 'Contracts')[n % 2]}"
        entries.append(
            '<li class="usa-collection__item"><div class="usa-collection__body">'
            f'<h4 class="usa-collection__heading"><a href="/foia/doc-{62100 - n}">{title}</a></h4>'
            f'<ul class="usa-collection__meta"><li><time datetime="{day.isoformat()}">'
            f"{day:%B %d, %Y}</time></li></ul></div></li>"
        )
    main = f'<ul class="usa-collection">{"".join(entries)}</ul>'
    site.page("/foia/library", "FOIA Library", main, updated)


def weekly_page(site: Site, issues: list[date], suspended: bool, updated: date) -> None:
    """A weekly report page, like ICE's Declined Detainer Outcome Report (three issues, 2017)."""
    links = "".join(
        f'<li><a href="/doclib/ddor/ddor-{d.isoformat()}.pdf">Declined Detainer Outcome Report, '
        f"{d:%B} {d.day}, {d.year} (PDF)</a></li>"
        for d in reversed(issues)
    )
    notice = (
        '<div class="usa-alert usa-alert--info"><p>This report has been temporarily suspended '
        "while the agency reviews its methodology.</p></div>"
        if suspended
        else ""
    )
    main = f"{notice}<p>Published weekly.</p><ul>{links}</ul>"
    site.page("/ddor", "Declined Detainer Outcome Report", main, updated)


def oversight_page(site: Site, present: bool, updated: date) -> None:
    if not present:
        site.pages.pop("/detain/oversight-report", None)
        return
    main = (
        "<p>Annual report of detention oversight inspections.</p>"
        '<p><a href="/doclib/detention/oversight-report-2026_0915.pdf">'
        "Detention Oversight Report FY2026 (PDF)</a></p>"
    )
    site.page("/detain/oversight-report", "Detention Oversight Report", main, updated)


def annual_page(site: Site, blocked: bool, updated: date) -> None:
    if blocked:
        site.set("/ero/annual-report", Response(403, AKAMAI_BLOCK, {"Server": "AkamaiGHost"}))
        return
    main = (
        "<p>ICE's annual report.</p>"
        '<p><a href="/doclib/eoy/iceAnnualReportFY2025.pdf">FY 2025 Annual Report (PDF)</a></p>'
    )
    site.page("/ero/annual-report", "ERO Annual Report", main, updated)


# --- the timeline ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    at: datetime
    note: str  # what happens on the site, shown as the demo runs
    apply: Callable[[Site], None]


@dataclass
class _State:
    stats_files: list[date] = field(default_factory=lambda: [date(2026, 9, 17)])
    facilities: int = 201
    foia_removed: set[int] = field(default_factory=set)
    weekly: list[date] = field(default_factory=lambda: [date(2026, 10, 1)])
    suspended: bool = False
    oversight: bool = True
    blocked: bool = False


def timeline() -> list[Step]:
    """Six simulated weeks, checks at 09:00 UTC. Comments say what each step should trigger."""
    s = _State()

    def render(day: date) -> Callable[[Site], None]:
        def apply(site: Site) -> None:
            stats_page(site, s.stats_files, s.facilities, s.stats_files[-1])
            foia_page(site, s.foia_removed, date(2026, 9, 30))
            weekly_page(site, s.weekly, s.suspended, s.weekly[-1])
            oversight_page(site, s.oversight, date(2026, 9, 15))
            annual_page(site, s.blocked, date(2026, 1, 20))

        return apply

    d = date
    # (day, what happens, changes): "stats"/"weekly" add a dated file or issue; other keys set
    # the state of the site.
    script: list[tuple[date, str, dict[str, Any]]] = [
        (d(2026, 10, 1), "Baseline: every page is captured for the first time", {}),
        (d(2026, 10, 3), "A new detention-statistics spreadsheet", {"stats": d(2026, 10, 2)}),
        (d(2026, 10, 8), "The weekly report's second issue", {"weekly": d(2026, 10, 8)}),
        (d(2026, 10, 11), "Three FOIA documents are taken down", {"foia_removed": {4, 9, 17}}),
        (d(2026, 10, 13), "They are still gone", {}),
        (d(2026, 10, 15), "The weekly report's third issue", {"weekly": d(2026, 10, 15)}),
        (
            d(2026, 10, 17),
            "A new spreadsheet; the facility table drops from 201 to 172 rows",
            {"stats": d(2026, 10, 16), "facilities": 172},
        ),
        (
            d(2026, 10, 19),
            "The table stays at 172 rows; a firewall blocks the annual report",
            {"blocked": True},
        ),
        (d(2026, 10, 21), "Still blocked", {}),
        (
            d(2026, 10, 22),
            "The block lifts; the weekly report is 'temporarily suspended'",
            {"blocked": False, "suspended": True},
        ),
        (d(2026, 10, 26), "No new weekly issue", {}),
        (
            d(2026, 10, 30),
            "A new spreadsheet; the oversight report page answers 404",
            {"stats": d(2026, 10, 30), "oversight": False},
        ),
        (d(2026, 11, 1), "Still 404", {}),
        (d(2026, 11, 4), "The oversight report page is back", {"oversight": True}),
        (d(2026, 11, 9), "Quiet", {}),
        (d(2026, 11, 13), "A new spreadsheet", {"stats": d(2026, 11, 13)}),
    ]
    steps = []
    for day, note, changes in script:

        def apply(site: Site, changes: dict[str, Any] = changes, day: date = day) -> None:
            for key, value in changes.items():
                if key == "stats":
                    s.stats_files.append(value)
                elif key == "weekly":
                    s.weekly.append(value)
                else:
                    setattr(s, key, value)
            render(day)(site)

        steps.append(Step(datetime(day.year, day.month, day.day, 9, tzinfo=UTC), note, apply))
    return steps


def demo_targets(base: str) -> str:
    """The demo's targets.yaml: the same keys a real user writes, pointed at the local site."""
    return f"""\
settings:
  timeout: 5s
  retries: 0
  confirm: 2
  per_host: {{concurrency: 4, delay: 0s}}
targets:
  - id: ice-detention-stats
    name: ICE detention statistics
    agency: ICE
    url: {base}/detain/detention-management
    items: {{select: "a[href*='detentionStats']", within: main}}
    expect: {{every: 14d, grace: 7d}}
    shrink: {{items: 1, rows: 10%}}
    tags: [ice, detention]
  - id: ice-foia-library
    name: ICE FOIA Library
    agency: ICE
    url: {base}/foia/library
    items: {{select: "li.usa-collection__item", within: main}}
    shrink: {{items: 5}}
    tags: [ice, foia]
  - id: ice-ddor
    name: ICE Declined Detainer Outcome Report
    agency: ICE
    url: {base}/ddor
    items: {{within: main}}
    expect: {{every: 7d, grace: 3d}}
    tags: [ice, detainers]
  - id: ice-oversight-report
    name: ICE detention oversight report
    agency: ICE
    url: {base}/detain/oversight-report
    tags: [ice, oversight]
  - id: ice-annual-report
    name: ICE ERO annual report
    agency: ICE
    url: {base}/ero/annual-report
    # Firewalls block for a check or two; this page is only an error after three.
    confirm: 3
    tags: [ice, ero]
"""
