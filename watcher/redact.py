"""Keep secrets out of everything a person or a log file can read.

A Slack webhook URL *is* a credential (anyone holding it can post to the channel), and so is a
bot token. Both travel through slack-sdk, whose log lines and exception messages may quote the
URL. So every string that leaves the notify code (log records, ``NotifyError`` messages, the
outbox's ``last_error``, ``watcher status``) passes through a ``Redactor`` first. It replaces the
secrets it was given with a recognisable stub, and anything that merely *looks* like a Slack
secret too, in case a secret reached us by another path.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

# Anything shaped like a Slack credential, even one we were not told about.
_WEBHOOK = re.compile(r"https?://hooks\.slack(?:-gov)?\.com/[^\s\"'<>|)\]]+", re.IGNORECASE)
_TOKEN = re.compile(r"\b(xox[a-z]|xapp)-[A-Za-z0-9-]{6,}")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")


def redact_url(url: str) -> str:
    """``https://hooks.slack.com/services/T…/***``: which service and team, never the secret.

    The first letter of each ID-like path segment is kept so a user can still tell a webhook
    (``/services/T…``) from a workflow trigger, and the host is kept to tell Slack from a proxy.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "***"
    if not parts.scheme or not parts.netloc:
        return "***"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    segments = [s for s in parts.path.split("/") if s]
    shown = ""
    if segments and segments[0].isalpha() and segments[0].islower():
        shown = f"/{segments[0]}"  # "services", "workflows": a route name, not a secret
        if len(segments) > 1:
            shown += f"/{segments[1][:1]}…"
    return f"{parts.scheme}://{host}{shown}/***"


def redact_token(token: str) -> str:
    """``xoxb-…***``: the token type (bot, user, app) and nothing that grants access."""
    m = re.match(r"(xox[a-z]|xapp)-", token.strip())
    return f"{m.group(1)}-…***" if m else "***"


def redact_secret(secret: str) -> str:
    return redact_url(secret) if "://" in secret else redact_token(secret)


class Redactor:
    """Replaces known secrets, and Slack-shaped ones, in any text.

    Known secrets are matched verbatim and also by their distinctive parts (the last path
    segment of a webhook URL, which is the actual key), because error messages often quote
    only the request path.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._pairs: list[tuple[str, str]] = []
        for secret in secrets:
            if secret and secret.strip():
                self.add(secret.strip())

    def add(self, secret: str) -> None:
        if any(known == secret for known, _ in self._pairs):
            return  # registered on every delivery pass; must not grow in a long-running daemon
        stub = redact_secret(secret)
        pairs = [(secret, stub)]
        if "://" in secret:
            path = urlsplit(secret).path
            if len(path) > 1:
                pairs.append((path, "/***"))
            tail = path.rstrip("/").rsplit("/", 1)[-1]
            if len(tail) >= 8:
                pairs.append((tail, "***"))
        self._pairs.extend(pairs)
        # Longest first, so a URL is replaced whole before its path or tail is.
        self._pairs.sort(key=lambda p: len(p[0]), reverse=True)

    def __call__(self, text: str) -> str:
        for secret, stub in self._pairs:
            if secret in text:
                text = text.replace(secret, stub)
        text = _WEBHOOK.sub(lambda m: redact_url(m.group(0)), text)
        text = _TOKEN.sub(lambda m: f"{m.group(1)}-…***", text)
        return _BEARER.sub(lambda m: f"{m.group(1)}***", text)


redact_text = Redactor()
"""Redacts only Slack-shaped secrets; for text whose configured secrets are not at hand."""


class RedactingFilter(logging.Filter):
    """Rewrites log records so that neither the message, the structured ``fields`` nor a
    traceback quotes a secret.

    Attached to the logger handed to slack-sdk (a logger's filters see every record logged
    through it) and to the daemon's log handler, so no secret reaches the journal whichever
    code path quoted it.
    """

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self.redact = redact

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, list | tuple):
            return [self._clean(v) for v in value]
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.redact(record.getMessage()), None
        if hasattr(record, "fields"):
            record.fields = {k: self._clean(v) for k, v in record.fields.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True
