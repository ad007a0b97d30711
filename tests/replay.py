"""Replays: a sequence of page versions served by the local test server, checked with the
real ``watcher check --json --at …``, and the alert timeline that came out of it.

The pages are the built ICE fixtures (real ICE shell, described structure) with their
contents changed the way the real pages change: a new detention-statistics spreadsheet
every two weeks, a FOIA listing losing entries, a page gone and back.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Watcher, fixture_bytes
from tests.server import PageServer

STATS_PAGE = fixture_bytes("built/ice_detention_management.html").decode()
FOIA_PAGE = fixture_bytes("built/ice_foia_library.html").decode()
AKAMAI_403 = (
    b"<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD><BODY><H1>Access Denied</H1>"
    b'You don\'t have permission to access "http&#58;&#47;&#47;www&#46;ice&#46;gov&#47;" '
    b"on this server.<P>Reference&#32;&#35;18&#46;6f2d3217&#46;1713200000&#46;1a2b3c4d"
    b"</BODY></HTML>"
)

_CURRENT = re.compile(r"(<h3>Current fiscal year</h3>\s*<ul>\s*)<li>.*?</li>", re.S)
_YEAR_END = re.compile(r"(<h3>Year-end statistics</h3>\s*<ul>\s*)", re.S)
_UPDATED = re.compile(r'<time datetime="[^"]*" title="[^"]*">[^<]*</time>')


def fiscal_year(d: date) -> int:
    return d.year + 1 if d.month >= 10 else d.year


def stats_file(d: date) -> tuple[str, str]:
    """The file name and link text ICE uses for the release of ``d``."""
    fy = fiscal_year(d)
    return f"FY{fy % 100:02d}_detentionStats{d:%m%d%Y}.xlsx", f"FY{fy} Detention Statistics"


def link(name: str, text: str) -> str:
    return f'<li><a href="/doclib/detention/{name}">{text} (XLSX, 1.2 MB)</a></li>'


def detention_page(current: date, year_end: tuple[date, ...] = ()) -> str:
    """The detention page with the release of ``current`` as the current-year file, and the
    final releases of finished fiscal years (``year_end``) above the real year-end files."""
    name, text = stats_file(current)
    page = _CURRENT.sub(lambda m: m.group(1) + link(name, text), STATS_PAGE)
    extra = "".join(link(*stats_file(d)) + "\n" for d in year_end)
    page = _YEAR_END.sub(lambda m: m.group(1) + extra, page)
    stamp = (
        f'<time datetime="{current.isoformat()}T10:00:00-04:00" title="x">{current:%m/%d/%Y}</time>'
    )
    return _UPDATED.sub(stamp, page)


FOIA_ITEM = re.compile(r'<li class="usa-collection__item">.*?</li>', re.S)


def foia_entries() -> list[str]:
    return FOIA_ITEM.findall(FOIA_PAGE)


def foia_page(entries: list[str]) -> str:
    """The FOIA Library with ``entries`` (``li.usa-collection__item`` blocks) in order."""
    first = FOIA_PAGE.index('<li class="usa-collection__item">')
    last = FOIA_PAGE.rindex("</li>", 0, FOIA_PAGE.index("</ul>", first)) + len("</li>")
    return FOIA_PAGE[:first] + "\n".join(entries) + FOIA_PAGE[last:]


def foia_entry(node: int, title: str, when: str) -> str:
    return (
        '<li class="usa-collection__item">\n  <div class="usa-collection__calendar-date">'
        f'<time datetime="{when}">X</time></div>\n  <div class="usa-collection__body">\n'
        f'    <h4 class="usa-collection__heading"><a class="usa-link" href="/node/{node}"'
        f' hreflang="en">{title} | Reports</a></h4>\n  </div>\n</li>'
    )


@dataclass
class Check:
    at: str
    code: int
    target: dict[str, Any]
    report: dict[str, Any] = field(default_factory=dict)

    def of(self, target_id: str) -> dict[str, Any]:
        return next(t for t in self.report["targets"] if t["id"] == target_id)

    @property
    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.target["events"]]

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.target["events"] if e["kind"] == kind]


@dataclass
class Replay:
    """One target checked again and again, with everything it reported."""

    watcher: Watcher
    server: PageServer
    checks: list[Check] = field(default_factory=list)

    def __post_init__(self) -> None:
        _LIVE.append(self)

    def setup(self, path: str, extra: str = "", settings: str = "", notify: str = "") -> None:
        self.watcher.write(
            f"  - id: page\n    name: The page\n    url: {self.server.url(path)}\n{extra}",
            settings=settings,
            notify=notify,
        )

    def check(self, at: datetime | str) -> Check:
        stamp = at if isinstance(at, str) else at.isoformat()
        code, report = self.watcher.check("--no-notify", at=stamp)
        c = Check(stamp, code, report["targets"][0], report)
        self.checks.append(c)
        return c

    def db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.watcher.data_dir / "watcher.db")
        db.row_factory = sqlite3.Row
        return db

    def alerts(self, target: str = "page") -> list[sqlite3.Row]:
        """Alerts that fired (pending ones that cleared were never news)."""
        return (
            self.db()
            .execute("SELECT * FROM alerts WHERE fired_at IS NOT NULL AND target_id=?", (target,))
            .fetchall()
        )

    def recovered(self, target: str = "page") -> list[sqlite3.Row]:
        return (
            self.db()
            .execute("SELECT * FROM events WHERE kind='recovered' AND target_id=?", (target,))
            .fetchall()
        )

    def outbox(self) -> list[dict[str, Any]]:
        rows = self.db().execute("SELECT dedupe_key, payload FROM outbox ORDER BY id").fetchall()
        return [{"key": r[0], **json.loads(r[1])} for r in rows]

    def timeline(self, target: str = "page") -> list[tuple[str, str, str]]:
        """(kind, check time, summary) for every alert when it fired, and every recovery."""
        db = self.db()
        out = []
        for a in self.alerts(target):
            event = db.execute(
                "SELECT summary FROM events WHERE kind=? AND subject=? AND at=? AND target_id=?",
                (a["kind"], a["subject"], a["fired_at"], target),
            ).fetchone()
            out.append((a["kind"], a["fired_at"], event[0]))
        out += [("recovered", e["at"], e["summary"]) for e in self.recovered(target)]
        return sorted(out, key=lambda t: t[1])


_LIVE: list[Replay] = []


@pytest.fixture(autouse=True)
def show_alerts(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each replay, print what fired: ``pytest -s tests/test_replay*.py`` lists every
    scenario with its alerts (kind, check time, summary)."""
    _LIVE.clear()
    yield
    for replay in _LIVE:
        if not replay.checks:
            continue
        print(f"\n## {request.node.name}")
        for t in replay.checks[0].report["targets"]:
            lines = replay.timeline(t["id"]) or [("-", "", "no alert fired")]
            for kind, at, summary in lines:
                print(f"  [{t['id']}] {kind:<11} {at:<26} {summary}")


