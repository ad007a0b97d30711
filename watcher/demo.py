"""``watcher demo``: the whole product, offline, in under a minute.

A simulated agency site (``demo_site``) runs on 127.0.0.1 and goes through six weeks of
trouble. Each step runs the same check as ``watcher check --at <time>``, and every alert goes
through the real outbox and the real slack-sdk client: to a local webhook sink, or to your
Slack when ``SLACK_WEBHOOK_URL`` is set. The terminal shows each message as Slack would.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.emoji import Emoji
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from watcher.check import check_targets
from watcher.config import Config, load_config
from watcher.demo_site import Site, SiteServer, demo_targets, timeline
from watcher.digest import build_digest
from watcher.mailer import render_digest
from watcher.models import Notice
from watcher.notify import deliver_slack
from watcher.slack import build_message
from watcher.store import Store

_KIND_STYLE = {
    "stopped": "bold magenta",
    "shrank": "bold yellow",
    "disappeared": "bold red",
    "error": "bold red",
    "recovered": "bold green",
}


@dataclass
class Fired:
    at: datetime
    kind: str
    target: str
    summary: str


class WebhookSink:
    """Plays Slack's incoming-webhook endpoint on 127.0.0.1 when no real Slack is configured."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                sink.received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/services/TDEMO/BDEMO/demo"

    def __enter__(self) -> WebhookSink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def run_demo(console: Console, workdir: Path | None = None) -> list[Fired]:
    """Run the scripted timeline; return what fired, in order. Leaves nothing running."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="watcher-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    real_slack = os.environ.get("SLACK_WEBHOOK_URL")
    site = Site()
    fired: list[Fired] = []
    with SiteServer(site) as server, WebhookSink() as sink:
        config_path = workdir / "targets.yaml"
        # The file stays loadable after the demo, so `watcher status --config` can explore it.
        config_path.write_text(
            demo_targets(server.base)
            + f"notify:\n  slack:\n    webhook_url: ${{SLACK_WEBHOOK_URL:-{sink.url}}}\n"
            + "    repeat: 30d\n"
        )
        config = load_config(config_path)
        console.print(
            f"[bold]watcher demo[/]: a simulated agency site at {server.base}, "
            f"{len(config.targets)} targets, data in {workdir}"
        )
        if real_slack:
            console.print("SLACK_WEBHOOK_URL is set: alerts are also posted to your Slack.")
        with Store(config.data_dir) as store:
            last_id = 0
            seen: set[tuple[str, str, str]] = set()
            for step in timeline():
                step.apply(site)
                console.rule(f"[bold]{step.at:%a %d %b %Y}[/]  {step.note}", align="left")
                run = asyncio.run(check_targets(config, config.targets, store, now=step.at))
                for result in run.results:
                    for event in result.events:
                        # An ongoing condition is observed on every check; say it once.
                        key = (result.target.id, event.kind, event.subject)
                        ongoing = event.severity == "alert" and key in seen
                        seen.add(key)
                        if not ongoing:
                            line = f"  {result.target.id}: {event.kind}: {event.summary}"
                            console.print(Text(line, style="dim"))
                    seen &= {(result.target.id, e.kind, e.subject) for e in result.events} | {
                        k for k in seen if k[0] != result.target.id
                    }
                deliver_slack(store, config, now=step.at)
                rows = store.db.execute(
                    "SELECT id, payload FROM outbox WHERE channel='slack' AND state='sent'"
                    " AND id>? ORDER BY id",
                    (last_id,),
                ).fetchall()
                for row_id, payload in rows:
                    last_id = row_id
                    notice = Notice.from_dict(json.loads(payload))
                    kind = notice.kind + (" (reminder)" if notice.repeat else "")
                    fired.append(Fired(step.at, kind, notice.target_name, notice.summary))
                    console.print(render_slack(notice))
            digest_path = write_digest(config, store, workdir, timeline()[-1].at)
    _summary(console, fired)
    console.print(f"Digest email written to [bold]{digest_path}[/]")
    console.print(f"Evidence (captures, database) kept in {workdir}; explore it with")
    console.print(f"  watcher status --config {config_path}")
    console.print(f"  watcher history ice-foia-library --config {config_path}")
    return fired


def write_digest(config: Config, store: Store, workdir: Path, now: datetime) -> Path:
    """The digest for the whole demo window, as the morning email would show it."""
    path = workdir / "digest.html"
    digest = build_digest(
        store, config, start=now - timedelta(days=60), end=now + timedelta(hours=1)
    )
    path.write_text(render_digest(digest).html, encoding="utf-8")
    return path


def render_slack(notice: Notice) -> Panel:
    """Block Kit, approximated for a terminal: header, sections, context."""
    _, blocks = build_message(notice)
    parts: list[Text] = []
    title = ""
    for block in blocks:
        if block["type"] == "header":
            title = block["text"]["text"]
        elif block["type"] == "section":
            parts.append(_mrkdwn(block["text"]["text"]))
        elif block["type"] == "context":
            parts.append(Text(_plain(block["elements"][0]["text"]), style="dim"))
    style = _KIND_STYLE.get(notice.kind, "bold")
    heading = Text(Emoji.replace(title), style=style)
    return Panel(Group(*parts), title=heading, title_align="left", expand=False)


def _mrkdwn(text: str) -> Text:
    out = Text()
    for line in text.split("\n"):
        pos = 0
        for m in re.finditer(r"<([^|>]+)\|([^>]+)>|\*([^*]+)\*", line):
            out.append(_unescape(line[pos : m.start()]))
            if m.group(3):
                out.append(_unescape(m.group(3)), style="bold")
            else:
                out.append(_unescape(m.group(2)), style="underline cyan")
            pos = m.end()
        out.append(_unescape(line[pos:]) + "\n")
    out.rstrip()
    return out


def _plain(text: str) -> str:
    return _unescape(re.sub(r"<[^|>]+\|([^>]+)>", r"\1", text))


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _summary(console: Console, fired: list[Fired]) -> None:
    table = Table(title="What fired, and when", title_justify="left", expand=True)
    table.add_column("check", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("target", ratio=1)
    table.add_column("summary", ratio=2, overflow="fold")
    for f in fired:
        table.add_row(
            f"{f.at:%a %d %b}",
            Text(f.kind, style=_KIND_STYLE.get(f.kind.split()[0], "")),
            f.target,
            f.summary if len(f.summary) <= 90 else f.summary[:89] + "…",
        )
    console.print(table)
