"""The data that flows between pipeline stages.

Stages exchange these plain dataclasses and nothing else, so each stage can be tested alone
and a stored ``Page`` can be compared later without parsing the body again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class Item:
    """One publication listed on a page: a document link or a listing entry.

    ``key`` is the normalised absolute URL and identifies the item between captures.
    ``date_source`` says where ``date`` came from: "time", "text" or "filename".
    """

    key: str
    title: str
    url: str
    type: str
    date: date | None = None
    date_source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "url": self.url,
            "type": self.type,
            "date": self.date.isoformat() if self.date else None,
            "date_source": self.date_source,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Item:
        return cls(
            key=d["key"],
            title=d["title"],
            url=d["url"],
            type=d["type"],
            date=date.fromisoformat(d["date"]) if d.get("date") else None,
            date_source=d.get("date_source"),
        )


@dataclass(frozen=True)
class TableShape:
    """A table's size. ``name`` is its caption, else its id, else "table N" (1-based)."""

    name: str
    rows: int
    columns: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rows": self.rows, "columns": self.columns}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableShape:
        return cls(name=d["name"], rows=int(d["rows"]), columns=int(d["columns"]))


@dataclass
class Page:
    """What a capture means, independent of its markup.

    A target whose URL is itself a document (PDF, XLSX) becomes a ``Page`` with
    ``is_document=True`` and a single item describing the file.
    """

    url: str
    title: str
    lines: list[str] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    tables: list[TableShape] = field(default_factory=list)
    updated: date | None = None
    is_document: bool = False
    # True when the page says of itself that it is gone ("Page Not Found", "no longer
    # available"). Extraction only reports the fact; detect decides what it means.
    looks_missing: bool = False

    @property
    def text_size(self) -> int:
        return sum(len(line) for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "title": self.title,
            "lines": self.lines,
            "items": [i.to_dict() for i in self.items],
            "tables": [t.to_dict() for t in self.tables],
            "updated": self.updated.isoformat() if self.updated else None,
            "is_document": self.is_document,
            "looks_missing": self.looks_missing,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Page:
        return cls(
            url=d["url"],
            title=d["title"],
            lines=list(d.get("lines", [])),
            items=[Item.from_dict(i) for i in d.get("items", [])],
            tables=[TableShape.from_dict(t) for t in d.get("tables", [])],
            updated=date.fromisoformat(d["updated"]) if d.get("updated") else None,
            is_document=bool(d.get("is_document", False)),
            looks_missing=bool(d.get("looks_missing", False)),
        )


@dataclass(frozen=True)
class Validators:
    """Cache validators exactly as the server sent them last time (ETag normalised)."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Redirect:
    status: int
    url: str  # where the redirect pointed


@dataclass
class Fetched:
    """A successful HTTP exchange: a 2xx body, or a 304 meaning "same as last time"."""

    url: str
    final_url: str
    status: int
    content_type: str
    body: bytes | None  # None for 304
    sha256: str | None  # of body; None for 304
    validators: Validators
    redirects: list[Redirect] = field(default_factory=list)
    elapsed: float = 0.0
    # What the page itself asked to be called "charset"; extract needs it for decoding.
    charset: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True)
class Event:
    """Something a check observed. ``severity`` is "alert" or "info".

    ``subject`` is "page", "item" or "document"; ``data`` carries details for notifications
    (counts before/after, removed items with last-seen times, error class...).
    """

    kind: str
    severity: str
    subject: str
    title: str
    url: str
    summary: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "subject": self.subject,
            "title": self.title,
            "url": self.url,
            "summary": self.summary,
            **({"data": self.data} if self.data else {}),
        }


ALERT_KINDS = ("stopped", "shrank", "disappeared", "error")
INFO_KINDS = ("added", "changed", "recovered")
EVENT_KINDS = ALERT_KINDS + INFO_KINDS


def severity_of(kind: str) -> str:
    return "alert" if kind in ALERT_KINDS else "info"


def iso(dt: datetime) -> str:
    """ISO-8601 with seconds, the one format used in reports and the store."""
    return dt.isoformat(timespec="seconds")


@dataclass
class Notice:
    """One message about an alert: it fired, it is still firing (``repeat``), or it recovered.

    ``alerts`` writes a Notice into the outbox in the same transaction that changes the
    alert; notifiers (Slack, email) render it at delivery time. It carries every fact a
    message shows, so delivery never needs to query the store again.
    """

    alert_id: int
    target_id: str
    target_name: str
    target_url: str
    kind: str  # stopped | shrank | disappeared | error | recovered
    alert_kind: str  # the alert's own kind; differs from ``kind`` only for "recovered"
    subject: str  # page | item | document
    summary: str
    checked_at: str  # ISO-8601
    snapshot_id: int | None = None
    repeat: bool = False
    url: str = ""  # what the notice is about (the page, or the document that vanished)
    counts: dict[str, list[int]] = field(default_factory=dict)  # {"items": [25, 22]}
    # Affected items: {"title", "url", "last_seen"}; may be thousands long, notifiers cap it.
    items: list[dict[str, Any]] = field(default_factory=list)
    agency: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Notice:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
