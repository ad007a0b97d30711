"""Slack messages for notices: what a journalist reads in the channel.

``build_message`` is pure: a ``Notice`` in, the fallback ``text`` and Block Kit ``blocks`` out.
Two things shape it beyond looks:

* Pages are hostile input. A page title such as ``<!channel>`` or ``<https://evil|click>``
  would ping a whole newsroom or plant a link if pasted raw, so every string that came from a
  page is escaped (``&``, ``<``, ``>``), and every URL put inside ``<url|text>`` is checked
  (http/https only) and has the characters that could end or split the link percent-encoded.
  Text objects are ``verbatim`` and messages go out with ``parse: none`` and no
  ``link_names``, so a bare ``@channel`` in page text stays text too.
* Slack rejects a whole message that breaks a limit (50 blocks, 3,000 characters per section,
  150 per header). An alert must never be lost to a long title or to 5,000 removed items, so
  text is shortened with a visible marker, and only at places that cannot leave a broken link
  or entity behind.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from urllib.parse import quote, urlsplit

from watcher.models import Notice

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_CONTEXT = 2000
MAX_TOTAL = 40_000  # fallback text plus the blocks' JSON
MAX_ITEMS = 10
MAX_URL = 1000  # longer URLs are shown unlinked: no real document needs more
TRUNCATED = "… (truncated)"
TEST_TEXT = "watcher test message — if you can read this, alerts will reach this channel"

_TITLE_CHARS = 300  # per listed item, before escaping
_SUMMARY_CHARS = 2000
_LINE_CHARS = 1000  # one item's line, after escaping

LABELS = {
    "stopped": ("Stopped", ":hourglass:"),
    "shrank": ("Shrank", ":chart_with_downwards_trend:"),
    "disappeared": ("Disappeared", ":ghost:"),
    "error": ("Error", ":warning:"),
    "recovered": ("Recovered", ":white_check_mark:"),
    "added": ("Added", ":new:"),
    "changed": ("Changed", ":pencil2:"),
}
_ITEMS_HEADING = {
    "disappeared": "No longer listed",
    "shrank": "Removed",
    "stopped": "Latest publications",
    "recovered": "Back",
    "added": "New",
}

Block = dict[str, Any]


# --- escaping ------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Slack's three control characters, as Slack asks: nothing else is entity-encoded."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def safe_url(url: str) -> str | None:
    """``url`` ready to sit inside ``<…|…>``, or None when it must not be linked.

    Only http(s) URLs are linked (no ``javascript:``, ``slack:`` or ``mailto:`` surprises).
    Characters that would close the link (``>``), start its label (``|``), or open another
    (``<``), plus quotes, whitespace and controls, are percent-encoded; ``&`` is escaped the
    way Slack expects inside links.
    """
    url = url.strip()
    if not url or len(url) > MAX_URL:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    out = []
    for ch in url:
        if ch in '<>|"`\\' or ch.isspace() or ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0:
            out.append(quote(ch, safe=""))
        else:
            out.append(ch)
    return "".join(out).replace("&", "&amp;")


def link(url: str, label: str) -> str:
    """A link whose label is page text, escaped; plain escaped text when the URL is unsafe."""
    target = safe_url(url)
    text = escape(_one_line(label)) or (escape(url) if target else "")
    return f"<{target}|{text}>" if target else text


def wayback(url: str) -> str:
    return f"https://web.archive.org/web/*/{url.strip()}"


def fit(text: str, limit: int, marker: str = TRUNCATED) -> str:
    """Cut escaped mrkdwn to ``limit`` characters, marker included.

    The cut backs off so it never ends inside an entity (``&am``) or inside a link
    (``<https://…|ti``), either of which Slack would show as garbage or refuse.
    """
    if len(text) <= limit:
        return text
    head = text[: max(0, limit - len(marker))]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    lt = head.rfind("<")
    if lt > head.rfind(">"):
        head = head[:lt]
    return head.rstrip() + marker


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _clip(text: str, chars: int) -> str:
    """Shorten raw text before escaping, so escaping cannot make it explode in size."""
    text = _one_line(text)
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"


def _when(value: Any, tz: tzinfo) -> str:
    """An ISO time as a reader wants it: local minutes with the zone, not microseconds."""
    text = str(value or "")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            return escape(_clip(text, 40))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


# --- blocks ---------------------------------------------------------------------------------


def _mrkdwn(text: str, limit: int) -> dict[str, Any]:
    """``verbatim``: Slack must not turn bare ``@here``, ``#channel`` or URLs in page text into
    mentions or links; our own links are explicit ``<url|text>`` and still work."""
    return {"type": "mrkdwn", "text": fit(text, limit), "verbatim": True}


def _section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(text, MAX_SECTION)}


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": fit(text, MAX_HEADER, "…")}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [_mrkdwn(text, MAX_CONTEXT)]}


def _pack(lines: list[str]) -> list[Block]:
    """Lines into as few sections as the 3,000-character limit allows."""
    sections: list[Block] = []
    current = ""
    for line in lines:
        line = fit(line, MAX_SECTION)
        if current and len(current) + 1 + len(line) > MAX_SECTION:
            sections.append(_section(current))
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        sections.append(_section(current))
    return sections


def _item_line(item: dict[str, Any], notice: Notice, tz: tzinfo) -> str:
    url = str(item.get("url") or "")
    title = _clip(str(item.get("title") or "") or url or "(untitled)", _TITLE_CHARS)
    tail = ""
    if item.get("last_seen"):
        tail += f" — last seen {_when(item['last_seen'], tz)}"
    archived = ""
    if notice.kind == "disappeared" and safe_url(url) and safe_url(wayback(url)):
        archived = f" · {link(wayback(url), 'archived copies')}"
    for line in (f"• {link(url, title)}{tail}{archived}", f"• {link(url, title)}{tail}"):
        if len(line) <= _LINE_CHARS:
            return line
    return fit(f"• {escape(title)}{tail}", _LINE_CHARS)


def _counts(counts: dict[str, list[int]]) -> str:
    parts = []
    for name, pair in counts.items():
        if isinstance(pair, list | tuple) and len(pair) == 2:
            before, after = (f"{n:,}" if isinstance(n, int) else escape(str(n)) for n in pair)
            parts.append(f"{escape(_clip(name, 40))} {before} → {after}")
    return " · ".join(parts)


def fallback_text(notice: Notice) -> str:
    """``DISAPPEARED: ICE FOIA Library — 3 publications no longer listed: …``.

    This is what push notifications and screen readers show, so it stands on its own.
    """
    kind = notice.kind.upper() + (" (reminder)" if notice.repeat else "")
    name = escape(_clip(notice.target_name or notice.target_id, 200))
    return fit(f"{kind}: {name} — {escape(_clip(notice.summary, 500))}", MAX_SECTION)


def build_message(notice: Notice, *, tz: tzinfo = UTC) -> tuple[str, list[Block]]:
    """The fallback text and the blocks for one notice. Pure, and always within limits."""
    label, emoji = LABELS.get(notice.kind, (notice.kind.capitalize(), ":bell:"))
    name = notice.target_name or notice.target_id
    header = f"{emoji} {label}: {name}"
    if notice.kind == "recovered" and notice.alert_kind:
        header += f" (was {notice.alert_kind})"
    if notice.repeat:
        header = f"{emoji} Still {label.lower()}: {name} (reminder)"
    blocks = [_header(escape(header))]

    summary = escape(_clip(notice.summary, _SUMMARY_CHARS))
    if notice.repeat:
        summary = f"*Reminder:* this alert is still firing.\n{summary}"
    blocks.append(_section(summary))

    facts = [f"*Page:* {link(notice.target_url, _clip(name, 200))}"]
    if notice.url and notice.url != notice.target_url:
        facts.append(f"*{notice.subject.capitalize()}:* {link(notice.url, notice.url)}")
    if notice.counts:
        facts.append(f"*Counts:* {_counts(notice.counts)}")
    if notice.kind == "disappeared":
        gone = [u for u in dict.fromkeys([notice.target_url, notice.url]) if u]
        archives = [
            link(
                wayback(u),
                f"archived copies of the {'page' if u == notice.target_url else notice.subject}",
            )
            for u in gone
            if safe_url(u) and safe_url(wayback(u))
        ]
        if archives:
            facts.append(f"*Wayback Machine:* {' · '.join(archives)}")
    blocks.extend(_pack(facts))

    items = [i for i in notice.items if isinstance(i, dict)]
    if items:
        heading = _ITEMS_HEADING.get(notice.kind, "Affected")
        lines = [f"*{heading} ({len(items):,}):*"]
        lines += [_item_line(i, notice, tz) for i in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            lines.append(f"…and {len(items) - MAX_ITEMS:,} more")
        blocks.extend(_pack(lines))

    context = f"Checked {_when(notice.checked_at, tz)}"
    if notice.snapshot_id is not None:
        context += f" · snapshot {notice.snapshot_id}"
    context += f" · {escape(_clip(notice.target_id, 64))}"
    if notice.agency:
        context += f" · {escape(_clip(notice.agency, 40))}"
    text = fallback_text(notice)
    return text, enforce_limits(text, blocks, _context(context))


def enforce_limits(text: str, blocks: list[Block], last: Block | None = None) -> list[Block]:
    """Drop trailing blocks (keeping ``last``, the context line) until Slack will accept it.

    Individual blocks are already within their own limits; this bounds their number and the
    size of the whole message, and says visibly that something was left out.
    """
    tail = [last] if last else []
    marker = _section(f"_{TRUNCATED}: shortened to fit Slack's limits_")

    def size(bs: list[Block]) -> int:
        return len(text) + len(json.dumps(bs, ensure_ascii=False))

    if len(blocks) + len(tail) <= MAX_BLOCKS and size(blocks + tail) <= MAX_TOTAL:
        return blocks + tail
    kept = blocks[: MAX_BLOCKS - len(tail) - 1]
    while len(kept) > 1 and size([*kept, marker, *tail]) > MAX_TOTAL:
        kept.pop()
    return [*kept, marker, *tail]


def build_test_message() -> tuple[str, list[Block]]:
    """What ``watcher notify test`` posts: unmistakably a test, never mistaken for an alert."""
    text = f":test_tube: {TEST_TEXT}"
    return text, [
        _header(":test_tube: watcher test message"),
        _section(f"{TEST_TEXT}.\nNo publication has changed; nothing needs doing."),
    ]
