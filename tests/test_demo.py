"""`watcher demo` tells the story it promises: the right alerts, in the right order, offline."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from pathlib import Path

import pytest
from rich.console import Console

from watcher.demo import run_demo


def test_demo_fires_the_scripted_alerts_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    out = io.StringIO()
    threads_before = threading.active_count()
    fired = run_demo(Console(file=out, width=120), tmp_path / "demo")
    assert [(f.at.date().isoformat(), f.kind, f.target) for f in fired] == [
        ("2026-10-13", "disappeared", "ICE FOIA Library"),
        ("2026-10-19", "shrank", "ICE detention statistics"),
        ("2026-10-26", "stopped", "ICE Declined Detainer Outcome Report"),
        ("2026-11-01", "disappeared", "ICE detention oversight report"),
        ("2026-11-04", "recovered", "ICE detention oversight report"),
        # Still missing a month later: Slack is reminded once per `repeat` (30d in the demo).
        ("2026-11-13", "disappeared (reminder)", "ICE FOIA Library"),
    ]
    foia = fired[0].summary
    assert foia.startswith("3 publications no longer listed")
    # The FOIA target's shrink threshold is 5 items, so the disappearance alone reports the
    # drop: its Slack notice carries the counts before → after.
    db = sqlite3.connect(tmp_path / "demo" / "snapshots" / "watcher.db")
    payload = db.execute(
        "SELECT payload FROM outbox WHERE kind='disappeared' ORDER BY id LIMIT 1"
    ).fetchone()[0]
    assert json.loads(payload)["counts"] == {"items": [25, 22]}
    text = out.getvalue()
    assert "What fired, and when" in text
    digest = tmp_path / "demo" / "digest.html"
    assert f"Digest email written to {digest}" in text.replace("\n", "")
    assert "<html" in digest.read_text().lower()
    # The firewall block lasted two checks on a target that confirms after three: silence.
    assert not any(f.target == "ICE ERO annual report" for f in fired)
    # Nothing left running: the site, the webhook sink and the parse pool are gone.
    assert threading.active_count() <= threads_before
