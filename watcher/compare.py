"""What changed between two captures of one page. Pure: two ``Page`` objects in, facts out.

The comparison never decides whether a change deserves an alert (that is ``detect``); it only
says what was added, removed, moved and rewritten, so that the decision can be explained.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from watcher.models import Item, Page, TableShape
from watcher.urls import file_name

# EOIR volume-28 rows read "…, 28 I&N Dec. 100 (BIA 2020) ID 3985 (PDF)"; the ID survives
# the site's two URL schemes, so it identifies a decision across moves.
_ID_IN_TITLE = re.compile(r"\bID\s*#?\s*(\d{3,7})\b", re.IGNORECASE)
# Link decorations that change with a redesign without changing the document.
_TITLE_NOISE = re.compile(
    r"\((?:pdf|xlsx?|csv|zip|docx?)(?:[,;]?\s*[\d.,]+\s*[kmg]?b)?\)|\[[^\]]*\]|\s+", re.IGNORECASE
)
# File names too generic to identify a document: EOIR's "/media/1234567/dl", "download".
_GENERIC_NAMES = {"dl", "download", "file", "view", "index.html", "index.htm", "index", ""}
DIFF_LINES_KEPT = 200


@dataclass(frozen=True)
class Move:
    old: Item
    new: Item
    matched_by: str  # "id", "title" or "filename"


@dataclass(frozen=True)
class TableChange:
    name: str
    before: TableShape | None
    after: TableShape | None


@dataclass
class Comparison:
    added: list[Item] = field(default_factory=list)
    removed: list[Item] = field(default_factory=list)
    moved: list[Move] = field(default_factory=list)
    # A new edition in place of an old one: same title, a different date. ICE replaces
    # FY26_detentionStats09172026.xlsx with FY26_detentionStats10022026.xlsx under the same
    # link text; that is a new publication, and the old file going is not a removal.
    replaced: list[Move] = field(default_factory=list)
    lines_added: int = 0
    lines_removed: int = 0
    diff: list[str] = field(default_factory=list)  # unified diff lines, capped
    items_before: int = 0
    items_after: int = 0
    text_before: int = 0  # characters of main text
    text_after: int = 0
    tables: list[TableChange] = field(default_factory=list)
    title_before: str = ""
    title_after: str = ""

    @property
    def text_changed(self) -> bool:
        return bool(self.lines_added or self.lines_removed)

    @property
    def any_change(self) -> bool:
        return bool(
            self.added
            or self.removed
            or self.moved
            or self.replaced
            or self.text_changed
            or self.tables
            or self.title_before != self.title_after
        )

    def counts(self) -> dict[str, Any]:
        return {
            "items": [self.items_before, self.items_after],
            "text": [self.text_before, self.text_after],
            "lines": {"added": self.lines_added, "removed": self.lines_removed},
        }


def compare(before: Page, after: Page) -> Comparison:
    old = {i.key: i for i in before.items}
    new = {i.key: i for i in after.items}
    gone = [i for k, i in old.items() if k not in new]
    came = [i for k, i in new.items() if k not in old]
    pairs = match_moves(gone, came)
    moved_old = {m.old.key for m in pairs}
    moved_new = {m.new.key for m in pairs}
    added_lines, removed_lines, diff = diff_lines(before.lines, after.lines)
    return Comparison(
        added=[i for i in came if i.key not in moved_new],
        removed=[i for i in gone if i.key not in moved_old],
        moved=[m for m in pairs if not is_new_edition(m)],
        replaced=[m for m in pairs if is_new_edition(m)],
        lines_added=added_lines,
        lines_removed=removed_lines,
        diff=diff,
        items_before=len(old),
        items_after=len(new),
        text_before=before.text_size,
        text_after=after.text_size,
        tables=compare_tables(before.tables, after.tables),
        title_before=before.title,
        title_after=after.title,
    )


def signatures(item: Item) -> list[tuple[str, str]]:
    """Ways to recognise the same document at another URL, strongest first."""
    sigs = []
    m = _ID_IN_TITLE.search(item.title)
    if m:
        sigs.append(("id", m.group(1)))
    title = _TITLE_NOISE.sub(" ", item.title).strip().lower()
    if len(title) >= 8:
        sigs.append(("title", title))
    name = file_name(item.url).lower()
    if name not in _GENERIC_NAMES and not name.isdigit() and len(name) >= 5:
        sigs.append(("filename", name))
    return sigs


def match_moves(gone: list[Item], came: list[Item]) -> list[Move]:
    """Pair removed and added items that are the same document. Linear in the item count.

    A signature shared by several new items is ambiguous and not used: two reports both
    titled "Annual Report" are not evidence that one moved.
    """
    index: dict[tuple[str, str], list[Item]] = {}
    for item in came:
        for sig in signatures(item):
            index.setdefault(sig, []).append(item)
    taken: set[str] = set()
    moves = []
    for item in gone:
        for sig in signatures(item):
            candidates = [c for c in index.get(sig, []) if c.key not in taken]
            if len(index.get(sig, [])) == 1 and candidates:
                taken.add(candidates[0].key)
                moves.append(Move(item, candidates[0], sig[0]))
                break
    return moves


def is_new_edition(move: Move) -> bool:
    """Both sides are dated and the dates differ: a new issue of a series, not the same file."""
    old, new = move.old.date, move.new.date
    return old is not None and new is not None and old != new


def diff_lines(before: list[str], after: list[str]) -> tuple[int, int, list[str]]:
    """Count added and removed lines, and keep a capped unified diff for evidence.

    The common head and tail are cut before difflib sees the lines, so a 20,000-line listing
    with one new row costs a comparison of a few lines rather than a quadratic match.
    """
    if before == after:
        return 0, 0, []
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    end = 0
    while (
        end < min(len(before), len(after)) - start
        and before[len(before) - 1 - end] == after[len(after) - 1 - end]
    ):
        end += 1
    old_mid = before[start : len(before) - end]
    new_mid = after[start : len(after) - end]
    added = removed = 0
    kept: list[str] = []
    matcher = difflib.SequenceMatcher(None, old_mid, new_mid, autojunk=True)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        removed += i2 - i1
        added += j2 - j1
        for line in old_mid[i1:i2]:
            if len(kept) < DIFF_LINES_KEPT:
                kept.append("-" + line)
        for line in new_mid[j1:j2]:
            if len(kept) < DIFF_LINES_KEPT:
                kept.append("+" + line)
    return added, removed, kept


def compare_tables(before: list[TableShape], after: list[TableShape]) -> list[TableChange]:
    old = {t.name: t for t in before}
    new = {t.name: t for t in after}
    changes = []
    for name in list(old) + [n for n in new if n not in old]:
        a, b = old.get(name), new.get(name)
        if a != b:
            changes.append(TableChange(name, a, b))
    return changes
