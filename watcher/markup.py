"""HTML decoding and the one-pass tree walk that ``extract`` reads pages through.

Split out of ``extract.py`` (one module per stage, ~400 lines each): this is the markup
half, turning bytes into text and a parsed tree into lines, links, boxes, tables and
``<time>`` positions with template boilerplate left out. ``extract.py`` keeps what those
mean: items, dates, tables and the page-level facts.
"""

from __future__ import annotations

import codecs
import re
from bisect import bisect_left
from dataclasses import dataclass, field

from bs4.element import NavigableString, PreformattedString, Tag


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# USWDS template parts that are not content: whole tags, ARIA landmarks, and classes for
# the .gov banner, skip links, identifier, footer (ice.gov repeats .usa-footer__* inside
# <main>), breadcrumbs, screen-reader labels and share widgets (justice.gov .node-share).
SKIP_TAGS = _words(
    "header nav footer script style noscript svg math template iframe object select textarea"
)
SKIP_ROLES = _words("navigation banner contentinfo search")
SKIP_CLASSES = _words(
    "usa-banner usa-skipnav skip-link skip-content usa-sr-only sr-only visually-hidden "
    "element-invisible element-hidden node-share share-icons a2a_kit"
)
SKIP_CLASS_PREFIXES = ("usa-identifier", "usa-footer", "usa-nav", "usa-breadcrumb", "breadcrumb")
HEADINGS = _words("h1 h2 h3 h4 h5 h6")
BLOCK_TAGS = HEADINGS | _words(
    "address article aside blockquote dd details dialog div dl dt fieldset figcaption figure "
    "form hgroup hr li main ol p pre section table tbody thead tfoot tr ul caption summary "
    "legend body html br"
)
# The "row / list item / paragraph" whose text titles a link with a weak label. A <time>
# is looked for there, then in the enclosing row or list item (ROW_TAGS), never further.
BOX_TAGS = _words("tr li p dd dt")
ROW_TAGS = _words("tr li")
# Link labels that say nothing about the document: formats, sizes, "download", "here".
GENERIC_WORDS = _words(
    "pdf xlsx xls csv zip doc docx txt json ppt pptx rtf file download here click link view "
    "open read more the this and bytes size format"
)
TITLE_MAX = 300

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_WORD = re.compile(r"[^\W\d_]{3,}")
_META_CHARSET = re.compile(rb"<meta[^>]+?charset\s*=\s*[\"']?\s*([\w.:-]+)", re.I)


def collapse(text: str) -> str:
    """Whitespace runs to one space, control characters dropped, ends trimmed."""
    return " ".join(_CONTROL.sub("", text).split())


