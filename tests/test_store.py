"""The store keeps evidence safely: deduplicated, atomic, versioned, and single-writer."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from watcher.errors import StoreError, StoreLockedError
from watcher.models import Item, Page
from watcher.schema import MIGRATIONS
from watcher.store import Store


def test_blobs_are_content_addressed_and_written_once(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        a = store.put_blob(b"<html>same</html>")
        mtime = store.blob_path(a).stat().st_mtime_ns
        b = store.put_blob(b"<html>same</html>")
        assert a == b
        assert store.blob_path(a).stat().st_mtime_ns == mtime
        assert store.get_blob(a) == b"<html>same</html>"
        assert len(list(store.blob_dir.rglob("*.gz"))) == 1


def test_page_round_trips_through_a_blob(tmp_path: Path) -> None:
    page = Page(
        url="https://www.ice.gov/x",
        title="T",
        lines=["a", "b"],
        items=[Item("https://www.ice.gov/a.pdf", "A", "https://www.ice.gov/a.pdf", "pdf")],
    )
    with Store(tmp_path) as store:
        assert store.get_page(store.put_page(page)) == page


def test_schema_is_versioned_and_reopening_is_a_no_op(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        assert store.schema_version == len(MIGRATIONS)
    with Store(tmp_path) as store:
        assert store.schema_version == len(MIGRATIONS)
        mode = store.db.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / "watcher.db")
    db.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="written by a newer watcher"):
        Store(tmp_path)


def test_missing_blob_is_a_store_error(tmp_path: Path) -> None:
    with Store(tmp_path) as store, pytest.raises(StoreError, match="is missing"):
        store.get_blob("ab" * 32)


def test_second_process_waits_then_fails_with_a_clear_message(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from watcher.store import Store
                with Store({str(tmp_path)!r}) as s, s.exclusive():
                    print("held", flush=True)
                    sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with Store(tmp_path, lock_timeout=0.3) as store:
            with pytest.raises(StoreLockedError) as info, store.exclusive():
                pass
            assert str(info.value) == (
                f"data dir {tmp_path} is in use by another watcher process (waited 0s); "
                "try again when it has finished"
            )
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    with Store(tmp_path, lock_timeout=0.3) as store, store.exclusive():
        pass  # released when the holder exits


WRITER = """
import sys
from watcher.store import Store
with Store(sys.argv[1]) as s:
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        body = (f"<html>{i}</html>" * 2000).encode()
        sha = s.put_blob(body)
        with s.transaction() as db:
            db.execute(
                "INSERT INTO snapshots (target_id, taken_at, body_sha, page_sha, content_type,"
                " size, final_url, http_status)"
                " VALUES ('t', '2026', ?, ?, 'text/html', ?, 'u', 200)",
                (sha, sha, len(body)),
            )
        print(i, flush=True)
"""


def test_killing_a_writer_at_any_point_leaves_a_consistent_store(tmp_path: Path) -> None:
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        # Let it commit a few snapshots, then kill it mid-stride (it never pauses).
        for _ in range(3 * (round_ + 1)):
            proc.stdout.readline()
        proc.stdout.close()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        with Store(tmp_path) as store:
            assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            rows = store.db.execute("SELECT body_sha FROM snapshots").fetchall()
            assert len(rows) >= 3 * (round_ + 1)
            for row in rows:
                assert store.get_blob(row[0]).startswith(b"<html>")
            assert not [p for p in store.blob_dir.rglob("*.gz") if p.stat().st_size == 0]
