"""Process plumbing of ``watcher run``: log lines, data-dir locks, notification reports.

A daemon's log is read by journald, grep and log shippers rather than by a person at a
terminal, so every line carries its facts as fields: ``log.info("check", extra=fields(...))``,
printed as ``key=value`` text or as one JSON object per line.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from watcher.config import Config
from watcher.errors import StoreError
from watcher.redact import RedactingFilter
from watcher.slack_client import REDACTOR
from watcher.slack_client import register_secrets as register_slack_secrets

LOGGER = "watcher.run"


def fields(**values: Any) -> dict[str, Any]:
    """``extra=`` for a log call: the structured facts of the line."""
    return {"fields": values}


def _value(v: Any) -> str:
    if isinstance(v, list | tuple):
        v = ",".join(str(x) for x in v) or "-"
    elif isinstance(v, float):
        v = f"{v:.2f}"
    elif v is None:
        v = "-"
    text = str(v)
    return (
        json.dumps(text, ensure_ascii=False) if not text or any(c in text for c in ' "=') else text
    )


def _traceback(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    # exc_text first: the redacting filter leaves its cleaned traceback there.
    if record.exc_text:
        return record.exc_text
    return formatter.formatException(record.exc_info) if record.exc_info else None


class TextFormatter(logging.Formatter):
    """``2026-11-24T13:00:01Z info check target=ice state=ok duration=0.42 events=added``."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts = [ts, record.levelname.lower(), record.getMessage()]
        for k, v in getattr(record, "fields", {}).items():
            parts.append(f"{k}={_value(v)}")
        line = " ".join(parts)
        trace = _traceback(self, record)
        return f"{line}\n{trace}" if trace else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a traceback is a field, so it stays on that line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
            "logger": record.name,
        }
        out.update(getattr(record, "fields", {}))
        trace = _traceback(self, record)
        if trace:
            out["traceback"] = trace
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(
    fmt: str, stream: Any = None, redact: Callable[[str], str] | None = None
) -> logging.Logger:
    """Send all of watcher's log lines, and APScheduler's warnings, to stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    if redact is not None:
        handler.addFilter(RedactingFilter(redact))
    for name, level in (("watcher", logging.INFO), ("apscheduler", logging.WARNING)):
        # apscheduler's INFO lines ("Running job ...") are noise next to ours.
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    return logging.getLogger(LOGGER)


@contextmanager
def run_lock(data_dir: Path) -> Iterator[None]:
    """One ``watcher run`` per data dir: a second one would check every target twice."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise StoreError(f"cannot use data dir {data_dir}: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreError(f"another watcher run is already using {data_dir}") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the flock


class DataDirGate:
    """Holds the data dir's batch lock (the one ``watcher check`` takes) while any check of
    this daemon is in flight, and releases it in between, so a manual ``watcher check`` gets
    its turn instead of racing the daemon over the same previous capture.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._users = 0
        self._mutex = asyncio.Lock()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        async with self._mutex:
            if self._users == 0:
                self._fd = await self._acquire()
            self._users += 1
        try:
            yield
        finally:
            self._users -= 1
            if self._users == 0 and self._fd is not None:
                os.close(self._fd)
                self._fd = None

    async def _acquire(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    await asyncio.sleep(0.05)  # `watcher check` is running; wait politely
        except BaseException:
            os.close(fd)
            raise


# --- notification channels ----------------------------------------------------------------


def register_secrets(config: Config) -> None:
    """Teach the shared redactor this config's secrets, so no log line can quote them."""
    if config.notify.slack is not None:
        register_slack_secrets(config.notify.slack)
    digest = config.notify.digest
    if digest is not None and digest.smtp.password is not None:
        REDACTOR.add(digest.smtp.password.get_secret_value())


def delivery_outcome(result: Any) -> tuple[list[str], int, str | None]:
    """(subjects, count sent, error) from a channel's report; each channel reports its way."""
    sent, failed = getattr(result, "sent", 0), getattr(result, "failed", None)
    subjects = [str(s) for s in sent] if isinstance(sent, list) else []
    count = len(subjects) if isinstance(sent, list) else int(sent or 0)
    error = getattr(result, "error", None)
    if error is None and isinstance(failed, list) and failed:
        error = str(failed[0])
    return subjects, count, error