def _trim(text: str, limit: int = TITLE_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _attr(tag: Tag, name: str) -> str:
    value = tag.get(name)
    return " ".join(value) if isinstance(value, list) else (value or "")


def _codec(label: str | None, *, from_meta: bool) -> str | None:
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name if label else ""
    except LookupError:
        return None
    if not name or (from_meta and name.startswith(("utf-16", "utf-32"))):
        return None  # a page that states its charset in ASCII is not UTF-16 (WHATWG)
    return "cp1252" if name in ("iso8859-1", "ascii") else name  # as browsers read them


def decode(body: bytes, charset: str | None = None) -> str:
    """Bytes to text the way a browser would, never raising.

    Byte-order mark, then the HTTP charset, then ``<meta charset>``/http-equiv, then
    UTF-8, then windows-1252 (gets a Latin-1 page's "é" right), then Latin-1, which takes
    anything. A declared charset that fails on the bytes is not trusted. A Latin-1 label
    on valid non-ASCII UTF-8 is read as UTF-8: servers default to ISO-8859-1 far more often
    than Latin-1 text happens to be valid UTF-8.
    """
    if body.startswith(codecs.BOM_UTF8):
        return body[3:].decode("utf-8", errors="replace")
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return body.decode("utf-16", errors="replace")
    meta = _META_CHARSET.search(body[:8192])
    meta_label = meta.group(1).decode("ascii") if meta else None
    declared = [_codec(charset, from_meta=False), _codec(meta_label, from_meta=True)]
    for enc in [e for e in declared if e] + ["utf-8", "cp1252"]:
        try:
            text = body.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        if enc == "cp1252" and not text.isascii():
            try:
                return body.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return text
    return body.decode("latin-1")


# --- the walk ----------------------------------------------------------------------------


@dataclass
class _Link:
    tag: Tag
    href: str
    start: int  # position in _Walk.texts where the link's text begins
    box: _Box | None  # the enclosing row / list item / paragraph
    end: int = -1
    label: str = ""  # aria-label / title / img alt, for links without text


@dataclass
class _Box:
    tag: Tag
    start: int
    end: int = -1
    parent: _Box | None = None  # the enclosing box
    heading_link: _Link | None = None  # usa-collection items: the h4 heading link
    first_link: _Link | None = None
    text: str | None = None  # filled on first use


@dataclass
class _Table:
    name: str
    rows: int = 0
    columns: int = 0


@dataclass
class _Row:
    tag: Tag
    table: _Table
    cells: int = 0
    has_td: bool = False


@dataclass
class _Walk:
    texts: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    links: list[_Link] = field(default_factory=list)
    collection: list[_Box] = field(default_factory=list)
    tables: list[_Table] = field(default_factory=list)
    time_pos: list[int] = field(default_factory=list)
    time_val: list[str] = field(default_factory=list)
    h1: str = ""

    def text(self, start: int = 0, end: int | None = None, limit: int = 2000) -> str:
        """Collapsed text between two positions, reading no more than ~``limit`` chars
        (indexing, not slicing: nested rows would make slices quadratic)."""
        out: list[str] = []
        size = 0
        for i in range(start, len(self.texts) if end is None else end):
            out.append(self.texts[i])
            size += len(self.texts[i])
            if size > limit:
                break
        return collapse("".join(out))

    def times(self, box: _Box | None) -> list[str]:
        """``<time>`` values (datetime, else text) in ``box``, else in its row or list item."""
        while box is not None:
            i, j = bisect_left(self.time_pos, box.start), bisect_left(self.time_pos, box.end)
            if i < j or box.tag.name in ROW_TAGS:
                return self.time_val[i:j]
            box = box.parent
        return []

    def link_text(self, link: _Link) -> str:
        return self.text(link.start, link.end, TITLE_MAX) or link.label

    def box_text(self, box: _Box | None) -> str:
        if box is not None and box.text is None:
            box.text = self.text(box.start, box.end)
        return box.text or "" if box is not None else ""


def _skip(tag: Tag) -> bool:
    if tag.name in SKIP_TAGS:
        return True
    attrs = tag.attrs  # read directly: this runs for every element of a 5 MB page
    if not attrs:
        return False
    if attrs.get("role") in SKIP_ROLES:
        return True
    classes = attrs.get("class")
    if not classes:
        return False
    names = classes.split() if isinstance(classes, str) else classes
    return any(c in SKIP_CLASSES or c.startswith(SKIP_CLASS_PREFIXES) for c in names)


def _walk(root: Tag) -> _Walk:
    """One iterative pass over ``root``, skipping boilerplate subtrees.

    Text pieces go to one list and a line is flushed at every block boundary. Rows, list
    items, links and ``<time>``s remember positions in that list, so their text and dates
    are read later without walking the tree again.
    """
    w = _Walk()
    texts = w.texts
    line_start = h1_start = headings = 0
    boxes: list[_Box] = []
    links: list[_Link] = []
    items: list[_Box] = []
    tables: list[_Table] = []
    rows: list[_Row] = []
    stack: list[tuple[object, bool]] = [(root, False)]

    def flush() -> None:
        nonlocal line_start
        if line_start < len(texts) and (line := collapse("".join(texts[line_start:]))):
            w.lines.append(line)
        if texts and texts[-1] != " ":  # one separator, however deep the empty nesting
            texts.append(" ")
        line_start = len(texts)

    while stack:
        node, leaving = stack.pop()
        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, CDATA, doctype
                texts.append(node)
            continue
        if not isinstance(node, Tag):
            continue
        name = node.name
        if leaving:
            if name in BLOCK_TAGS and line_start < len(texts):
                flush()
            for open_ in (boxes, items, links):
                if open_ and open_[-1].tag is node:
                    open_.pop().end = len(texts)
            if rows and rows[-1].tag is node:
                row = rows.pop()
                row.table.rows += row.has_td
                row.table.columns = max(row.table.columns, row.cells)
            if name in HEADINGS:
                headings -= 1
                if name == "h1" and not w.h1:
                    w.h1 = w.text(h1_start, None, 500)
            elif name == "table" and tables:
                tables.pop()
            continue
        if node is not root and _skip(node):
            continue
        if name in BLOCK_TAGS and line_start < len(texts):
            flush()
        if name in ("td", "th"):
            if texts and texts[-1] != " ":
                texts.append(" ")
            if rows and tables and rows[-1].table is tables[-1]:
                rows[-1].cells += 1
                rows[-1].has_td = rows[-1].has_td or name == "td"
        elif name == "tr" and tables:
            rows.append(_Row(node, tables[-1]))
        elif name == "table":
            caption = node.find("caption", recursive=False)
            label = collapse(caption.get_text(" ")) if isinstance(caption, Tag) else ""
            tables.append(_Table(_trim(label or _attr(node, "id") or f"table {len(w.tables) + 1}")))
            w.tables.append(tables[-1])
        elif name == "time":
            w.time_pos.append(len(texts))
            w.time_val.append(_attr(node, "datetime") or node.get_text(" "))
        elif name in HEADINGS:
            headings += 1
            h1_start = len(texts) if name == "h1" else h1_start
        elif name == "img" and links and not links[-1].label:
            links[-1].label = collapse(_attr(node, "alt"))
        elif name == "a" and node.has_attr("href"):
            link = _Link(node, _attr(node, "href"), len(texts), boxes[-1] if boxes else None)
            link.label = collapse(_attr(node, "aria-label") or _attr(node, "title"))
            w.links.append(link)
            links.append(link)
            if items and headings and items[-1].heading_link is None:
                items[-1].heading_link = link
            if items and items[-1].first_link is None:
                items[-1].first_link = link
        if name in BOX_TAGS:
            boxes.append(_Box(node, len(texts), parent=boxes[-1] if boxes else None))
        if name == "li" and "usa-collection__item" in _attr(node, "class").split():
            items.append(_Box(node, len(texts)))
            w.collection.append(items[-1])
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node.contents))
    flush()
    return w


def informative(text: str) -> bool:
    """True if a link label names something ("Detention Statistics"), not only a format, a
    size or a number: EOIR labels its links "ID 4033", "4038" or "ID 4055 (PDF)"."""
    return any(w.lower() not in GENERIC_WORDS for w in _WORD.findall(text))