def days(start: datetime, end: datetime, step: timedelta = timedelta(days=1)) -> list[datetime]:
    out = []
    while start <= end:
        out.append(start)
        start += step
    return out


def not_found_page() -> str:
    """ice.gov's soft 404: the site shell answering 200 with a "Page Not Found" body."""
    start = FOIA_PAGE.index('<main class="main-content')
    end = FOIA_PAGE.index("</main>") + len("</main>")
    main = (
        '<main class="main-content usa-layout-docs usa-section " role="main"><h1>Page Not Found'
        "</h1><p>The requested page could not be found.</p></main>"
    )
    page = FOIA_PAGE[:start] + main + FOIA_PAGE[end:]
    return page.replace("<title>FOIA Library | ICE</title>", "<title>Page Not Found | ICE</title>")


def facilities_page(rows: int) -> str:
    """A statistics page whose data is a captioned table, one row per detention facility."""
    body = "".join(
        f"<tr><td>Facility {i:03d}</td><td>City {i}</td><td>TX</td><td>{i * 7 % 900}</td></tr>"
        for i in range(1, rows + 1)
    )
    main = (
        '<main class="main-content usa-layout-docs usa-section " role="main">'
        "<h1>Detention Facilities</h1><p>Average daily population by facility.</p>"
        '<table id="facilities"><caption>Detention facilities</caption><thead><tr><th>Name</th>'
        f"<th>City</th><th>State</th><th>ADP</th></tr></thead><tbody>{body}</tbody></table></main>"
    )
    start = FOIA_PAGE.index('<main class="main-content')
    end = FOIA_PAGE.index("</main>") + len("</main>")
    return FOIA_PAGE[:start] + main + FOIA_PAGE[end:]
