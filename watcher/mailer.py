"""The digest as an email: rendering (Jinja2), queueing (outbox) and delivery (smtplib).

Delivery goes through the outbox like every other notification: ``queue_digest`` stores the
finished message under a dedupe key, ``deliver_email`` sends what is queued and marks it sent.
An SMTP outage therefore delays a digest but never loses it, and a window is never queued
twice. The one gap SMTP leaves (the server accepted, we crashed before marking it sent) is
covered by a stable ``Message-ID``, which mail clients use to fold the duplicate.

Errors are reduced to one line without the SMTP password, because they end up in logs.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from watcher import __version__
from watcher.config import Config, SmtpConfig
from watcher.digest import Digest, DueOf, TargetDigest, build_digest, is_queued
from watcher.errors import NotifyError
from watcher.outbox import enqueue, mark_failed, mark_retry, mark_sent, pending
from watcher.scheduler import parse_stored_time
from watcher.store import Store, when

RETRY_FIRST = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=1)
# A digest still undelivered after this long is dropped (marked failed): old news.
EXPIRES = timedelta(days=7)
TITLE_MAX = 200

_ENV = Environment(
    loader=PackageLoader("watcher", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=StrictUndefined,
)


def _oneline(value: object) -> str:
    """Page text in one line: no newlines to break the layout, bounded length."""
    text = " ".join(str(value).split())
    return text if len(text) <= TITLE_MAX else text[: TITLE_MAX - 1] + "…"


def _web(url: str) -> bool:
    return bool(re.match(r"https?://", url, re.IGNORECASE))


def _wayback(url: str) -> str:
    return f"https://web.archive.org/web/*/{url}"


_ENV.filters["oneline"] = _oneline
_ENV.filters["wayback"] = _wayback

_STATE_COLOR = {"alert": "#c62828", "error": "#b26a00", "ok": "#1a7f37", "unchecked": "#666"}
_STATE_MARK = {"alert": "!", "error": "?", "ok": "✓", "unchecked": "·"}
_KIND_COLOR = {"stopped": "#c62828", "disappeared": "#c62828", "shrank": "#c62828"}


class Fmt:
    """Formatting helpers for the templates, bound to the digest's time zone."""

    def __init__(self, digest: Digest) -> None:
        self.tz = digest.tz

    def day(self, dt: datetime) -> str:
        local = dt.astimezone(self.tz)
        return f"{local:%a} {local.day} {local:%b}"

    def when(self, dt: datetime) -> str:
        local = dt.astimezone(self.tz)
        return f"{local:%a} {local.day} {local:%b %Y %H:%M %Z}"

    @staticmethod
    def count(n: int, noun: str) -> str:
        return f"{n} {noun}{'' if n == 1 else 's'}"

    @staticmethod
    def age(t: TargetDigest) -> str:
        if t.newest is None or t.newest.date is None or t.newest_age is None:
            return "undated"
        days = t.newest_age
        ago = "today" if days == 0 else f"in {-days} d" if days < 0 else f"{days} d ago"
        return f"{t.newest.date.isoformat()}, {ago}"

    def newest(self, t: TargetDigest) -> str:
        if t.newest is None:
            return "no dated publication"
        return f"{_oneline(t.newest.title)} ({self.age(t)})"

    @staticmethod
    def mark(t: TargetDigest) -> str:
        return _STATE_MARK.get(t.state, "·")

    @staticmethod
    def color(t: TargetDigest) -> str:
        return _STATE_COLOR.get(t.state, "#666")

    @staticmethod
    def kind_color(kind: str) -> str:
        return _KIND_COLOR.get(kind, "#444")

    @staticmethod
    def web(url: str) -> bool:
        return _web(url)

    @staticmethod
    def a(url: str, text: object) -> Markup:
        """A link, both parts escaped; anything but http(s) (``javascript:``) stays text."""
        label = escape(_oneline(text))
        if not _web(url):
            return Markup(label)
        return Markup('<a href="{}" style="color:#0b57d0;">{}</a>').format(url, label)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def subject_of(digest: Digest) -> str:
    """``watcher: 2 alerts, 5 new publications — Tue 24 Nov`` (the day the window ends)."""
    day = Fmt(digest).day(digest.end)
    if digest.empty:
        return f"watcher: all quiet — {day}"
    return (
        f"watcher: {Fmt.count(digest.firing, 'alert')}, "
        f"{Fmt.count(digest.new_publications, 'new publication')} — {day}"
    )


def render_digest(digest: Digest) -> Rendered:
    subject = subject_of(digest)
    context: dict[str, Any] = {
        "d": digest,
        "fmt": Fmt(digest),
        "subject": subject,
        "version": __version__,
    }
    text = _ENV.get_template("digest.txt").render(context)
    html = _ENV.get_template("digest.html").render(context)
    return Rendered(subject, text, html)


# --- queueing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Queued:
    """What ``queue_digest`` did: ``queued`` a new message, found a ``duplicate``, or
    ``skipped`` an empty digest (``skip_empty``)."""

    status: str
    outbox_id: int | None = None
    subject: str = ""


def queue_digest(
    store: Store,
    config: Config,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    key: str,
    scheduled: bool,
    due_of: DueOf | None = None,
) -> Queued:
    """Render the digest of ``[start, end)`` and put it in the outbox under ``key``.

    The payload is the finished message, so a retry hours later sends exactly what was due.
    """
    digest_config = config.notify.digest
    if digest_config is None:
        raise ValueError("notify.digest is not configured")
    if is_queued(store.db, key):
        return Queued("duplicate")
    digest = build_digest(store, config, start=start, end=end, due_of=due_of)
    if digest.empty and digest_config.skip_empty:
        return Queued("skipped")
    rendered = render_digest(digest)
    payload: dict[str, Any] = {
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "to": list(digest_config.to),
        "from": digest_config.from_,
        "window": {"start": when(start), "end": when(end)},
        "scheduled": scheduled,
        "key": key,
    }
    with store.transaction() as db:
        row_id = enqueue(db, "email", "digest", payload, created_at=when(now), dedupe_key=key)
    return Queued("queued" if row_id else "duplicate", row_id, rendered.subject)


