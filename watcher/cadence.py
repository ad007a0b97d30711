"""When a recurring publication is due, and whether it is overdue: the ``stopped`` rule.

A target with ``expect: {every, grace}`` is overdue once its newest publication is older than
``every + grace``; with ``expect: auto`` the cadence is learned from the target's own history.
"Newest" comes from the publication history (every item ever listed, and every document
replaced in place), not only from what the page lists right now: a page that flips back to an
older file for one check must not make the series look stopped, then fine, then stopped again.

An item's publication date is the date it carries (``<time>``, text or file name), but never
later than the day we first saw it. Everything here is pure over the store: ``now`` is passed in.
"""

from __future__ import annotations

import itertools
import sqlite3
import statistics
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from watcher.alerts import Observation
from watcher.config import Config, Target
from watcher.models import iso
from watcher.store import Store
from watcher.urls import file_name

# --- heuristics, each tied to a real page behaviour ---------------------------------------
# expect: auto needs this many gaps between publications before it judges anything: ICE's
# weekly Declined Detainer report ran for three issues and was suspended, and two gaps say
# nothing about a cadence.
AUTO_MIN_GAPS = 3
# Gaps are learned from releases we saw appear, starting from the newest publication of our
# first capture. The first capture's own list is not a cadence: the detention-statistics
# page lists the current file plus one year-end file per earlier year, a year apart each,
# while the series itself comes out every two weeks.
# Only the most recent gaps count, so a series that changes its rhythm is relearned.
AUTO_RECENT_GAPS = 12
# A learned cadence is never shorter than a day (two files posted the same day are one issue).
AUTO_FLOOR = timedelta(days=1)
# Overdue after twice the typical gap: ICE detention statistics appear about every 14 days
# (the median), so a release 16 days after the last is normal and 28 days is a stall.
AUTO_MULTIPLIER = 2
# A file first seen after our first capture whose date is more than the overdue threshold
# older than the day we saw it is trusting a typo: FY23_detentionStats01192022.xlsx was
# posted in 2023 with 2022 in its name. Such a file is dated the day we first saw it, so a
# wrong year can make a target look neither stale nor fresh.

# How many of the newest publications a `stopped` alert lists, so a reader sees the rhythm.
LATEST_SHOWN = 3

Mode = str  # "items" (dated publications) or "content" (last real content change)


@dataclass(frozen=True)
class Publication:
    key: str
    title: str
    url: str
    date: date  # the effective publication date
    seen: datetime  # when we first saw this publication (or saw it replaced)
    how: str  # "listed", "replaced" or "content"
    note: str = ""
    type: str = ""

    @property
    def name(self) -> str:
        """Spreadsheets are best named by their file (the name carries the release date);
        listing entries by their title."""
        if self.how == "content":
            return self.title
        name = file_name(self.url)
        if self.type != "html" and "." in name:
            return name
        return self.title or name or self.url


@dataclass(frozen=True)
class _History:
    """The rows a due date is computed from, read once per check."""

    items: list[tuple[str, str, str, str, str, str]]  # key, title, url, type, date, first_seen
    changes: list[datetime]  # captures with a real content change
    replaced: list[tuple[str, str, str, str]]  # key, title, url, at
    first: datetime  # the first capture that was the page


