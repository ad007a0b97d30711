"""Turn one captured body into a ``Page``: what the page says, independent of its markup.

Later stages compare Pages between captures, so extraction must give the same answer for
the same publication however the agency's CMS renders it that week: template boilerplate
is left out, every document appears once however many ``<a>`` tags point at it, and a bad
body never raises (a crash would hide a real change behind an error).

The tree is walked once, iteratively, by ``markup`` (the 2023 EOIR page nests ~80 tables
deep; hostile pages nest far deeper), collecting lines, links, tables and dates in one pass,
so a 5 MB listing costs little more than parsing it. This module turns that walk into items.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from itertools import islice

import soupsieve
from bs4 import BeautifulSoup
from bs4.element import NavigableString, PageElement, PreformattedString, Tag

from watcher.dates import date_after_label, date_from_filename, date_from_text, date_from_time
from watcher.markup import (
    BOX_TAGS,
    ROW_TAGS,
    TITLE_MAX,
    _attr,
    _Link,
    _trim,
    _Walk,
    _walk,
    _words,
    collapse,
    decode,
    informative,
)
from watcher.models import Item, Page, TableShape
from watcher.urls import (
    DOCUMENT_TYPES,
    absolute_url,
    doc_type,
    file_name,
    normalise_url,
    sniff_document,
    strip_fragment,
)

# What a page says about itself when it is gone, checked against the <title>, the first
# <h1> and, on near-empty pages (soft 404s), every line of the main text. "404" counts
# only alone or beside "error"/"not found": citations like "28 I&N Dec. 404" are not
# missing pages. "Archived:" (ice_node_62000) is retired content, not a missing page.
MISSING_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\bpage\s+not\s+found\b",
        r"\b(?:file|document|content|resource)\s+not\s+found\b",
        r"^\W*404\b",
        r"\b404\W+(?:error|not\s+found|page)\b",
        r"\berror\W*404\b",
        r"^\W*not\s+found\W*$",
        r"\bpage\s+(?:has\s+been|was)\s+(?:removed|deleted)\b",
        r"\bno\s+longer\s+available\b",
        r"\b(?:could\s+not|cannot|can't|can\s+not)\s+be\s+found\b",
        r"\bpage\s+(?:does\s+not|doesn't)\s+exist\b",
    )
)
SOFT_404_MAX_CHARS = 600


_LABEL_END = re.compile(r"\b(?:updated|modified|reviewed)(?:\s+on)?\W*$", re.I)
_LABEL_START = re.compile(r"^\W*(?:page\s+|last\s+)*(?:updated|modified|reviewed)\b", re.I)
_CHARSET_PARAM = re.compile(r"charset\s*=\s*[\"']?([^\s;\"']+)", re.I)
_CODE_TAGS = _words("script style template noscript")
_SOURCE_RANK = {"time": 3, "text": 2, "filename": 1, None: 0}


# --- items -------------------------------------------------------------------------------

_Found = tuple[int, Item]  # (how informative the link's own text is, the item it implies)


def _window(context: str, needle: str) -> str:
    """``context`` cut to TITLE_MAX chars, keeping ``needle`` (the link text) inside."""
    at = context.find(needle) if needle and len(context) > TITLE_MAX else -1
    if at + len(needle) < TITLE_MAX:
        return _trim(context)
    return "…" + _trim(context[max(0, at + len(needle) - TITLE_MAX + 2) :], TITLE_MAX - 1)


def _found(
    url: str | None, text: str, context: str, times: list[str], today: date
) -> _Found | None:
    """The item one link implies, with how informative its own text is: 2 when it names
    the document, 1 when weak ("ID 4033"), 0 when empty. None for links to no resource."""
    if url is None:
        return None
    strength = 2 if informative(text) else 1 if text else 0
    title = _window(context, text) if strength < 2 and context else _trim(text)
    # Dates: a <time> in the item's row, then a date in its text, then in its file name.
    dated: tuple[date | None, str | None] = (None, None)
    if d := next(filter(None, (date_from_time(v, today) for v in times)), None):
        dated = (d, "time")
    elif d := date_from_text(text, today) or date_from_text(context, today):
        dated = (d, "text")
    elif d := date_from_filename(file_name(url), today):
        dated = (d, "filename")
    item = Item(normalise_url(url), title or file_name(url) or url, url, doc_type(url), *dated)
    return strength, item


def _merge(found: list[_Found | None]) -> list[Item]:
    """One Item per key, in page order.

    The title comes from the link whose own text is most informative: on the 2021 EOIR
    page, empty links to ID 4008's file sit in the rows of IDs 4009 and 4010 and must not
    lend it their row text. The date is that link's, unless another link with text has a
    better-sourced one.
    """
    groups: dict[str, list[_Found]] = {}
    for pair in found:
        if pair is not None:
            groups.setdefault(pair[1].key, []).append(pair)
    items = []
    for group in groups.values():
        best = max(group, key=lambda pair: pair[0])[1]  # the first among equals
        dated = max(
            (item for strength, item in group if item is best or strength > 0),
            key=lambda item: _SOURCE_RANK[item.date_source] + (0.5 if item is best else 0),
        )
        items.append(replace(best, date=dated.date, date_source=dated.date_source))
    return items


def _default_items(w: _Walk, base: str, today: date) -> list[Item]:
    """Listing entries (``li.usa-collection__item``) and links to documents, page order."""
    found: list[tuple[int, _Found | None]] = []
    for box in w.collection:  # ICE FOIA Library: title from the h4 link, date from <time>
        if link := box.heading_link or box.first_link:
            url = absolute_url(link.href, base)
            found.append(
                (link.start, _found(url, w.link_text(link), w.box_text(box), w.times(box), today))
            )
    previous: tuple[_Link, str, str] | None = None
    for link in w.links:
        kind = doc_type(link.href)  # the relative href is enough to tell, and cheaper
        url = absolute_url(link.href, base) if kind in DOCUMENT_TYPES else None
        if url is None:
            previous = None
            continue
        text, keep, start = w.link_text(link), (link, url), link.start
        # Anchors with nothing at all between them read as one link. EOIR 2023/2024 write
        # <a href="/file/1468491/dl">ID </a><a href="/media/1208956/dl?inline">4038</a>:
        # one decision, keyed by the fragment with the most text ("4038").
        if previous and link.tag.previous_sibling is previous[0].tag and previous[2] == kind:
            if len(w.link_text(previous[0]).strip()) >= len(text.strip()):
                keep = previous[:2]
            text, start = w.text(previous[0].start, link.end, TITLE_MAX), previous[0].start
            found.pop()
        row = keep[0].box
        found.append((start, _found(keep[1], text, w.box_text(row), w.times(row), today)))
        previous = (link, url, kind) if start == link.start else None
    found.sort(key=lambda pair: pair[0])
    return _merge([pair for _, pair in found])


def _selected_items(
    soup: BeautifulSoup, select: str, within: str | None, base: str, today: date
) -> list[Item]:
    """Items for an explicit selector: each match is an item, through its own ``href`` or
    the first link inside it; the match's text titles a weak link and carries its date."""
    seen: set[int] = set()
    contexts: dict[int, _Walk] = {}
    found: list[_Found | None] = []

    def walked(tag: Tag) -> _Walk:  # many links share one row: walk it once
        if id(tag) not in contexts:
            contexts[id(tag)] = _walk(tag)
        return contexts[id(tag)]

    for scope in soup.select(within) if within else [soup]:
        for el in scope.select(select):
            if id(el) in seen or not (own := _walk(el)).links:
                continue
            seen.add(id(el))
            link = own.links[0]
            context, times = own.text(), own.time_val
            if link.tag is el:  # a bare <a>: its row / list item / paragraph is the context
                box = next((p for p in el.parents if p.name in BOX_TAGS), None)
                context, times = (walked(box).text(), walked(box).time_val) if box else ("", [])
                if box is not None and not times and box.name not in ROW_TAGS:
                    row = next((p for p in box.parents if p.name in ROW_TAGS), None)
                    times = walked(row).time_val if row else []
            url = absolute_url(link.href, base)
            found.append(_found(url, own.link_text(link), context, times, today))
    return _merge(found)


