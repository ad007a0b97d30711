"""The whole path, config → fetch → extract → store → compare → report, over real sockets."""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
import time
from http.server import BaseHTTPRequestHandler

from tests.conftest import Watcher, fixture_bytes
from tests.server import PageServer, send

EOIR_2021 = fixture_bytes("eoir/justice_gov_eoir_volume-28_2021-12-19.html")
EOIR_2023 = fixture_bytes("eoir/justice_gov_eoir_volume-28_2023-11-14.html")
STATS = fixture_bytes("built/ice_detention_management.html")


def one_target(server: PageServer, path: str, extra: str = "") -> str:
    return f"  - id: page\n    name: The page\n    url: {server.url(path)}\n{extra}"


def blobs(w: Watcher) -> int:
    return len(list((w.data_dir / "blobs").rglob("*.gz")))


def test_first_check_reports_items_and_stores_the_capture(
    server: PageServer, watcher: Watcher
) -> None:
    server.set("/eoir/volume-28", EOIR_2021)
    watcher.write(one_target(server, "/eoir/volume-28"))
    code, report = watcher.check(at="2026-11-21T12:00:00Z")
    assert code == 0
    assert report["checked_at"] == "2026-11-21T12:00:00+00:00"
    (t,) = report["targets"]
    assert (t["id"], t["state"], t["outcome"], t["http_status"]) == ("page", "ok", "first", 200)
    assert t["items"] == 49
    assert t["events"] == [] and t["firing"] == []
    assert blobs(watcher) == 2  # the raw body and the extracted page


def test_unchanged_body_writes_no_blob_and_is_not_reparsed(
    server: PageServer, watcher: Watcher
) -> None:
    server.set("/p", EOIR_2021)
    watcher.write(one_target(server, "/p"))
    watcher.check(at="2026-11-21T12:00:00Z")
    before = blobs(watcher)
    code, report = watcher.check(at="2026-11-21T18:00:00Z")
    assert code == 0
    assert report["targets"][0]["outcome"] == "unchanged"
    assert blobs(watcher) == before
    db = sqlite3.connect(watcher.data_dir / "watcher.db")
    assert db.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM checks").fetchone()[0] == 2
    assert (
        db.execute("SELECT min(last_seen) FROM items").fetchone()[0] == "2026-11-21T18:00:00+00:00"
    )
    assert (
        db.execute("SELECT max(first_seen) FROM items").fetchone()[0] == "2026-11-21T12:00:00+00:00"
    )


def test_moved_documents_are_not_reported_removed(server: PageServer, watcher: Watcher) -> None:
    server.set("/v28", EOIR_2021)
    watcher.write(one_target(server, "/v28"))
    watcher.check(at="2026-01-01T00:00:00Z")
    server.set("/v28", EOIR_2023)
    _code, report = watcher.check(at="2026-01-02T00:00:00Z")
    t = report["targets"][0]
    assert [e["kind"] for e in t["events"]] == ["added", "changed"]
    assert t["items"] == 83
    assert "49 publications moved to new URLs" in t["events"][1]["summary"]
    db = sqlite3.connect(watcher.data_dir / "watcher.db")
    # A moved document keeps the first-seen time of its old URL.
    old_first_seen = db.execute(
        "SELECT count(*) FROM items WHERE gone_since IS NULL AND first_seen=?",
        ("2026-01-01T00:00:00+00:00",),
    ).fetchone()[0]
    assert old_first_seen == 49


def test_removed_items_produce_one_disappeared_event(server: PageServer, watcher: Watcher) -> None:
    page = STATS.decode()
    server.set("/stats", page)
    watcher.write(one_target(server, "/stats", "    items: {select: \"a[href*='detention']\"}\n"))
    _, first = watcher.check(at="2026-11-01T00:00:00Z")
    n = first["targets"][0]["items"]
    assert n >= 5
    newest = first["targets"][0]["newest"]
    assert newest["date"] == "2025-09-25"
    assert newest["url"].endswith("FY25_detentionStats09252025.xlsx")
    trimmed = re.sub(r"<li><a href=\"[^\"]*(FY21|FY22)_[^<]*</a></li>", "", page)
    assert trimmed.count("<li><a href") == page.count("<li><a href") - 2
    server.set("/stats", trimmed)
    _, second = watcher.check(at="2026-11-02T00:00:00Z")
    kinds = [e["kind"] for e in second["targets"][0]["events"]]
    assert kinds.count("disappeared") == 1
    gone = next(e for e in second["targets"][0]["events"] if e["kind"] == "disappeared")
    assert gone["subject"] == "item"
    assert len(gone["data"]["items"]) == 2


def test_conditional_requests_use_the_servers_validators(
    server: PageServer, watcher: Watcher
) -> None:
    def handler(h: BaseHTTPRequestHandler) -> None:
        # EOIR's case-data zip sometimes sends its ETag without quotes.
        if h.headers.get("If-None-Match") == '"v1"':
            send(h, 304, b"", {"ETag": "v1"})
        else:
            send(
                h, 200, EOIR_2021, {"ETag": "v1", "Last-Modified": "Tue, 07 May 2024 10:00:00 GMT"}
            )

    server.set_handler("/p", handler)
    watcher.write(one_target(server, "/p"))
    watcher.check(at="2026-11-21T12:00:00Z")
    code, report = watcher.check(at="2026-11-21T13:00:00Z")
    assert code == 0
    assert report["targets"][0]["outcome"] == "not_modified"
    assert report["targets"][0]["http_status"] == 304
    assert report["targets"][0]["items"] == 49
    second = server.hits("/p")[1]
    assert second.headers["if-modified-since"] == "Tue, 07 May 2024 10:00:00 GMT"


