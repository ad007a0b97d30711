"""The digest as a journalist receives it: built from the store, mailed over real SMTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Watcher
from tests.smtp_sink import SmtpSink, free_port
from watcher.config import Config, Target
from watcher.digest import build_digest, window_key
from watcher.mailer import deliver_email, queue_digest, redact, render_digest
from watcher.store import Store, when

END = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # Tue 24 Nov, 08:00 in New York
START = END - timedelta(days=1)
DURING = START + timedelta(hours=3)
BEFORE = START - timedelta(days=5)
HOSTILE = "<script>alert(1)</script> FY26 stats"


def make_config(port: int = 25, **digest: Any) -> Config:
    smtp: dict[str, Any] = {"host": "127.0.0.1", "port": port, "starttls": False, "timeout": "5s"}
    smtp.update(digest.pop("smtp", {}))
    return Config.model_validate(
        {
            "settings": {"timezone": "America/New_York"},
            "notify": {
                "digest": {
                    "to": ["desk@example.org", "editor@example.org"],
                    "from": "watcher@example.org",
                    "smtp": smtp,
                    **digest,
                }
            },
            "targets": [
                {
                    "id": "ice-stats",
                    "name": "ICE detention statistics",
                    "url": "https://www.ice.gov/detain/detention-management",
                    "expect": {"every": "14d", "grace": "7d"},
                },
                {"id": "eoir", "name": "EOIR volume 28", "url": "https://www.justice.gov/eoir/28"},
                {
                    "id": "foia",
                    "name": "ICE FOIA library",
                    "url": "https://www.ice.gov/foia/library",
                },
            ],
        }
    )


class Seed:
    """Writes rows the way check/alerts do, without fetching anything."""

    def __init__(self, store: Store) -> None:
        self.db = store.db

    def snapshot(self, target: str, at: datetime) -> None:
        self.db.execute(
            "INSERT INTO snapshots (target_id, taken_at, page_sha, content_type, size,"
            " final_url, http_status) VALUES (?,?,?,?,?,?,?)",
            (target, when(at), "0" * 64, "text/html", 1, "https://x.gov/", 200),
        )

    def check(self, target: str, at: datetime, outcome: str = "unchanged") -> None:
        self.db.execute(
            "INSERT INTO checks (target_id, checked_at, outcome) VALUES (?,?,?)",
            (target, when(at), outcome),
        )

    def item(self, target: str, title: str, url: str, day: str | None, seen: datetime) -> None:
        self.db.execute(
            "INSERT INTO items (target_id, key, title, url, type, date, first_seen, last_seen)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (target, url, title, url, "xlsx", day, when(seen), when(seen)),
        )

    def event(self, target: str, kind: str, summary: str, url: str, at: datetime) -> None:
        severity = "info" if kind in ("added", "changed", "recovered") else "alert"
        self.db.execute(
            "INSERT INTO events (target_id, at, kind, severity, subject, title, url, summary)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (target, when(at), kind, severity, "page", "t", url, summary),
        )

    def alert(self, target: str, kind: str, summary: str, at: datetime) -> None:
        self.db.execute(
            "INSERT INTO alerts (target_id, kind, subject, state, opened_at, fired_at, summary)"
            " VALUES (?,?,?,?,?,?,?)",
            (target, kind, "page", "firing", when(at), when(at), summary),
        )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "data") as s:
        yield s


def busy_day(store: Store) -> None:
    seed = Seed(store)
    for target in ("ice-stats", "eoir", "foia"):
        seed.snapshot(target, BEFORE)
        seed.check(target, BEFORE, "first")
        seed.check(target, DURING)
    seed.check("eoir", DURING + timedelta(hours=1), "error")
    # Baseline from the first capture: not news. A new issue inside the window: news.
    seed.item("ice-stats", "FY26 old", "https://www.ice.gov/old.xlsx", "2026-11-06", BEFORE)
    seed.item("ice-stats", HOSTILE, "https://www.ice.gov/FY26_1120.xlsx", "2026-11-20", DURING)
    seed.item("foia", "A <b>bold</b> letter", "javascript:alert(2)", None, DURING)
    seed.event("ice-stats", "added", "1 new publication", "https://www.ice.gov/x", DURING)
    seed.event(
        "ice-stats",
        "disappeared",
        "1 publication no longer listed: Old <b>report</b>",
        "https://www.ice.gov/old-report.pdf",
        DURING,
    )
    for hour in (1, 2):
        seed.event(
            "eoir",
            "error",
            "Could not read the page: timeout",
            "https://www.justice.gov/eoir/28",
            DURING + timedelta(hours=hour),
        )
    seed.alert("eoir", "error", "Could not read the page for 2 checks", DURING)


def test_digest_email_as_received(store: Store) -> None:
    busy_day(store)
    with SmtpSink() as smtp:
        config = make_config(smtp.port)
        key = "digest:day:2026-11-24"
        queued = queue_digest(store, config, start=START, end=END, now=END, key=key, scheduled=True)
        assert queued.status == "queued"
        delivery = deliver_email(store, config, now=END)
        assert delivery.sent and not delivery.failed
        assert len(smtp.messages) == 1
        msg = smtp.messages[0]
        assert smtp.envelopes[0].rcpt_tos == ["desk@example.org", "editor@example.org"]
    assert msg["Subject"] == "watcher: 1 alert, 2 new publications — Tue 24 Nov"
    assert msg["From"] == "watcher@example.org"
    assert msg["To"] == "desk@example.org, editor@example.org"
    assert msg["Message-ID"] and msg["Date"]
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    text = _part(msg, "plain")
    html = _part(msg, "html")
    # Page-derived text is escaped in HTML and never becomes markup or a javascript: link.
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "javascript:" not in html
    assert "Old &lt;b&gt;report&lt;/b&gt;" in html
    assert 'href="https://www.ice.gov/FY26_1120.xlsx"' in html
    assert "https://web.archive.org/web/*/https://www.ice.gov/old-report.pdf" in html
    assert "<style" not in html  # inline CSS only
    # The plain text says the same things.
    assert HOSTILE in text and "FY26 old" not in text.split("WHAT HAPPENED")[1]
    assert "1 alert firing, 2 new publications." in text
    assert "Errors (seen on 2 checks):" in text
    assert "firing: error: Could not read the page for 2 checks" in text
    assert "4 checks (3 ok, 1 failed)" in text
    assert "Mon 23 Nov 2026 08:00 EST to Tue 24 Nov 2026 08:00 EST" in text
    # The alerting target comes first.
    assert text.index("EOIR volume 28 [ALERT]") < text.index("ICE detention statistics")


def _part(msg: EmailMessage, subtype: str) -> str:
    body = msg.get_body(preferencelist=(subtype,))
    assert body is not None
    content = body.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def test_quiet_targets_take_one_line_and_due_dates_come_from_due_of(store: Store) -> None:
    busy_day(store)
    due = {"foia": END + timedelta(days=2), "eoir": END + timedelta(days=9)}

    def due_of(target: Target) -> datetime | None:
        return due.get(target.id)

    config = make_config()
    digest = build_digest(store, config, start=START, end=END, due_of=due_of)
    foia = next(t for t in digest.targets if t.id == "foia")
    assert foia.next_due == due["foia"]
    assert [t.id for t in digest.due_soon] == ["foia"]
    text = render_digest(digest).text
    assert "DUE WITHIN 3 DAYS\n  Thu 26 Nov: ICE FOIA library\n" in text


def test_default_due_date_is_newest_issue_plus_expected_cadence(store: Store) -> None:
    busy_day(store)
    digest = build_digest(store, make_config(), start=START, end=END)
    ice = next(t for t in digest.targets if t.id == "ice-stats")
    assert ice.newest is not None and ice.newest.title == HOSTILE
    assert ice.newest_age == 4
    assert ice.next_due is not None
    assert ice.next_due.isoformat() == "2026-12-04T00:00:00-05:00"  # 2026-11-20 + 14d


def test_all_quiet_day_sends_a_short_digest_unless_skip_empty(store: Store) -> None:
    seed = Seed(store)
    for target in ("ice-stats", "eoir", "foia"):
        seed.snapshot(target, BEFORE)
        seed.check(target, DURING)
    rendered = render_digest(build_digest(store, make_config(), start=START, end=END))
    assert rendered.subject == "watcher: all quiet — Tue 24 Nov"
    assert "All quiet: no alerts firing, no new publications." in rendered.text
    assert "✓ EOIR volume 28: no dated publication\n" in rendered.text  # one line each
    assert "WHAT HAPPENED" not in rendered.text
    skipped = queue_digest(
        store, make_config(skip_empty=True), start=START, end=END, now=END, key="k", scheduled=True
    )
    assert skipped.status == "skipped"
    assert store.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0


def test_a_window_without_checks_is_not_quiet(store: Store) -> None:
    digest = build_digest(store, make_config(skip_empty=True), start=START, end=END)
    assert not digest.empty
    assert "WARNING: no checks ran in this window" in render_digest(digest).text


def test_smtp_down_queues_the_digest_and_a_later_run_sends_it_once(store: Store) -> None:
    busy_day(store)
    port = free_port()
    config = make_config(port)
    key = window_key(START, END)
    queue_digest(store, config, start=START, end=END, now=END, key=key, scheduled=False)
    down = deliver_email(store, config, now=END)
    assert down.failed and not down.sent and down.waiting == 1
    assert "127.0.0.1" in down.failed[0]
    row = store.db.execute("SELECT state, attempts, next_attempt_at FROM outbox").fetchone()
    assert row["state"] == "queued" and row["attempts"] == 1
    # Queueing the same window again is a no-op; the retry waits for its time.
    again = queue_digest(store, config, start=START, end=END, now=END, key=key, scheduled=False)
    assert again.status == "duplicate"
    with SmtpSink() as smtp:
        config = make_config(smtp.port)
        assert deliver_email(store, config, now=END + timedelta(seconds=10)).sent == []
        later = END + timedelta(minutes=5)
        assert len(deliver_email(store, config, now=later).sent) == 1
        assert deliver_email(store, config, now=later + timedelta(hours=1)).sent == []
        assert len(smtp.messages) == 1
    payload = json.loads(store.db.execute("SELECT payload FROM outbox").fetchone()[0])
    assert payload["window"] == {"start": when(START), "end": when(END)}


def test_the_smtp_password_never_appears_in_errors(store: Store) -> None:
    busy_day(store)
    secret = "hunter2-very-secret"
    with SmtpSink(password="the-right-one") as smtp:
        auth = {"username": "watcher", "password": secret}
        config = make_config(smtp.port, smtp=auth)
        queue_digest(store, config, start=START, end=END, now=END, key="k", scheduled=False)
        result = deliver_email(store, config, now=END)
        assert result.failed and not smtp.messages
        assert "535" in result.failed[0]
        stored = store.db.execute("SELECT last_error FROM outbox").fetchone()[0]
        for text in (*result.failed, stored):
            assert secret not in text
        good = make_config(smtp.port, smtp={"username": "watcher", "password": "the-right-one"})
        assert deliver_email(store, good, now=END + timedelta(hours=1)).sent
        assert len(smtp.messages) == 1


def cli_config(watcher: Watcher, port: int, password: str = "") -> None:
    auth = f", username: watcher, password: {password}" if password else ""
    notify = (
        "notify:\n  digest:\n    to: [desk@example.org]\n    from: watcher@example.org\n"
        f"    smtp: {{host: 127.0.0.1, port: {port}, starttls: false, timeout: 5s{auth}}}\n"
    )
    targets = "".join(
        f"  - id: {t}\n    url: https://www.ice.gov/{t}\n" for t in ("ice-stats", "eoir", "foia")
    )
    watcher.write(targets, settings="  timezone: America/New_York\n", notify=notify)
    with Store(watcher.data_dir) as store:
        busy_day(store)


def test_digest_command_prints_previews_and_sends_once(watcher: Watcher, tmp_path: Path) -> None:
    at = ["--at", END.isoformat()]
    with SmtpSink() as smtp:
        cli_config(watcher, smtp.port)
        shown = watcher.run("digest", *at)
        assert shown.exit_code == 0
        assert shown.stdout.startswith("Subject: watcher: 1 alert, 2 new publications — Tue 24")
        out = tmp_path / "digest.html"
        preview = watcher.run("digest", "--preview", str(out), *at)
        assert preview.exit_code == 0 and "&lt;script&gt;" in out.read_text()
        assert not smtp.messages
        sent = watcher.run("digest", "--send", *at)
        assert sent.exit_code == 0, sent.stderr
        assert "sent: watcher: 1 alert" in sent.stderr
        again = watcher.run("digest", "--send", *at)  # the same window: never twice
        assert again.exit_code == 0 and len(smtp.messages) == 1


def test_digest_command_queues_when_smtp_is_down_and_hides_the_password(
    watcher: Watcher,
) -> None:
    cli_config(watcher, free_port(), password="s3cret-pw")
    result = watcher.run("digest", "--send", "--at", END.isoformat())
    assert result.exit_code == 1
    assert "not sent, queued for retry: email: 127.0.0.1" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout
    bad = watcher.run("digest", "--since", "2 weeks")
    assert bad.exit_code == 2 and "invalid duration '2 weeks' (use 14d)" in bad.stderr


def test_redact_removes_the_password_in_every_form_it_travels_in() -> None:
    wire = base64.b64encode(b"\0watcher\0pw-123").decode()
    text = f"535 rejected pw-123 {base64.b64encode(b'pw-123').decode()} {wire}"
    assert redact(text, "pw-123", "watcher") == "535 rejected *** *** ***"
