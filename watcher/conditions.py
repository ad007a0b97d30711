"""Which alert conditions hold now, for one target, after one check.

Conditions are judged on the current state plus stored history, never on the last diff
alone: three removed items are still missing on the check that confirms them, even though
that check's capture is identical to the one before. The result is an ``Assessment`` that
``alerts.apply`` turns into alert rows.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from watcher import cadence
from watcher.alerts import Assessment, Key, Observation
from watcher.config import Config, Target
from watcher.detect import count, titles
from watcher.models import Item, Page
from watcher.units import Threshold
from watcher.verdict import Verdict

# --- heuristics, each tied to a real page behaviour ---------------------------------------
# Outcomes of a check that read the page itself (a soft 404 is "missing", not readable).
READABLE = ("first", "new", "unchanged", "not_modified")
# Tables without a caption or id are named by position ("table 2"); when one vanishes the
# others are renamed, so only named tables can be missed outright.
_POSITIONAL = re.compile(r"^table \d+$")
# Tables shorter than this are layout, not data: EOIR's volume pages put each decision in a
# one- or two-row table of its own, and a row moving between them is not a shrink.
TABLE_MIN_ROWS = 5

STOPPED: Key = ("stopped", "page")
PAGE_GONE: Key = ("disappeared", "page")
ERROR: Key = ("error", "page")
ITEMS_GONE: Key = ("disappeared", "item")
SHRANK: Key = ("shrank", "page")
DOC_GONE: Key = ("disappeared", "document")
DOC_SHRANK: Key = ("shrank", "document")
ALL_KEYS = (STOPPED, PAGE_GONE, ERROR, ITEMS_GONE, SHRANK, DOC_GONE, DOC_SHRANK)

RECOVERY = {
    PAGE_GONE: "The page is back",
    ERROR: "The page can be read again",
    ITEMS_GONE: "The missing publications are listed again",
    SHRANK: "The page is back to its earlier size",
    DOC_GONE: "The missing documents answer again",
    DOC_SHRANK: "The documents are back to their earlier size",
}


# --- shrink baselines ----------------------------------------------------------------------


@dataclass(frozen=True)
class Facet:
    """One measure that dropped past its threshold since the last confirmed state."""

    name: str  # "items", "text", "table:<name>:rows", "table:<name>:columns"
    before: float
    after: float
    threshold: Threshold

    @property
    def label(self) -> str:
        """What the measure is, for "counts before → after" in messages."""
        if self.name.startswith("table:"):
            _, table, what = self.name.split(":", 2)
            return f"{table} {what}"
        return {"text": "text characters", "size": "bytes"}.get(self.name, self.name)

    def describe(self) -> str:
        """``Table 'Detention facilities' lost 29 of 201 rows (14%)``."""
        share = (self.before - self.after) / self.before * 100 if self.before else 100.0
        lost = f"{self.before - self.after:,.0f} of {self.before:,.0f}"
        if self.name.startswith("table:"):
            _, table, what = self.name.split(":", 2)
            if self.after == 0 and what == "rows":
                return f"Table '{table}' is gone ({self.before:,.0f} rows)"
            return f"Table '{table}' lost {lost} {what} ({share:.0f}%)"
        if self.name == "items":
            return f"Lost {lost} items ({share:.0f}%)"
        what = {"text": "The main text", "size": "The file"}.get(self.name, self.name)
        unit = {"text": "characters", "size": "bytes"}.get(self.name, "")
        return f"{what} lost {share:.0f}% ({self.before:,.0f} → {self.after:,.0f} {unit})"


def metrics_of(page: Page, size: int | None = None) -> dict[str, float]:
    """The measures a shrink is judged on. A target that is itself a document (a PDF, a
    spreadsheet) is measured by its size in bytes."""
    if page.is_document:
        return {"size": size} if size is not None else {}
    out: dict[str, float] = {"items": len({i.key for i in page.items}), "text": page.text_size}
    for t in page.tables:
        out[f"table:{t.name}:rows"] = t.rows
        out[f"table:{t.name}:columns"] = t.columns
    return out


def _threshold(name: str, target: Target) -> Threshold:
    if name == "items":
        return target.shrink.items
    if name == "text":
        return target.shrink.text
    if name == "size":
        return target.shrink.size
    return target.shrink.rows  # table rows and columns


def step(
    base: float | None, recent: list[float], value: float, threshold: Threshold, confirm: int
) -> tuple[float, list[float], bool]:
    """One measure, one check: (new baseline, recent values, shrunk?).

    A level is confirmed once it has held for ``confirm`` checks in a row (the lowest of
    them counts), so one capture of a half-built listing never becomes the yardstick. While
    a measure is shrunk its baseline stays put: the alert holds until the page recovers.
    """
    if base is None:
        # The first capture is the yardstick until a level holds for `confirm` checks; its
        # run is full already, so an unchanged page rewrites no state.
        return value, [value] * confirm, False
    if threshold.exceeded(base, value):
        return base, [], True
    run = [*recent, value][-confirm:]
    return (min(run) if len(run) >= confirm else base), run, False


def update_baselines(
    state: dict[str, Any], metrics: dict[str, float], target: Target, confirm: int
) -> list[Facet]:
    """Compare ``metrics`` with the last confirmed state (kept in ``state``) and move that
    state forward. Returns the measures that dropped past their thresholds."""
    baseline: dict[str, float] = state.setdefault("baseline", {})
    recent: dict[str, list[float]] = state.setdefault("recent", {})
    state["metrics"] = metrics
    facets = []
    for name, value in metrics.items():
        threshold = _threshold(name, target)
        before = baseline.get(name)
        baseline[name], recent[name], shrunk = step(
            before, recent.get(name, []), value, threshold, confirm
        )
        if shrunk and before is not None and not _small_table(name, baseline):
            facets.append(Facet(name, before, value, threshold))
    for name in [n for n in baseline if n not in metrics]:
        table = name.split(":")[1] if name.startswith("table:") else ""
        if (
            name.endswith(":rows")
            and table
            and not _POSITIONAL.match(table)
            and not _small_table(name, baseline)
        ):
            facets.append(Facet(name, baseline[name], 0, target.shrink.rows))
        else:
            baseline.pop(name, None)
            recent.pop(name, None)
    return facets


def _small_table(name: str, baseline: dict[str, float]) -> bool:
    if not name.startswith("table:"):
        return False
    rows = baseline.get(name.rsplit(":", 1)[0] + ":rows", 0)
    return rows < TABLE_MIN_ROWS


# --- conditions ----------------------------------------------------------------------------


def listed_counts(
    db: sqlite3.Connection, target_id: str, missing: list[dict[str, Any]]
) -> list[int] | None:
    """Items listed just before the first removal, and now: the "25 → 22" of a message.

    Needed even when the drop is under the shrink threshold (3 of 25 FOIA entries), since
    the disappearance alert is the one that reports it.
    """
    if not missing:
        return None
    first_gone = min(m["gone_since"] for m in missing)
    now, older = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(first_seen < ?), 0) FROM items"
        " WHERE target_id=? AND gone_since IS NULL",
        (first_gone, target_id),
    ).fetchone()
    return [int(older) + len(missing), int(now)]


def missing_items(db: sqlite3.Connection, target_id: str, confirm: int) -> list[dict[str, Any]]:
    """Items removed from the listing (not moved, superseded or rolled off) and still missing,
    oldest first, each with when it was last seen and whether its absence is confirmed."""
    rows = db.execute(
        "SELECT key, title, url, type, date, last_seen, gone_since FROM items"
        " WHERE target_id=? AND gone_since IS NOT NULL AND gone_reason='removed'"
        " ORDER BY gone_since, key",
        (target_id,),
    ).fetchall()
    checks: dict[str, int] = {}
    out = []
    for r in rows:
        since = r["gone_since"]
        if since not in checks:
            checks[since] = db.execute(
                "SELECT COUNT(*) FROM checks WHERE target_id=? AND checked_at>=? AND outcome IN"
                f" ({','.join('?' * len(READABLE))})",
                (target_id, since, *READABLE),
            ).fetchone()[0]
        out.append(
            {
                "key": r["key"],
                "title": r["title"],
                "url": r["url"],
                "type": r["type"],
                "date": r["date"],
                "last_seen": r["last_seen"],
                "gone_since": since,
                "confirmed": checks[since] >= confirm,
            }
        )
    return out


def as_items(rows: list[dict[str, Any]]) -> list[Item]:
    return [
        Item.from_dict({k: r.get(k) for k in ("key", "title", "url", "type", "date")}) for r in rows
    ]


def items_gone(missing: list[dict[str, Any]], counts: list[int] | None) -> Observation | None:
    if not missing:
        return None
    summary = count(len(missing), "publication") + " no longer listed: " + titles(missing)
    return Observation(
        kind="disappeared",
        subject="item",
        title=str(missing[0]["title"] or missing[0]["url"]),
        url=str(missing[0]["url"]),
        summary=summary,
        counts={"items": counts} if counts else {},
        items=missing,
    )


def page_gone(target: Target, verdict: Verdict) -> Observation:
    return Observation(
        "disappeared",
        "page",
        target.label,
        target.url,
        verdict.summary,
        data=dict(verdict.data, reason=verdict.reason),
    )


_ERROR_WORDS = {
    "blocked": "Blocked by a firewall",
    "timeout": "Timing out",
    "connect": "Connection failing",
    "tls": "TLS handshake failing",
    "too_large": "Too large to read",
    "dns": "Host name not resolving",
    "http": "HTTP error",
    "missing": "Not the page",
}


def error(db: sqlite3.Connection, target: Target, verdict: Verdict, now: datetime) -> Observation:
    """The page could not be read: which class of failure, for how long."""
    rows = db.execute(
        "SELECT checked_at, outcome, error_kind, http_status FROM checks WHERE target_id=?"
        " ORDER BY id DESC LIMIT 500",
        (target.id,),
    ).fetchall()
    run = 0
    since = now
    for r in rows:
        if r["outcome"] != "error":
            break
        run += 1
        since = datetime.fromisoformat(r["checked_at"])
    words = _ERROR_WORDS.get(verdict.reason, "Unreadable")
    if verdict.reason == "http" and verdict.data.get("status"):
        words = f"Answering HTTP {verdict.data['status']}"
    stamp = since.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if run > 1:
        lasted = _lasted(now - since)
        what = f"{words} for {run} checks since {stamp}" + (f" ({lasted})" if lasted else "")
    else:
        what = f"{words} since {stamp}"
    # A fetch error reads "blocked: Akamai ..."; keep what follows the class.
    detail = verdict.summary
    if verdict.reason in _ERROR_WORDS and verdict.reason != "missing":
        detail = detail.split(": ", 1)[-1]
    return Observation(
        kind="error",
        subject="page",
        title=target.label,
        url=target.url,
        summary=f"{what}: {detail}",
        data=dict(verdict.data, checks=run, since=since.isoformat()),
    )


def _lasted(d: Any) -> str:
    hours = int(d.total_seconds() // 3600)
    if hours >= 48:
        return f"{hours // 24} days"
    if hours >= 1:
        return f"{hours} hour" + ("" if hours == 1 else "s")
    return ""


def shrank(facets: list[Facet], target: Target) -> Observation | None:
    if not facets:
        return None
    return Observation(
        kind="shrank",
        subject="page",
        title=target.label,
        url=target.url,
        summary="; ".join(f.describe() for f in facets),
        data={
            "facets": [
                {
                    "name": f.name,
                    "before": f.before,
                    "after": f.after,
                    "threshold": str(f.threshold),
                }
                for f in facets
            ]
        },
        counts={f.label: [int(f.before), int(f.after)] for f in facets},
    )


def assess(
    db: sqlite3.Connection,
    config: Config,
    target: Target,
    *,
    now: datetime,
    verdict: Verdict | None,
    facets: list[Facet] | None,
    documents: list[Observation] | None,
    due: cadence.DueInfo | None,
) -> Assessment:
    """Every condition for ``target`` after this check.

    ``verdict`` is set when the page could not be read (``gone`` or an error); then only the
    page-level conditions can be judged and everything else is left as it was. ``facets``
    are the shrunk measures (None when the page was not read); ``documents`` the document
    conditions (None when documents were not checked this time); ``due`` the target's due
    date as of now (``cadence.due``), which decides ``stopped``.
    """
    confirm = config.confirm_of(target)
    out = Assessment(recovery=dict(RECOVERY))
    page_keys = {PAGE_GONE, ERROR}
    if verdict is not None:
        out.unknown = set(ALL_KEYS) - page_keys
        if verdict.gone:
            out.add(page_gone(target, verdict))
            out.silent.add(ERROR)  # a page that now answers 404 has not "recovered"
        else:
            out.add(error(db, target, verdict, now))
            out.unknown.add(PAGE_GONE)  # while unreadable, we cannot tell if it is back
        return out
    out.add(cadence.stopped(due, target))
    out.recovery[STOPPED] = cadence.recovery(due, ZoneInfo(config.settings.timezone))
    missing = missing_items(db, target.id, confirm)
    items_facet = next((f for f in facets or [] if f.name == "items"), None)
    counts = (
        [int(items_facet.before), int(items_facet.after)]
        if items_facet
        else listed_counts(db, target.id, missing)
    )
    gone = items_gone(missing, counts)
    out.add(gone)
    if facets is None:
        out.unknown.add(SHRANK)
    else:
        # One removal, one message: the disappearance lists the items and the counts, so
        # the item count does not raise a second, `shrank`, alert for the same drop.
        shown = [f for f in facets if not (gone and f.name == "items")]
        out.add(shrank(shown, target))
    if documents is None:
        out.unknown |= {DOC_GONE, DOC_SHRANK}
    else:
        for obs in documents:
            out.add(obs)
    return out