def validate_selector(css: str) -> str | None:
    """None if ``css`` is a usable selector, else why not. For config loading: a bad
    selector should fail when targets.yaml is read, not in the middle of a check."""
    try:
        soupsieve.compile(css)
    except Exception as exc:  # SelectorSyntaxError, or ValueError/TypeError on odd input
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


# --- page-level facts --------------------------------------------------------------------


def _page_title(soup: BeautifulSoup, h1: str) -> str:
    """The <head> <title> only (the 2023 EOIR page has dozens of SVG <title>s in its body),
    else og:title, else the first <h1>."""
    title = soup.head.find("title") if soup.head is not None else None
    if isinstance(title, Tag) and (text := collapse(title.get_text(" "))):
        return text
    og = soup.find("meta", property="og:title")
    if isinstance(og, Tag) and (text := collapse(_attr(og, "content"))):
        return text
    first = soup.find("h1") if not h1 else None
    return collapse(first.get_text(" ")) if isinstance(first, Tag) else h1


def _small_text(node: PageElement, budget: int = 20) -> str:
    """Text of a node, reading at most ``budget`` nodes: cheap even for every <time> on a
    huge listing, and enough for a label such as "Updated:"."""
    out: list[str] = []
    stack = [node]
    while stack and budget > 0:
        budget -= 1
        current = stack.pop()
        if isinstance(current, Tag):
            stack.extend(reversed(current.contents))
        elif isinstance(current, NavigableString) and not isinstance(current, PreformattedString):
            out.append(current)
    return " ".join(out)


def _near(siblings: Iterable[PageElement], backwards: bool = False) -> str:
    """Text of the up to three siblings next to an element, in reading order."""
    parts = [_small_text(s) for s in islice(siblings, 3)]
    return collapse(" ".join(reversed(parts) if backwards else parts))


