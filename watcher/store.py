"""The evidence locker: every capture, kept so it can be shown later.

Layout of a data dir::

    watcher.db            SQLite (WAL): checks, snapshots, items, events, alerts, outbox
    blobs/ab/abcdef….gz   raw bodies and extracted pages, content-addressed by sha256
    .lock                 held while a process writes checks

Writes are ordered so that a crash at any point leaves a consistent store: blobs are written
to a temp file, fsynced and renamed into place *before* the transaction that refers to them
commits, so no row ever points at a missing blob. A crash in between leaves at worst an
unreferenced blob, which costs disk but never breaks a read.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from watcher.errors import StoreError, StoreLockedError
from watcher.models import Item, Page
from watcher.schema import MIGRATIONS


@dataclass(frozen=True)
class SnapshotRow:
    id: int
    target_id: str
    taken_at: str
    body_sha: str | None
    page_sha: str
    content_type: str
    size: int
    final_url: str
    http_status: int
    # Why this capture is not the page itself ("says it is gone", "redirected home"), or None.
    verdict: str | None = None
    real_change: int = 0  # new publications or a text change (not moves, not returns)


@dataclass(frozen=True)
class AlertRow:
    """One alert: ``pending`` until confirmed, ``firing``, then ``resolved``."""

    id: int
    target_id: str
    kind: str
    subject: str
    state: str
    streak: int
    opened_at: str
    fired_at: str | None
    resolved_at: str | None
    last_seen_at: str | None
    last_notified_at: str | None
    summary: str
    data: dict[str, Any]


def alert_row(row: sqlite3.Row) -> AlertRow:
    return AlertRow(
        id=row["id"],
        target_id=row["target_id"],
        kind=row["kind"],
        subject=row["subject"],
        state=row["state"],
        streak=row["streak"],
        opened_at=row["opened_at"],
        fired_at=row["fired_at"],
        resolved_at=row["resolved_at"],
        last_seen_at=row["last_seen_at"],
        last_notified_at=row["last_notified_at"],
        summary=row["summary"],
        data=json.loads(row["data"]) if row["data"] else {},
    )


@dataclass(frozen=True)
class CheckRow:
    id: int
    target_id: str
    checked_at: str
    outcome: str  # new | unchanged | not_modified | error
    http_status: int | None
    error_kind: str | None
    error_message: str | None
    final_url: str | None
    snapshot_id: int | None
    etag: str | None
    last_modified: str | None


class Store:
    """One data dir. Use as a context manager; ``exclusive()`` guards a batch of checks."""

    # The daemon holds the same file while its checks run (``runtime.DataDirGate``), so a
    # manual ``watcher check`` waits for them: both must name it through this constant.
    LOCK_FILE = ".lock"

    def __init__(self, data_dir: Path | str, *, lock_timeout: float = 60.0) -> None:
        self.data_dir = Path(data_dir)
        self.lock_timeout = lock_timeout
        self.blob_dir = self.data_dir / "blobs"
        try:
            self.blob_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create data dir {self.data_dir}: {e.strerror}") from None
        self.db = self._connect()
        self._migrate()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    # --- connection, schema, locking ---------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(
                self.data_dir / "watcher.db",
                timeout=self.lock_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,
            )
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across application crashes in WAL mode; only a power cut can
            # lose the last transactions, and never corrupts the database.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open {self.data_dir / 'watcher.db'}: {e}") from None
        return db

    def _migrate(self) -> None:
        with self.transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"{self.data_dir} was written by a newer watcher "
                    f"(schema {version}, this one knows {len(MIGRATIONS)})"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";\n"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(number),)
                )

    @property
    def schema_version(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: take the write lock up front so a busy store waits, not fails."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the data dir for one batch of checks.

        SQLite alone keeps the file consistent; this lock keeps two processes from checking
        the same target against the same previous capture and reporting one change twice.
        """
        path = self.data_dir / self.LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.lock_timeout
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreLockedError(self.data_dir, self.lock_timeout) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    # --- blobs ---------------------------------------------------------------------------------

    def blob_path(self, sha: str) -> Path:
        return self.blob_dir / sha[:2] / f"{sha}.gz"

    def put_blob(self, data: bytes, sha: str | None = None) -> str:
        """Store ``data`` once under its sha256; an existing blob is never rewritten."""
        sha = sha or hashlib.sha256(data).hexdigest()
        path = self.blob_path(sha)
        if path.exists():
            return sha
        path.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(gzip.compress(data, compresslevel=6, mtime=0))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return sha

    def get_blob(self, sha: str) -> bytes:
        try:
            return gzip.decompress(self.blob_path(sha).read_bytes())
        except FileNotFoundError:
            raise StoreError(f"blob {sha} is missing from {self.blob_dir}") from None

    def put_page(self, page: Page) -> str:
        data = json.dumps(page.to_dict(), ensure_ascii=False, sort_keys=True).encode()
        return self.put_blob(data)

    def get_page(self, page_sha: str) -> Page:
        return Page.from_dict(json.loads(self.get_blob(page_sha)))

    # --- reads -------------------------------------------------------------------------------

    def latest_snapshot(self, target_id: str) -> SnapshotRow | None:
        row = self.db.execute(
            "SELECT * FROM snapshots WHERE target_id=? ORDER BY id DESC LIMIT 1", (target_id,)
        ).fetchone()
        return SnapshotRow(**dict(row)) if row else None

    def latest_good_snapshot(self, target_id: str) -> SnapshotRow | None:
        """The newest capture that was the page itself (not a soft 404 or a redirect home)."""
        row = self.db.execute(
            "SELECT * FROM snapshots WHERE target_id=? AND verdict IS NULL ORDER BY id DESC"
            " LIMIT 1",
            (target_id,),
        ).fetchone()
        return SnapshotRow(**dict(row)) if row else None

    def snapshot(self, snapshot_id: int) -> SnapshotRow | None:
        row = self.db.execute("SELECT * FROM snapshots WHERE id=?", (snapshot_id,)).fetchone()
        return SnapshotRow(**dict(row)) if row else None

    def snapshots(self, target_id: str) -> list[SnapshotRow]:
        rows = self.db.execute(
            "SELECT * FROM snapshots WHERE target_id=? ORDER BY id", (target_id,)
        ).fetchall()
        return [SnapshotRow(**dict(r)) for r in rows]

    def latest_check(self, target_id: str) -> CheckRow | None:
        row = self.db.execute(
            f"SELECT {_CHECK_COLUMNS} FROM checks WHERE target_id=? ORDER BY id DESC LIMIT 1",
            (target_id,),
        ).fetchone()
        return CheckRow(**dict(row)) if row else None

    def recent_checks(self, target_id: str, limit: int) -> list[CheckRow]:
        rows = self.db.execute(
            f"SELECT {_CHECK_COLUMNS} FROM checks WHERE target_id=? ORDER BY id DESC LIMIT ?",
            (target_id, limit),
        ).fetchall()
        return [CheckRow(**dict(r)) for r in rows]

    def last_good_validators(self, target_id: str) -> tuple[str | None, str | None]:
        """The ETag and Last-Modified the server sent with the capture we hold now."""
        row = self.db.execute(
            "SELECT etag, last_modified FROM checks WHERE target_id=? AND outcome!='error' "
            "ORDER BY id DESC LIMIT 1",
            (target_id,),
        ).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def items(self, target_id: str, *, current: bool = True) -> list[dict[str, Any]]:
        sql = "SELECT * FROM items WHERE target_id=?"
        if current:
            sql += " AND gone_since IS NULL"
        return [dict(r) for r in self.db.execute(sql + " ORDER BY first_seen, key", (target_id,))]

    def count_items(self, target_id: str) -> int:
        row = self.db.execute(
            "SELECT COUNT(*) FROM items WHERE target_id=? AND gone_since IS NULL", (target_id,)
        ).fetchone()
        return int(row[0])

    def newest_item(self, target_id: str) -> Item | None:
        """The listed item with the latest date (ties: first seen later, then by key)."""
        row = self.db.execute(
            "SELECT key, title, url, type, date FROM items WHERE target_id=?"
            " AND gone_since IS NULL AND date IS NOT NULL"
            " ORDER BY date DESC, first_seen DESC, key LIMIT 1",
            (target_id,),
        ).fetchone()
        return Item.from_dict(dict(row)) if row else None

    def events(self, target_id: str | None = None, since: str | None = None) -> list[sqlite3.Row]:
        sql, args = "SELECT * FROM events WHERE 1=1", list[str]()
        if target_id:
            sql, args = sql + " AND target_id=?", [*args, target_id]
        if since:
            sql, args = sql + " AND at>=?", [*args, since]
        return self.db.execute(sql + " ORDER BY id", args).fetchall()

    def alerts(self, target_id: str | None = None, *, open_only: bool = False) -> list[AlertRow]:
        """Alerts oldest first; ``open_only`` keeps pending and firing ones."""
        sql, args = "SELECT * FROM alerts WHERE 1=1", list[str]()
        if target_id:
            sql, args = sql + " AND target_id=?", [*args, target_id]
        if open_only:
            sql += " AND state!='resolved'"
        return [alert_row(r) for r in self.db.execute(sql + " ORDER BY id", args)]

    def muted_until(self, target_id: str) -> str | None:
        row = self.db.execute("SELECT muted_until FROM targets WHERE id=?", (target_id,)).fetchone()
        return row[0] if row and row[0] else None


_CHECK_COLUMNS = (
    "id, target_id, checked_at, outcome, http_status, error_kind, error_message, final_url, "
    "snapshot_id, etag, last_modified"
)


def when(dt: datetime) -> str:
    """Timestamps are stored as UTC ISO-8601 text, which sorts correctly as text."""
    return dt.astimezone(UTC).isoformat(timespec="seconds")