def test_redirect_chain_is_recorded(server: PageServer, watcher: Watcher) -> None:
    server.redirect("/old", "/middle", 301)
    server.redirect("/middle", server.url("/new"), 302)
    server.set("/new", EOIR_2021)
    watcher.write(one_target(server, "/old"))
    _, report = watcher.check()
    assert report["targets"][0]["final_url"] == server.url("/new")
    db = sqlite3.connect(watcher.data_dir / "watcher.db")
    chain = json.loads(db.execute("SELECT redirects FROM checks").fetchone()[0])
    assert chain == [server.url("/middle"), server.url("/new")]


def test_gone_page_is_a_disappeared_event(server: PageServer, watcher: Watcher) -> None:
    server.set("/p", EOIR_2021)
    watcher.write(one_target(server, "/p"))
    watcher.check(at="2026-11-21T12:00:00Z")
    server.set("/p", b"<html><title>Gone</title></html>", status=410)
    code, report = watcher.check(at="2026-11-21T18:00:00Z")
    t = report["targets"][0]
    assert t["http_status"] == 410
    assert [(e["kind"], e["subject"]) for e in t["events"]] == [("disappeared", "page")]
    # One answer is not enough: the alert waits for confirmation (settings.confirm, 2).
    assert t["events"][0]["summary"] == "The page answers 410 (Gone) (unconfirmed: 1 of 2 checks)"
    assert (code, t["firing"]) == (0, [])
    code, report = watcher.check(at="2026-11-22T00:00:00Z")
    t = report["targets"][0]
    assert t["events"][0]["summary"] == "The page answers 410 (Gone)"
    assert (code, t["firing"], t["state"]) == (1, ["disappeared"], "alert")


def test_hanging_server_is_an_error_row_not_a_traceback(
    server: PageServer, watcher: Watcher
) -> None:
    def hang(h: BaseHTTPRequestHandler) -> None:
        time.sleep(3)  # the server is slow; the client's 1s timeout must fire first

    server.set_handler("/slow", hang)
    server.set("/fine", EOIR_2021)
    watcher.write(
        one_target(server, "/slow") + f"  - id: fine\n    url: {server.url('/fine')}\n",
        timeout="1s",
    )
    _code, report = watcher.check()
    slow, fine = report["targets"]
    assert slow["state"] == "error" and slow["error"]["class"] == "timeout"
    assert fine["state"] == "ok" and fine["items"] == 49


def test_gzip_encoded_latin1_page_without_charset(server: PageServer, watcher: Watcher) -> None:
    html = "<html><head><title>Informe de detención</title></head><body><main><p>Año fiscal</p>"
    html += '<a href="/r/informe_2024_1108_final.pdf">Informe</a></main></body></html>'
    server.set(
        "/latin",
        gzip.compress(html.encode("latin-1")),
        headers={"Content-Type": "text/html", "Content-Encoding": "gzip"},
    )
    watcher.write(one_target(server, "/latin"))
    _, report = watcher.check(at="2026-11-21T12:00:00Z")
    t = report["targets"][0]
    assert t["items"] == 1
    assert t["newest"]["date"] == "2024-11-08"
    assert t["newest"]["url"] == server.url("/r/informe_2024_1108_final.pdf")


def test_firewall_block_page_is_an_error_not_a_disappearance(
    server: PageServer, watcher: Watcher
) -> None:
    akamai = (
        b"<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD><BODY><H1>Access Denied</H1>"
        b'You don\'t have permission to access "http&#58;&#47;&#47;www&#46;ice&#46;gov&#47;" '
        b"on this server.<P>Reference&#32;&#35;18&#46;6f2d3217&#46;1713200000&#46;1a2b3c4d"
        b"</BODY></HTML>"
    )
    server.set("/p", akamai, status=403)
    watcher.write(one_target(server, "/p"))
    _, report = watcher.check()
    t = report["targets"][0]
    assert t["error"]["class"] == "blocked"
    assert [e["kind"] for e in t["events"]] == ["error"]


def test_check_named_targets_only_and_unknown_id(server: PageServer, watcher: Watcher) -> None:
    server.set("/a", EOIR_2021)
    watcher.write(one_target(server, "/a") + f"  - id: other\n    url: {server.url('/missing')}\n")
    _, report = watcher.check("page")
    assert [t["id"] for t in report["targets"]] == ["page"]
    result = watcher.run("check", "nope")
    assert result.exit_code == 2
    assert result.output == "Error: no target with id 'nope'\n"


def test_table_output_names_each_target(server: PageServer, watcher: Watcher) -> None:
    server.set("/a", EOIR_2021)
    watcher.write(one_target(server, "/a"))
    result = watcher.run("check", "--at", "2026-11-21T12:00:00Z")
    assert result.exit_code == 0
    assert "page" in result.output and "first capture (49 items)" in result.output
    assert "checking" not in result.output  # no progress bar when not on a terminal