def _updated(soup: BeautifulSoup, lines: list[str], today: date) -> date | None:
    """The page's own last-updated date, or None.

    ice.gov: ``<span>Updated: <time datetime="2026-02-04T13:51:38-05:00">02/04/2026</time>``
    in a "last-updated" views block (ice_contact_field-offices_listing.html). justice.gov:
    ``<div class="node-updated-date">Updated April 16, 2024</div>`` (EOIR). Only a label
    right before the date counts: "the list is updated monthly" is not a date. The main
    text's lines are read first, the rest of the document only if they have no label.
    """
    for line in lines:
        if d := date_after_label(line, today):
            return d
    for time in soup.find_all("time"):
        if _LABEL_END.search(_near(time.previous_siblings, backwards=True)) and (
            d := date_from_time(_attr(time, "datetime") or time.get_text(" "), today)
        ):
            return d
    for string in islice(soup.find_all(string=_LABEL_START), 50):
        parent = string.parent
        if isinstance(string, PreformattedString) or (parent and parent.name in _CODE_TAGS):
            continue
        if d := date_after_label(collapse(string + " " + _near(string.next_siblings)), today):
            return d
    return None


def missing_phrase(texts: list[str]) -> str | None:
    """The first of ``texts`` that says the page is gone (MISSING_PATTERNS), or None."""
    return next((t for t in texts if t and any(p.search(t) for p in MISSING_PATTERNS)), None)


def _main_root(soup: BeautifulSoup) -> Tag:
    """``<main>``, else ``[role=main]`` (EOIR 2021's div.l-content), else ``#main-content``
    unless that is just the empty skip-link target ice.gov puts inside <main>."""
    found = soup.find("main") or soup.find(role="main") or soup.find(id="main-content")
    if isinstance(found, Tag) and not (found.name == "a" and not found.contents):
        return found
    return soup.body if soup.body is not None else soup


# --- entry point -------------------------------------------------------------------------


def extract(
    body: bytes,
    *,
    url: str,
    today: date,
    content_type: str = "text/html",
    charset: str | None = None,
    select: str | None = None,
    within: str | None = None,
    sha256: str | None = None,
) -> Page:
    """What the capture ``body`` of ``url`` says, as a ``Page``. Never raises on the body.

    A file (PDF, XLSX, ...; see ``urls.sniff_document``) becomes a one-item document Page,
    its bytes unread. ``select``/``within`` are CSS selectors from the target's config;
    an invalid one raises ``ValueError`` (call ``validate_selector`` at config load).
    ``within`` matching nothing gives no items: a vanished container is news. ``sha256``
    is accepted so callers can pass ``Fetched.sha256`` through; nothing here needs it.
    """
    del sha256
    if kind := sniff_document(body, url, content_type):
        name = file_name(url) or url
        d = date_from_filename(name, today)
        item = Item(
            normalise_url(url), name, strip_fragment(url), kind, d, "filename" if d else None
        )
        return Page(url=url, title=name, items=[item], is_document=True)
    for css in (select, within):
        if css and (problem := validate_selector(css)):
            raise ValueError(f"invalid CSS selector {css!r}: {problem}")
    m = _CHARSET_PARAM.search(content_type or "")
    text = decode(body, charset or (m.group(1) if m else None))
    # A parsed tree is one big reference cycle; letting the cyclic GC rescan it while it
    # grows costs ~20% on a 5 MB page. It is collected once, afterwards.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _extract_html(text, url, today, select, within)
    finally:
        if gc_was_enabled:
            gc.enable()


def _extract_html(text: str, url: str, today: date, select: str | None, within: str | None) -> Page:
    try:
        # Class attributes stay strings: splitting them costs a quarter of the parse time.
        soup = BeautifulSoup(text.replace("\x00", "\ufffd"), "lxml", multi_valued_attributes=None)
    except Exception:  # bs4's ParserRejectedMarkup, lxml errors on pathological input
        return Page(url=url, title="")
    base_tag = soup.head.find("base", href=True) if soup.head else None
    base = url
    if isinstance(base_tag, Tag):
        base = absolute_url(_attr(base_tag, "href"), url) or url
    w = _walk(_main_root(soup))
    if select:
        items = _selected_items(soup, select, within, base, today)
    elif within:
        merged: dict[str, Item] = {}
        for scope in soup.select(within):
            for item in _default_items(_walk(scope), base, today):
                merged.setdefault(item.key, item)
        items = list(merged.values())
    else:
        items = _default_items(w, base, today)
    title = _page_title(soup, w.h1)
    checks = [title, w.h1]
    if sum(len(line) for line in w.lines) <= SOFT_404_MAX_CHARS:
        checks += w.lines
    return Page(
        url=url,
        title=title,
        lines=w.lines,
        items=items,
        tables=[TableShape(t.name, t.rows, t.columns) for t in w.tables],
        updated=_updated(soup, w.lines, today),
        looks_missing=missing_phrase(checks) is not None,
    )
