"""Turns what one check saw into events. Pure: facts in, ``Event`` objects out.

These are observations. Whether an alert-severity observation pages anyone (confirmation,
de-duplication, muting) is decided later by ``alerts``.
"""

from __future__ import annotations

from typing import Any

from watcher.compare import Comparison
from watcher.errors import FetchError
from watcher.models import Event, Item

# 404 and 410 say the page is gone. Anything else that fails (5xx, a firewall's 403,
# a timeout) says only that we could not read it: ICE and DOJ sit behind Akamai, which
# answers 403 "Access Denied" to perfectly alive pages.
GONE_STATUSES = (404, 410)
_STATUS_WORDS = {404: "Not Found", 410: "Gone"}
TITLES_LISTED = 10
# EOIR's volume pages put each decision in a table of its own; listing all 80 is noise.
TABLES_LISTED = 3


def events_from_comparison(comparison: Comparison, page_url: str) -> list[Event]:
    events: list[Event] = []
    new = comparison.added + [m.new for m in comparison.replaced]
    if new:
        summary = _count(len(new), "new publication") + ": " + _titles(new)
        if comparison.replaced:
            n = len(comparison.replaced)
            summary += (
                " (replaces an earlier edition)" if n == 1 else f" ({n} replace earlier editions)"
            )
        events.append(
            Event(
                kind="added",
                severity="info",
                subject="item",
                title=new[0].title,
                url=new[0].url,
                summary=summary,
                data={
                    "items": [_item(i) for i in new],
                    "replaced": [
                        {"old": m.old.to_dict(), "new": m.new.to_dict()}
                        for m in comparison.replaced
                    ],
                    "counts": comparison.counts(),
                },
            )
        )
    if comparison.removed:
        events.append(
            Event(
                kind="disappeared",
                severity="alert",
                subject="item",
                title=comparison.removed[0].title,
                url=comparison.removed[0].url,
                summary=_count(len(comparison.removed), "publication")
                + " no longer listed: "
                + _titles(comparison.removed),
                data={
                    "items": [_item(i) for i in comparison.removed],
                    "counts": comparison.counts(),
                },
            )
        )
    other = comparison.text_changed or comparison.tables or comparison.moved
    if other or comparison.title_before != comparison.title_after:
        parts = []
        if comparison.text_changed:
            parts.append(f"text +{comparison.lines_added} −{comparison.lines_removed} lines")
        if comparison.moved:
            parts.append(_count(len(comparison.moved), "publication") + " moved to new URLs")
        for t in comparison.tables[:TABLES_LISTED]:
            before = f"{t.before.rows}×{t.before.columns}" if t.before else "none"
            after = f"{t.after.rows}×{t.after.columns}" if t.after else "none"
            parts.append(f"table '{t.name}' {before} → {after}")
        if len(comparison.tables) > TABLES_LISTED:
            parts.append(f"{len(comparison.tables) - TABLES_LISTED} more tables changed shape")
        if comparison.title_before != comparison.title_after:
            parts.append(f"title now '{comparison.title_after}'")
        events.append(
            Event(
                kind="changed",
                severity="info",
                subject="page",
                title=comparison.title_after,
                url=page_url,
                summary=_sentence("; ".join(parts)),
                data={
                    "counts": comparison.counts(),
                    "diff": comparison.diff,
                    "moved": [
                        {
                            "from": m.old.url,
                            "to": m.new.url,
                            "title": m.new.title,
                            "by": m.matched_by,
                        }
                        for m in comparison.moved
                    ],
                },
            )
        )
    return events


def events_from_failure(error: FetchError, page_url: str, title: str) -> list[Event]:
    if error.kind == "http" and error.status in GONE_STATUSES:
        return [
            Event(
                kind="disappeared",
                severity="alert",
                subject="page",
                title=title,
                url=page_url,
                summary=f"The page answers {error.status} ({_STATUS_WORDS[error.status]})",
                data={"status": error.status, "redirects": error.redirects},
            )
        ]
    return [
        Event(
            kind="error",
            severity="alert",
            subject="page",
            title=title,
            url=page_url,
            summary=f"Could not read the page: {error}",
            data={"class": error.kind, "status": error.status},
        )
    ]


def _item(item: Item) -> dict[str, Any]:
    return item.to_dict()


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _titles(items: list[Item]) -> str:
    shown = ", ".join(i.title or i.url for i in items[:TITLES_LISTED])
    more = len(items) - TITLES_LISTED
    return shown + (f" and {more} more" if more > 0 else "")