@dataclass(frozen=True)
class DueInfo:
    """When the target's next publication is due. ``due_at`` is None while learning."""

    newest_title: str | None
    newest_url: str | None
    newest_date: date | None
    first_seen: datetime | None
    every: timedelta | None
    grace: timedelta
    due_at: datetime | None
    learned: bool
    note: str
    overdue: bool = False
    mode: Mode = "items"
    gaps: int = 0
    latest: tuple[Publication, ...] = ()  # the newest few publications, newest first
    previous_date: date | None = None  # the publication date before the newest one

    def to_dict(self) -> dict[str, Any]:
        return {
            "newest": {
                "title": self.newest_title,
                "url": self.newest_url,
                "date": self.newest_date.isoformat() if self.newest_date else None,
                "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            },
            "every": _span(self.every) if self.every else None,
            "grace": _span(self.grace),
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "learned": self.learned,
            "overdue": self.overdue,
            "note": self.note,
        }


def due_info(store: Store, config: Config, target: Target, now: datetime) -> DueInfo | None:
    """When ``target`` is next due, for ``watcher status`` and the digest; None without
    ``expect``."""
    return due(store.db, config, target, now)


def due(db: sqlite3.Connection, config: Config, target: Target, now: datetime) -> DueInfo | None:
    """When ``target`` is next due, and whether it is overdue at ``now``."""
    expect = target.expect
    if expect is None:
        return None
    tz = ZoneInfo(config.settings.timezone)
    history = _read(db, target.id)
    if history is None:
        return DueInfo(
            None, None, None, None, expect.every, expect.grace, None, False, "not checked yet"
        )
    if not expect.auto:
        assert expect.every is not None
        pubs, mode = publications(history, tz, distrust=expect.every + expect.grace)
        return _due(pubs, mode, expect.every, expect.grace, tz, now, learned=False, gaps=0)
    pubs, mode = publications(history, tz, distrust=None)
    typical, gaps = learn(pubs, history.first)
    if typical is not None:
        pubs, mode = publications(history, tz, distrust=typical * AUTO_MULTIPLIER)
        typical, gaps = learn(pubs, history.first)
    if typical is None:
        newest = max(pubs, key=_order) if pubs else None
        note = f"learning cadence: {min(gaps, AUTO_MIN_GAPS - 1)} of {AUTO_MIN_GAPS} gaps seen"
        return DueInfo(
            newest.name if newest else None,
            newest.url if newest else None,
            newest.date if newest else None,
            newest.seen if newest else None,
            None,
            timedelta(0),
            None,
            False,
            note,
            mode=mode,
            gaps=gaps,
            latest=_latest(pubs),
        )
    grace = typical * (AUTO_MULTIPLIER - 1)
    return _due(pubs, mode, typical, grace, tz, now, learned=True, gaps=gaps)


def learn(pubs: list[Publication], first_capture: datetime) -> tuple[timedelta | None, int]:
    """The typical gap between releases we saw appear (median of the recent ones), and how
    many gaps that history holds. None until ``AUTO_MIN_GAPS`` gaps have been seen."""
    before = [p for p in pubs if p.seen <= first_capture]
    observed = [p for p in pubs if p.seen > first_capture]
    anchor = [max(before, key=_order)] if before else []
    dates = sorted({p.date for p in anchor + observed})
    gaps = [(b - a).days for a, b in itertools.pairwise(dates)]
    if len(gaps) < AUTO_MIN_GAPS:
        return None, len(gaps)
    median = statistics.median(gaps[-AUTO_RECENT_GAPS:])
    return max(AUTO_FLOOR, timedelta(days=median)), len(gaps)


def stopped(info: DueInfo | None, target: Target) -> Observation | None:
    """The ``stopped`` condition, if ``info`` says the target is overdue."""
    if info is None or not info.overdue:
        return None
    return Observation(
        kind="stopped",
        subject="page",
        title=info.newest_title or target.label,
        url=target.url,
        summary=info.note,
        data={"due": info.to_dict()},
        items=[
            {"title": p.name, "url": p.url, "date": p.date.isoformat(), "first_seen": iso(p.seen)}
            for p in info.latest
            if p.url
        ],
    )


def recovery(info: DueInfo | None, tz: ZoneInfo) -> str:
    """What a resolved ``stopped`` alert says: the issue that ended the wait, and the wait."""
    if info is None or info.newest_date is None:
        return "The publication is no longer overdue"
    seen = info.first_seen.astimezone(tz).date().isoformat() if info.first_seen else "?"
    what = "Content changed" if info.mode == "content" else f"New issue: {info.newest_title}"
    if info.latest and info.latest[0].how == "replaced":
        what = f"Replaced in place: {info.newest_title}"
    text = f"{what} (dated {info.newest_date.isoformat()}, first seen {seen})"
    if info.previous_date is not None:
        gap = (info.newest_date - info.previous_date).days
        text += f", {_days(gap)} after the previous one"
    return text


def _read(db: sqlite3.Connection, target_id: str) -> _History | None:
    first = db.execute(
        "SELECT MIN(taken_at) FROM snapshots WHERE target_id=? AND verdict IS NULL", (target_id,)
    ).fetchone()[0]
    if not first:
        return None
    items = db.execute(
        "SELECT key, title, url, type, date, first_seen FROM items"
        " WHERE target_id=? AND moved_to IS NULL AND date IS NOT NULL",
        (target_id,),
    ).fetchall()
    changes = db.execute(
        "SELECT taken_at FROM snapshots WHERE target_id=? AND real_change=1", (target_id,)
    ).fetchall()
    replaced = db.execute(
        "SELECT key, title, url, at FROM replacements WHERE target_id=?", (target_id,)
    ).fetchall()
    return _History(
        [tuple(r) for r in items],
        [_utc(r[0]) for r in changes],
        [tuple(r) for r in replaced],
        _utc(first),
    )


def publications(
    history: _History, tz: ZoneInfo, *, distrust: timedelta | None
) -> tuple[list[Publication], Mode]:
    """Every publication of the target, with its effective date.

    Dated items count; undated ones only when no item has a date, in which case the last
    real content change stands in (EOIR's decision tables carry no dates). A document
    replaced in place is a new publication on the day it was seen replaced. Items that moved
    to a new URL are counted once, under their new URL, which keeps their first-seen time.
    """
    pubs: list[Publication] = []
    days: dict[str, date] = {}  # first-seen timestamps repeat: a listing's first capture
    for key, title, url, kind, written_text, first_seen in history.items:
        seen = _utc(first_seen)
        seen_day = days.get(first_seen) or days.setdefault(first_seen, seen.astimezone(tz).date())
        written = date.fromisoformat(written_text)
        eff, note = min(written, seen_day), ""
        if distrust is not None and seen > history.first and seen_day - written > distrust:
            eff, note = seen_day, f"date {written.isoformat()} in its name ignored"
        pubs.append(Publication(key, title, url, eff, seen, "listed", note, kind))
    mode: Mode = "items"
    if not pubs:
        mode = "content"
        for at in history.changes or [history.first]:  # no change since we started watching
            pubs.append(
                Publication("", "content change", "", at.astimezone(tz).date(), at, "content")
            )
    for key, title, url, at_text in history.replaced:
        at = _utc(at_text)
        pubs.append(
            Publication(
                key, title, url, at.astimezone(tz).date(), at, "replaced", "replaced in place"
            )
        )
    return pubs, mode


def _due(
    pubs: list[Publication],
    mode: Mode,
    every: timedelta,
    grace: timedelta,
    tz: ZoneInfo,
    now: datetime,
    *,
    learned: bool,
    gaps: int,
) -> DueInfo:
    newest = max(pubs, key=_order)
    due_at = datetime.combine(newest.date, time(0), tzinfo=tz) + every + grace
    overdue = now > due_at
    days = (now.astimezone(tz).date() - newest.date).days
    if learned:
        expected = f"usually every {_span(every)}, learned from {gaps} gaps"
    else:
        expected = f"expected every {_span(every)}" + (f" + {_span(grace)}" if grace else "")
    if mode == "content":
        what = f"No content change for {_days(days)} ({expected})"
        where = f"last change seen {newest.seen.astimezone(tz).date().isoformat()}"
    else:
        what = f"No new issue for {_days(days)} ({expected})"
        where = f"newest: {newest.name}, first seen {newest.seen.astimezone(tz).date().isoformat()}"
        if newest.note:
            where += f" ({newest.note})"
    note = f"{what}; {where}" if overdue else f"due by {due_at.date().isoformat()}; {where}"
    earlier = [p.date for p in pubs if p.date < newest.date]
    return DueInfo(
        newest.name if mode == "items" or newest.how == "replaced" else None,
        newest.url or None,
        newest.date,
        newest.seen,
        every,
        grace,
        due_at,
        learned,
        note,
        overdue=overdue,
        mode=mode,
        gaps=gaps,
        latest=_latest(pubs),
        previous_date=max(earlier) if earlier else None,
    )


def _latest(pubs: list[Publication]) -> tuple[Publication, ...]:
    return tuple(sorted(pubs, key=_order, reverse=True)[:LATEST_SHOWN])


def _order(p: Publication) -> tuple[date, datetime]:
    return (p.date, p.seen)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _days(n: int) -> str:
    return f"{n} day" + ("" if n == 1 else "s")


def _span(d: timedelta) -> str:
    """``14d``, ``14.5d``, ``36h``: the units targets.yaml is written in."""
    seconds = int(d.total_seconds())
    if seconds >= 86400 and (seconds % 86400 == 0 or seconds % 3600 != 0 or seconds > 7 * 86400):
        return f"{seconds / 86400:.1f}".removesuffix(".0") + "d"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
