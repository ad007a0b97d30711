"""``watcher run`` for real: local page servers, a real SMTP server, signals, a real clock.

In-process tests drive ``Daemon`` on this thread's event loop and watch the store; the
end-to-end test starts the ``watcher`` console script as a subprocess. Both wait on
observable state with a deadline, never on a fixed sleep.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import Watcher, fixture_bytes
from tests.server import PageServer, slow
from tests.smtp_sink import SmtpSink
from watcher.daemon import Daemon
from watcher.errors import StoreError
from watcher.runtime import fields
from watcher.scheduler import parse_stored_time

EOIR_2021 = fixture_bytes("eoir/justice_gov_eoir_volume-28_2021-12-19.html")
EOIR_2023 = fixture_bytes("eoir/justice_gov_eoir_volume-28_2023-11-14.html")
PAGE = b"<html><head><title>Reports</title></head><body><main><p>%s</p></main></body></html>"


def config_text(targets: list[tuple[str, str]], *, interval: str = "1h", delay: str = "0s") -> str:
    lines = [
        "settings:",
        "  timeout: 5s",
        "  retries: 0",
        "  jitter: 0s",
        f"  per_host: {{concurrency: 2, delay: {delay}}}",
        "targets:",
    ]
    for target_id, url in targets:
        lines += [f"  - id: {target_id}", f"    url: {url}", f"    interval: {interval}"]
    return "\n".join(lines) + "\n"


def checks(data_dir: Path) -> list[sqlite3.Row]:
    if not (data_dir / "watcher.db").exists():
        return []
    db = sqlite3.connect(f"file:{data_dir / 'watcher.db'}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM checks ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # schema not created yet
        return []
    finally:
        db.close()


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class Running:
    """A ``Daemon`` on the current event loop, with its log captured."""

    def __init__(self, config: Path, **kwargs: Any) -> None:
        self.log = io.StringIO()
        self.daemon = Daemon(
            config, log_format="json", log_stream=self.log, deliverers={}, **kwargs
        )
        self.task: asyncio.Task[int] | None = None

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.daemon.run())
        await until(lambda: self.started)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.daemon.stop()
        assert self.task is not None
        assert await asyncio.wait_for(self.task, 10) == 0

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line]

    @property
    def started(self) -> bool:
        return any(line["msg"] == "started" for line in self.lines)

    def next_run(self, target_id: str) -> datetime:
        job = self.daemon.scheduler.get_job(f"check:{target_id}")
        assert job is not None
        return job.next_run_time  # type: ignore[no-any-return]


@pytest.fixture
def server2() -> Iterator[PageServer]:
    with PageServer("127.0.0.2") as s:
        yield s


def test_per_host_limits_hold_across_jobs_and_hosts_do_not_wait(
    tmp_path: Path, server: PageServer, server2: PageServer
) -> None:
    for i in range(5):
        server.set_handler(f"/slow{i}", slow(0.3, PAGE % b"slow"))
    server2.set("/fast", PAGE % b"fast")
    config = tmp_path / "targets.yaml"
    targets = [(f"slow-{i}", server.url(f"/slow{i}")) for i in range(5)]
    config.write_text(config_text([*targets, ("fast", server2.url("/fast"))]))

    async def scenario() -> None:
        async with Running(config):
            started = time.monotonic()
            await until(lambda: len(checks(tmp_path / "snapshots")) == 6)
            assert time.monotonic() - started >= 0.8  # 5 slow pages of 0.3s, 2 at a time

    asyncio.run(scenario())
    assert server.max_active == 2  # five jobs, one host: never more than two at once
    slow_starts = sorted(r.at for r in server.requests)
    # The other host was served while the first one still had a queue.
    assert server2.requests[0].at < slow_starts[-1]


def test_per_host_delay_spaces_requests_across_jobs(tmp_path: Path, server: PageServer) -> None:
    for i in range(3):
        server.set(f"/p{i}", PAGE % str(i).encode())
    config = tmp_path / "targets.yaml"
    config.write_text(
        config_text([(f"p{i}", server.url(f"/p{i}")) for i in range(3)], delay="0.6s")
    )

    async def scenario() -> None:
        async with Running(config):
            await until(lambda: len(checks(tmp_path / "snapshots")) == 3)

    asyncio.run(scenario())
    # Arrival times at the server, not send times: a new connection's setup can delay one
    # arrival and bring it nearer the next, so allow a margin. Without the delay the
    # requests arrive milliseconds apart.
    starts = sorted(r.at for r in server.requests)
    assert all(b - a >= 0.4 for a, b in itertools.pairwise(starts))


def test_restart_keeps_the_schedule_and_catches_up_overdue_targets(
    tmp_path: Path, server: PageServer
) -> None:
    server.set("/a", PAGE % b"a")
    server.set("/b", PAGE % b"b")
    config = tmp_path / "targets.yaml"
    config.write_text(config_text([("a", server.url("/a")), ("b", server.url("/b"))]))
    data = tmp_path / "snapshots"

    async def first() -> None:
        async with Running(config):
            await until(lambda: len(checks(data)) == 2)

    asyncio.run(first())
    # Pretend "b" was last checked two hours ago: overdue on the 1h interval.
    db = sqlite3.connect(data / "watcher.db")
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="seconds")
    db.execute("UPDATE checks SET checked_at=? WHERE target_id='b'", (two_hours_ago,))
    db.commit()
    db.close()
    last_a = parse_stored_time(next(c for c in checks(data) if c["target_id"] == "a")["checked_at"])
    assert last_a is not None

    async def second() -> None:
        async with Running(config) as run:
            assert abs(run.next_run("a") - (last_a + timedelta(hours=1))) < timedelta(seconds=1)
            await until(lambda: len(checks(data)) == 3)
            assert checks(data)[-1]["target_id"] == "b"
            assert run.next_run("b") > datetime.now(UTC) + timedelta(minutes=59)

    asyncio.run(second())


def test_reload_on_file_change_and_sighup_invalid_config_keeps_the_old_one(
    tmp_path: Path, server: PageServer
) -> None:
    server.set("/a", PAGE % b"a")
    server.set("/b", PAGE % b"b")
    config = tmp_path / "targets.yaml"
    config.write_text(config_text([("a", server.url("/a"))]))
    data = tmp_path / "snapshots"

    def touch(text: str) -> None:
        config.write_text(text)
        st = config.stat()
        os.utime(config, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))

    async def scenario() -> None:
        async with Running(config, config_poll=0.1) as run:
            await until(lambda: len(checks(data)) == 1)
            next_a = run.next_run("a")
            # A valid edit: "b" appears and is checked at once; "a" keeps its place.
            touch(config_text([("a", server.url("/a")), ("b", server.url("/b"))]))
            await until(lambda: any(c["target_id"] == "b" for c in checks(data)))
            assert run.next_run("a") == next_a
            # An invalid edit is reported once, in one line; the running config stays.
            touch(config_text([("a", server.url("/a"))], interval="2 weeks"))
            await until(lambda: any("reload failed" in line["msg"] for line in run.lines))
            failed = [line for line in run.lines if "reload failed" in line["msg"]]
            assert "invalid duration '2 weeks' (use 14d)" in failed[0]["error"]
            assert run.daemon.config.target("b") is not None
            assert run.daemon.scheduler.get_job("check:b") is not None
            # SIGHUP reloads too. Mark the new file as seen so the poller cannot get there first.
            config.write_text(config_text([("b", server.url("/b"))]))
            run.daemon._config_stamp = run.daemon._stamp()
            os.kill(os.getpid(), signal.SIGHUP)
            await until(lambda: run.daemon.scheduler.get_job("check:a") is None)
            reloads = [line for line in run.lines if line["msg"] == "reloaded"]
            assert reloads[-1]["reason"] == "SIGHUP" and reloads[-1]["removed"] == ["a"]
            assert len([line for line in run.lines if "reload failed" in line["msg"]]) == 1

    asyncio.run(scenario())


def test_a_crash_in_one_check_is_logged_recorded_as_error_and_the_rest_go_on(
    tmp_path: Path, server: PageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import watcher.check

    real_extract = watcher.check.extract

    def extract(body: bytes, **kwargs: Any) -> Any:
        if b"WEIRD" in body:
            raise RuntimeError("a page nobody anticipated")
        return real_extract(body, **kwargs)

    monkeypatch.setattr(watcher.check, "extract", extract)
    server.set("/weird", PAGE % b"WEIRD")
    server.set("/fine", PAGE % b"fine")
    config = tmp_path / "targets.yaml"
    targets = [("weird", server.url("/weird")), ("fine", server.url("/fine"))]
    config.write_text(config_text(targets, interval="1s"))
    data = tmp_path / "snapshots"

    def fine_checks() -> int:
        return sum(c["target_id"] == "fine" for c in checks(data))

    async def scenario() -> None:
        async with Running(config) as run:
            await until(lambda: fine_checks() >= 2)
            crashed = [c for c in checks(data) if c["target_id"] == "weird"]
            assert crashed and crashed[0]["outcome"] == "error"
            assert crashed[0]["error_kind"] == "internal"
            assert "RuntimeError: a page nobody anticipated" in crashed[0]["error_message"]
            lines = [x for x in run.lines if x["msg"] == "check" and x["target"] == "weird"]
            assert lines[0]["state"] == "error" and "Traceback" in lines[0]["traceback"]
            ok = [x for x in run.lines if x["msg"] == "check" and x["target"] == "fine"]
            assert {"target", "state", "duration", "events"} <= ok[0].keys()

    asyncio.run(scenario())


def test_watcher_run_end_to_end(tmp_path: Path, server: PageServer, watcher: Watcher) -> None:
    """Checks on schedule, a catch-up digest over real SMTP, SIGTERM, a consistent store."""
    server.set("/eoir", EOIR_2021)
    tz = ZoneInfo("America/New_York")
    # The digest slot passed a minute ago and was never sent, and the watcher was already
    # watching before it (two checks, replayed with --at): the daemon sends it on start.
    at = (datetime.now(tz) - timedelta(minutes=1)).strftime("%H:%M")
    with SmtpSink() as smtp:
        notify = (
            "notify:\n  digest:\n"
            f'    at: "{at}"\n    to: [desk@example.org]\n    from: watcher@example.org\n'
            f"    smtp: {{host: 127.0.0.1, port: {smtp.port}, starttls: false, timeout: 5s}}\n"
        )
        target = f"  - id: eoir\n    name: EOIR volume 28\n    url: {server.url('/eoir')}\n"
        watcher.write(target + "    interval: 1s\n", settings="  jitter: 0s\n", notify=notify)
        now = datetime.now(UTC)
        assert watcher.check(at=(now - timedelta(hours=3)).isoformat())[0] in (0, 1)
        server.set("/eoir", EOIR_2023)
        assert watcher.check(at=(now - timedelta(hours=2)).isoformat())[0] in (0, 1)
        exe = Path(sys.executable).parent / "watcher"
        proc = subprocess.Popen(
            [str(exe), "run", "--config", str(watcher.path), "--log-format", "json"],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 15
            while len(checks(watcher.data_dir)) < 5 or not smtp.messages:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "no checks or digest in time"
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines()]
    check_lines = [x for x in lines if x["msg"] == "check"]
    assert check_lines and all(x["target"] == "eoir" for x in check_lines)
    assert {"state", "duration", "events", "outcome"} <= check_lines[0].keys()
    assert [x["msg"] for x in lines][-2:] == ["stopping", "stopped"]
    msg = smtp.messages[0]
    assert len(smtp.messages) == 1
    assert str(msg["Subject"]).startswith("watcher: ")
    assert msg.get_content_type() == "multipart/alternative"
    assert_consistent(watcher.data_dir)
    db = sqlite3.connect(watcher.data_dir / "watcher.db")
    sent = db.execute("SELECT state, dedupe_key FROM outbox WHERE channel='email'").fetchall()
    assert [s for s, _ in sent] == ["sent"] and sent[0][1].startswith("digest:day:")
    db.close()


def assert_consistent(data_dir: Path) -> None:
    db = sqlite3.connect(data_dir / "watcher.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        orphans = db.execute(
            "SELECT COUNT(*) FROM checks WHERE snapshot_id IS NOT NULL"
            " AND snapshot_id NOT IN (SELECT id FROM snapshots)"
        ).fetchone()[0]
        assert orphans == 0
        for body_sha, page_sha in db.execute("SELECT body_sha, page_sha FROM snapshots"):
            for sha in filter(None, (body_sha, page_sha)):
                assert (data_dir / "blobs" / sha[:2] / f"{sha}.gz").exists()
        events = db.execute(
            "SELECT COUNT(*) FROM events WHERE check_id NOT IN (SELECT id FROM checks)"
        ).fetchone()[0]
        assert events == 0
    finally:
        db.close()


def test_stop_lets_quick_checks_finish_and_abandons_hung_ones_cleanly(
    tmp_path: Path, server: PageServer
) -> None:
    server.set_handler("/slowish", slow(0.4, PAGE % b"slowish"))
    server.set_handler("/hung", slow(30, PAGE % b"hung"))
    config = tmp_path / "targets.yaml"
    targets = [("slowish", server.url("/slowish")), ("hung", server.url("/hung"))]
    config.write_text(config_text(targets).replace("timeout: 5s", "timeout: 60s"))
    data = tmp_path / "snapshots"

    async def scenario() -> float:
        run = Running(config, stop_timeout=1.5)
        async with run:
            await until(lambda: len(server.requests) == 2)
            stopping = time.monotonic()
        took = time.monotonic() - stopping
        assert any(x["msg"] == "abandoned" for x in run.lines)
        return took

    took = asyncio.run(scenario())
    assert took < 5  # bounded: stop_timeout plus a little, not the hung page's 30s
    assert [c["target_id"] for c in checks(data)] == ["slowish"]  # finished, recorded
    assert_consistent(data)


def test_a_second_daemon_on_the_same_data_dir_refuses_to_start(
    tmp_path: Path, server: PageServer
) -> None:
    server.set("/a", PAGE % b"a")
    config = tmp_path / "targets.yaml"
    config.write_text(config_text([("a", server.url("/a"))]))

    async def scenario() -> None:
        async with Running(config):
            with pytest.raises(StoreError, match="another watcher run is already using"):
                await Daemon(config, log_stream=io.StringIO()).run()

    asyncio.run(scenario())


def test_log_lines_never_quote_a_configured_secret(tmp_path: Path) -> None:
    config = tmp_path / "targets.yaml"
    config.write_text(
        "notify:\n  digest:\n    to: [a@example.org]\n    from: w@example.org\n"
        "    smtp: {host: 127.0.0.1, password: pw-9f8e7d}\n"
        "  slack: {webhook_url: 'https://hooks.slack.com/services/T000/B000/abcdefghijkl'}\n"
        "targets: []\n"
    )
    stream = io.StringIO()
    log = Daemon(config, log_format="json", log_stream=stream).log
    try:
        raise RuntimeError(
            "login pw-9f8e7d to https://hooks.slack.com/services/T000/B000/abcdefghijkl"
        )
    except RuntimeError:
        log.exception("deliver", extra=fields(error="535 pw-9f8e7d", tried=["pw-9f8e7d"]))
    text = stream.getvalue()
    assert "pw-9f8e7d" not in text and "abcdefghijkl" not in text
    line = json.loads(text)
    assert line["error"] == "535 ***" and "RuntimeError: login ***" in line["traceback"]
