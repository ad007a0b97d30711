"""Process plumbing of ``watcher run``: structured log lines and data-dir locks.

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
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from watcher.errors import StoreError

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


class TextFormatter(logging.Formatter):
    """``2026-11-24T13:00:01Z info check target=ice state=ok duration=0.42 events=added``."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts = [ts, record.levelname.lower(), record.getMessage()]
        for k, v in getattr(record, "fields", {}).items():
            parts.append(f"{k}={_value(v)}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


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
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(fmt: str, stream: Any = None) -> logging.Logger:
    """Send watcher's and APScheduler's warnings to stderr in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    log = logging.getLogger(LOGGER)
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    aps = logging.getLogger("apscheduler")
    aps.handlers[:] = [handler]
    aps.setLevel(logging.WARNING)  # its INFO lines ("Running job ...") are noise here
    aps.propagate = False
    return log


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