# --- delivery ------------------------------------------------------------------------------


def build_message(payload: dict[str, Any], *, date: datetime) -> EmailMessage:
    """multipart/alternative: the plain text first, the HTML last (the preferred part)."""
    msg = EmailMessage()
    msg["Subject"] = payload["subject"]
    msg["From"] = payload["from"]
    msg["To"] = ", ".join(payload["to"])
    msg["Date"] = format_datetime(date.astimezone(UTC))
    key = str(payload.get("key") or payload["subject"])
    domain = str(payload["from"]).rpartition("@")[2] or "watcher.invalid"
    msg["Message-ID"] = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    msg.set_content(payload["text"])
    msg.add_alternative(payload["html"], subtype="html")
    return msg


def send_message(msg: EmailMessage, smtp: SmtpConfig) -> None:
    """Hand one message to the SMTP server. Raises ``NotifyError`` (redacted) on failure."""
    timeout = smtp.timeout.total_seconds()
    password = smtp.password.get_secret_value() if smtp.password else None
    try:
        client: smtplib.SMTP
        if smtp.ssl:
            client = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        with client:
            if smtp.starttls and not smtp.ssl:
                client.starttls(context=ssl.create_default_context())
            if smtp.username:
                client.login(smtp.username, password or "")
            client.send_message(msg)
    except (smtplib.SMTPException, OSError) as e:
        raise NotifyError("email", _describe(e, smtp, password)) from None


def _describe(e: BaseException, smtp: SmtpConfig, password: str | None) -> str:
    if isinstance(e, smtplib.SMTPResponseException):
        said = e.smtp_error
        said = said.decode("utf-8", "replace") if isinstance(said, bytes) else said
        detail = f"{e.smtp_code} {said}"
    elif isinstance(e, smtplib.SMTPRecipientsRefused):
        detail = "recipients refused: " + ", ".join(e.recipients)
    elif isinstance(e, socket.timeout | TimeoutError):
        detail = f"timed out after {smtp.timeout.total_seconds():g}s"
    else:
        detail = str(e) or e.__class__.__name__
    text = f"{smtp.host}:{smtp.port}: {e.__class__.__name__}: {_oneline(detail)}"
    return redact(text, password, smtp.username)


def redact(text: str, secret: str | None, username: str | None = None) -> str:
    """Remove a password from ``text``, also in the base64 forms AUTH LOGIN and AUTH PLAIN
    put on the wire, in case a server echoes them back in an error."""
    if not secret:
        return text
    forms = [secret, base64.b64encode(secret.encode()).decode()]
    if username:
        forms.append(base64.b64encode(f"\0{username}\0{secret}".encode()).decode())
    for form in sorted(forms, key=len, reverse=True):  # longest first: one may contain another
        text = text.replace(form, "***")
    return text


@dataclass
class Delivery:
    sent: list[str] = field(default_factory=list)  # subjects
    failed: list[str] = field(default_factory=list)  # one-line errors, redacted
    waiting: int = 0  # still queued after this pass
    busy: bool = False  # another process was delivering; nothing was tried


def deliver_email(
    store: Store,
    config: Config,
    *,
    now: datetime,
    send: Callable[[EmailMessage, SmtpConfig], None] = send_message,
) -> Delivery:
    """Send the queued emails whose retry time has come, oldest first.

    The first failure stops the pass (the server is down for all of them) and schedules the
    next attempt with exponential backoff, from ``RETRY_FIRST`` up to ``RETRY_MAX``. One
    process delivers at a time (``watcher run`` and a manual ``watcher digest --send`` could
    otherwise both send the same queued message); the other leaves it for the next pass.
    """
    with _exclusive(store.data_dir / "mail.lock") as mine:
        if not mine:
            return Delivery(waiting=len(pending(store.db, "email")), busy=True)
        return _deliver(store, config, now, send)


@contextmanager
def _exclusive(path: Path) -> Iterator[bool]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


def _deliver(
    store: Store, config: Config, now: datetime, send: Callable[[EmailMessage, SmtpConfig], None]
) -> Delivery:
    result = Delivery()
    digest_config = config.notify.digest
    rows = pending(store.db, "email")
    if digest_config is None:
        result.waiting = len(rows)
        return result
    for i, row in enumerate(rows):
        created = parse_stored_time(row.created_at) or now
        if now - created > EXPIRES:
            with store.transaction() as db:
                mark_failed(db, row.id, f"expired undelivered after {row.attempts} attempts")
            continue
        due = parse_stored_time(row.next_attempt_at)
        if due is not None and due > now:
            result.waiting = len(rows) - i
            break
        try:
            send(build_message(row.payload, date=now), digest_config.smtp)
        except NotifyError as e:
            delay = min(RETRY_MAX, RETRY_FIRST * 2 ** min(row.attempts, 10))
            with store.transaction() as db:
                mark_retry(db, row.id, e.message, when(now + delay))
            result.failed.append(str(e))
            result.waiting = len(rows) - i
            break
        with store.transaction() as db:
            mark_sent(db, row.id, when(now))
        result.sent.append(str(row.payload.get("subject", "")))
    return result
