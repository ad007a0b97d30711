"""``watcher mute``, ``unmute``, ``status``, ``history`` and ``diff`` on a real data dir."""

from __future__ import annotations

import json

from tests.conftest import Watcher
from tests.replay import FOIA_PAGE, Replay, foia_entries, foia_page
from tests.server import PageServer

SLACK = "notify:\n  slack:\n    webhook_url: https://hooks.slack.com/services/T000/B000/XXXX\n"
STATS = "    expect: {every: 14d, grace: 7d}\n"


def test_mute_silences_notifications_and_status_shows_it(
    server: PageServer, watcher: Watcher
) -> None:
    r = Replay(watcher, server)
    r.setup("/foia/library", STATS, notify=SLACK)
    server.set("/foia/library", FOIA_PAGE)
    r.check("2025-03-15T12:00:00+00:00")
    muted = watcher.run("mute", "page", "--for", "7d", "--at", "2025-03-15T13:00:00Z")
    assert muted.exit_code == 0
    assert muted.output == "page: muted until 2025-03-22 13:00 UTC\n"
    server.set("/foia/library", b"<title>Not Found</title>", status=404)
    r.check("2025-03-16T00:00:00+00:00")
    fired = r.check("2025-03-16T12:00:00+00:00")
    assert fired.code == 1 and fired.target["muted_until"] == "2025-03-22T13:00:00+00:00"
    assert r.outbox() == []  # recorded, not notified
    result = watcher.run("status", "--json", "--at", "2025-03-17T00:00:00Z")
    (t,) = json.loads(result.output)["targets"]
    assert t["state"] == "alert" and t["muted_until"] == "2025-03-22T13:00:00+00:00"
    assert [(a["kind"], a["state"]) for a in t["alerts"]] == [("disappeared", "firing")]
    assert t["last_check"] == {"at": "2025-03-16T12:00:00+00:00", "outcome": "error"}
    assert t["newest"]["date"] == "2025-03-14" and t["items"] == 25
    assert t["due"]["due_at"].startswith("2025-04-04")
    table = watcher.run("status", "--at", "2025-03-17T00:00:00Z")
    assert table.exit_code == 0 and "disappeared page (firing" in table.output
    assert "muted until 2025-03-22" in table.output
    unmuted = watcher.run("unmute", "page")
    assert unmuted.output == "page: unmuted\n"
    r.check("2025-03-17T00:00:00+00:00")
    assert [n["kind"] for n in r.outbox()] == ["disappeared"]  # the held-back message


def test_mute_and_history_refuse_unknown_targets_and_bad_durations(watcher: Watcher) -> None:
    watcher.write("  - id: page\n    url: https://www.ice.gov/foia/library\n")
    assert watcher.run("mute", "nope", "--for", "7d").exit_code == 2
    bad = watcher.run("mute", "page", "--for", "2 weeks")
    assert bad.exit_code == 2 and "14d" in bad.output
    assert watcher.run("history", "nope").exit_code == 2


def test_history_and_diff_show_the_evidence(server: PageServer, watcher: Watcher) -> None:
    entries = foia_entries()
    r = Replay(watcher, server)
    r.setup("/foia/library")
    server.set("/foia/library", foia_page(entries))
    r.check("2025-03-15T12:00:00+00:00")
    server.set("/foia/library", foia_page(entries[:-1]))
    r.check("2025-03-16T00:00:00+00:00")
    r.check("2025-03-16T12:00:00+00:00")
    history = json.loads(watcher.run("history", "page", "--json").output)
    assert [e["what"] for e in history][:3] == ["check", "snapshot", "check"]
    texts = [e["text"] for e in history]
    assert any(t.startswith("disappeared: 1 publication no longer listed") for t in texts)
    assert texts[-1].endswith("disappeared item fired")
    assert len(json.loads(watcher.run("history", "page", "--json", "--limit", "2").output)) == 2
    assert "disappeared item fired" in watcher.run("history", "page").output
    diff = json.loads(watcher.run("diff", "page", "--json").output)
    assert (diff["before"]["snapshot"], diff["after"]["snapshot"]) == (1, 2)
    assert [i["title"] for i in diff["removed"]] == ["Built example FOIA record 21 | Reports"]
    assert any(line.startswith("-") and "record 21" in line for line in diff["lines"])
    assert diff["after"]["body"].endswith(".gz")
    text = watcher.run("diff", "page", "--from", "1", "--to", "2").output
    assert "removed: Built example FOIA record 21" in text and "blobs/" in text
    missing = watcher.run("diff", "page", "--from", "1", "--to", "9")
    assert missing.exit_code == 2 and "no snapshot 9" in missing.output
