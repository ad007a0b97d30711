"""What one capture means next to the previous one: which publications are new, which came
back, moved, were superseded or rolled off, and which vanished for no visible reason.

Pure: pages, comparisons and facts in; ``Changes`` and info events out. Whether the page
itself is gone is ``verdict``'s call; whether a vanished item pages anyone is decided by
``conditions`` (is it still missing?) and ``alerts`` (for ``confirm`` checks?).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from watcher.compare import Comparison, Move, match_moves
from watcher.models import Event, Item, Page
from watcher.urls import file_name

# --- heuristics, each tied to a real page behaviour ---------------------------------------
# A title match between two files with different dates is a new edition (or, backwards, a
# reversion), never a move: the detention page's link text "FY2025 Detention Statistics"
# stays while the file behind it is replaced every two weeks. At a fiscal-year rollover the
# link text changes too, so files of one series are also matched by their names with the
# digits blanked (fy#_detentionstats#.xlsx); a name keeps this many letters or names no series.
SERIES_MIN_LETTERS = 6
_DIGITS = re.compile(r"\d+")
# Entries that fall off the end of a listing while as many new ones arrive at the top were
# pushed onto page 2 of a paginated Drupal view (the ICE FOIA Library), not taken down; see
# _rolled_off. Vanished entries newer than what stays never count as rolled off.
TITLES_LISTED = 10
# EOIR's volume pages put each decision in a table of its own; listing all 80 is noise.
TABLES_LISTED = 3


@dataclass
class Changes:
    """The comparison, with every vanished item given a reason and every new one a kind."""

    comparison: Comparison
    added: list[Item] = field(default_factory=list)  # new publications
    returned: list[Item] = field(default_factory=list)  # listed before, listed again
    reposted: list[tuple[str, Item]] = field(default_factory=list)  # (missing key, new item)
    moved: list[Move] = field(default_factory=list)
    superseded: list[tuple[Item, Item]] = field(default_factory=list)  # (old, newer release)
    reverted: list[tuple[Item, Item]] = field(default_factory=list)  # (withdrawn, older back)
    rolled: list[Item] = field(default_factory=list)  # pushed off a rolling listing
    removed: list[Item] = field(default_factory=list)  # gone for no visible reason

    def gone_reasons(self) -> dict[str, tuple[str, str | None]]:
        """key → (reason, moved_to) for every item that left the listing in this capture."""
        out: dict[str, tuple[str, str | None]] = {}
        for m in self.moved:
            out[m.old.key] = ("moved", m.new.key)
        for old, _ in self.superseded:
            out[old.key] = ("superseded", None)  # still a publication: only moves point on
        for item in self.rolled:
            out[item.key] = ("rolled", None)
        for item in self.removed:
            out[item.key] = ("removed", None)
        return out

    def carried(self) -> dict[str, str]:
        """new key → old key whose first-seen time it keeps (it is the same publication)."""
        out = {m.new.key: m.old.key for m in self.moved}
        out.update({new.key: old for old, new in self.reposted})
        return out

    @property
    def real_change(self) -> bool:
        """New publications, or text that changed for another reason than items coming and
        going (a move or a return rewrites link text without publishing anything)."""
        shuffled = self.moved or self.returned or self.reposted or self.removed or self.rolled
        return bool(self.added) or (self.comparison.text_changed and not shuffled)


def classify(
    comparison: Comparison,
    before: Page,
    after: Page,
    *,
    seen: set[str],
    missing: list[Item],
) -> Changes:
    """Give every vanished item a reason and every new item a kind.

    ``seen`` holds the keys of items listed at some earlier time (a key in it is a return,
    not a publication); ``missing`` the items that vanished earlier and are still missing
    (one found again at a new URL was reposted: ICE took its 2015 facility list down for over
    a year and reposted it elsewhere).
    """
    changes = Changes(comparison)
    came = list(comparison.added)
    gone = list(comparison.removed)
    for move in [*comparison.moved, *comparison.replaced]:
        old, new = move.old, move.new
        # The detention page's link text ("FY2025 Detention Statistics") stays while the file
        # behind it changes every two weeks: a title match between two files with different
        # dates is a new release (or, backwards, a reversion), never a move.
        if old.date and new.date and old.date != new.date:
            came.append(new)
            if new.date > old.date:
                changes.superseded.append((old, new))
            else:
                changes.reverted.append((old, new))
                gone.append(old)
        else:
            changes.moved.append(move)
    for old, new in _same_series(gone, comparison.added):
        if new.date and old.date and new.date > old.date:
            gone.remove(old)
            changes.superseded.append((old, new))
    fresh: list[Item] = []
    for item in came:
        (changes.returned if item.key in seen else fresh).append(item)
    for move in match_moves(missing, fresh):
        if move.old.date and move.new.date and move.old.date != move.new.date:
            continue
        changes.reposted.append((move.old.key, move.new))
    reposted = {new.key for _, new in changes.reposted}
    changes.added = [i for i in fresh if i.key not in reposted]
    if _rolled_off(gone, changes.added, before, after):
        changes.rolled = gone
    else:
        changes.removed = gone
    return changes


def series_stem(item: Item) -> str | None:
    """The file name with its digits blanked: ``fy#_detentionstats#.xlsx``. Names with too
    few letters left (EOIR's ``4070.pdf``, download paths) name no series."""
    name = file_name(item.url).lower()
    stem, dot, _ = name.rpartition(".")
    if not dot or sum(c.isalpha() for c in stem) < SERIES_MIN_LETTERS:
        return None
    return _DIGITS.sub("#", name)


def _same_series(gone: list[Item], came: list[Item]) -> list[tuple[Item, Item]]:
    """Pairs of a vanished and a new file of the same dated series, one of each per stem.

    At a fiscal-year rollover the link text changes with the file ("FY2026 Detention
    Statistics" becomes "FY2027 ..."), so no title matches; the file names still say it is
    the next release of the same spreadsheet.
    """
    index: dict[str, list[Item]] = {}
    for item in came:
        stem = series_stem(item)
        if stem and item.date:
            index.setdefault(stem, []).append(item)
    pairs = []
    for item in gone:
        stem = series_stem(item)
        olds = [g for g in gone if series_stem(g) == stem]
        if stem and item.date and len(index.get(stem, [])) == 1 and len(olds) == 1:
            pairs.append((item, index[stem][0]))
    return pairs


def _rolled_off(gone: list[Item], added: list[Item], before: Page, after: Page) -> bool:
    """True when ``gone`` items were pushed off the end of a listing by new ones.

    The ICE FOIA Library is a Drupal view paginated with ``?page=N``: each new posting pushes
    the oldest entry of page 1 onto page 2. That is not a disappearance. It looks like: the
    vanished items were the last (or first) entries, at least as many new ones came in at
    the other end, and none of the vanished is newer than what stays.
    """
    if not gone or len(added) < len(gone):
        return False
    old = [i.key for i in before.items]
    new = [i.key for i in after.items]
    gone_keys, added_keys = {i.key for i in gone}, {i.key for i in added}
    n, k = len(gone), len(added)
    tail = set(old[-n:]) == gone_keys and set(new[:k]) == added_keys
    head = set(old[:n]) == gone_keys and set(new[-k:]) == added_keys
    if not (tail or head):
        return False
    kept = [i.date for i in after.items if i.key not in added_keys and i.date]
    gone_dates = [i.date for i in gone if i.date]
    return not (kept and gone_dates and max(gone_dates) > min(kept))


# --- info events ---------------------------------------------------------------------------


def events_from_changes(changes: Changes, page_url: str) -> list[Event]:
    """``added`` for new publications, ``changed`` for everything else worth saying.
    Vanished items are not events here: they are conditions that ``alerts`` confirms."""
    c = changes.comparison
    events: list[Event] = []
    if changes.added:
        replaces = {new.key: old for old, new in changes.superseded}
        events.append(
            Event(
                kind="added",
                severity="info",
                subject="item",
                title=changes.added[0].title,
                url=changes.added[0].url,
                summary=count(len(changes.added), "new publication")
                + ": "
                + titles(changes.added)
                + _replaces(len(replaces)),
                data={
                    "items": [
                        {
                            **i.to_dict(),
                            **({"replaces": replaces[i.key].url} if i.key in replaces else {}),
                        }
                        for i in changes.added
                    ],
                    "counts": c.counts(),
                },
            )
        )
    parts = []
    restored = {b.key for _, b in changes.reverted}
    returned = [i for i in changes.returned if i.key not in restored]
    if returned:
        parts.append(
            count(len(returned), "earlier publication") + " listed again: " + titles(returned)
        )
    for withdrawn, back in changes.reverted:
        parts.append(f"reverted to an earlier file: {_name(back)} instead of {_name(withdrawn)}")
    if changes.moved:
        parts.append(count(len(changes.moved), "publication") + " moved to new URLs")
    if changes.reposted:
        parts.append(count(len(changes.reposted), "missing publication") + " reposted at a new URL")
    if changes.rolled:
        parts.append(
            count(len(changes.rolled), "older entry", "older entries") + " rolled off the listing"
        )
    if c.text_changed:
        parts.append(f"text +{c.lines_added} −{c.lines_removed} lines")
    for t in c.tables[:TABLES_LISTED]:
        before = f"{t.before.rows}×{t.before.columns}" if t.before else "none"
        after = f"{t.after.rows}×{t.after.columns}" if t.after else "none"
        parts.append(f"table '{t.name}' {before} → {after}")
    if len(c.tables) > TABLES_LISTED:
        parts.append(f"{len(c.tables) - TABLES_LISTED} more tables changed shape")
    if c.title_before != c.title_after:
        parts.append(f"title now '{c.title_after}'")
    if parts:
        summary = "; ".join(parts)
        events.append(
            Event(
                kind="changed",
                severity="info",
                subject="page",
                title=c.title_after,
                url=page_url,
                summary=summary[:1].upper() + summary[1:],
                data={
                    "counts": c.counts(),
                    "diff": c.diff,
                    "moved": [
                        {
                            "from": m.old.url,
                            "to": m.new.url,
                            "title": m.new.title,
                            "by": m.matched_by,
                        }
                        for m in changes.moved
                    ],
                    "returned": [i.to_dict() for i in changes.returned],
                    "reposted": [{"from": k, "to": i.url} for k, i in changes.reposted],
                    "reverted": [{"withdrawn": w.url, "back": b.url} for w, b in changes.reverted],
                    "rolled": [i.to_dict() for i in changes.rolled],
                },
            )
        )
    return events


def _replaces(n: int) -> str:
    if not n:
        return ""
    return " (replaces an earlier edition)" if n == 1 else f" ({n} replace earlier editions)"


def events_from_comparison(comparison: Comparison, page_url: str) -> list[Event]:
    """The events one comparison implies on its own, without the target's history.

    Checks use ``classify`` with history and let ``conditions`` judge vanished items; this
    is for callers that hold two pages and no store. Removed items come out as one
    (unconfirmed) ``disappeared`` event.
    """
    empty = Page(url=page_url, title="")
    changes = classify(comparison, empty, empty, seen=set(), missing=[])
    events = events_from_changes(changes, page_url)
    if changes.removed:
        gone = changes.removed
        events.append(
            Event(
                kind="disappeared",
                severity="alert",
                subject="item",
                title=gone[0].title,
                url=gone[0].url,
                summary=count(len(gone), "publication") + " no longer listed: " + titles(gone),
                data={"items": [i.to_dict() for i in gone], "counts": comparison.counts()},
            )
        )
    return events


def replaced_event(item_title: str, url: str, data: dict[str, Any]) -> Event:
    """A document replaced in place: the same URL now serves new content. It counts as a
    publication (ICE has replaced a detention-statistics file in place with newer data)."""
    return Event(
        kind="added",
        severity="info",
        subject="document",
        title=item_title,
        url=url,
        summary=f"{item_title} replaced in place (new content at the same URL)",
        data=data,
    )


def _name(item: Item) -> str:
    return item.url.rsplit("/", 1)[-1] or item.title


def count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def titles(items: list[Item] | list[dict[str, Any]]) -> str:
    names = [
        (i.title or i.url) if isinstance(i, Item) else str(i.get("title") or i.get("url"))
        for i in items
    ]
    shown = ", ".join(names[:TITLES_LISTED])
    more = len(names) - TITLES_LISTED
    return shown + (f" and {more} more" if more > 0 else "")
