"""The ``watcher`` command. The only place where errors become messages and exit codes."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from watcher import __version__
from watcher.check import TargetResult, check_targets
from watcher.config import Config, Target, load_config
from watcher.errors import UnknownTargetError, WatcherError
from watcher.report import print_table, report_json
from watcher.store import Store

F = TypeVar("F", bound=Callable[..., Any])


class UsageError(click.ClickException):
    """Exit 2 with one line on stderr: bad config, bad arguments, unusable data dir."""

    exit_code = 2


class WatcherGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WatcherError as e:
            raise UsageError(str(e)) from None


def config_option(f: F) -> F:
    return click.option(
        "--config",
        "config_path",
        default="targets.yaml",
        envvar="WATCHER_CONFIG",
        show_default=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="The targets file.",
    )(f)


def data_dir_option(f: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Where snapshots are kept (default: settings.data_dir).",
    )(f)


def parse_at(value: str | None) -> datetime:
    """``--at`` takes ISO-8601; a time without a zone is UTC."""
    if value is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--at: invalid time {value!r} (use ISO-8601, e.g. 2026-11-21T12:00)"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def open_store(config: Config, data_dir: Path | None) -> Store:
    return Store(data_dir or config.data_dir)


def select_targets(config: Config, ids: tuple[str, ...]) -> list[Target]:
    if not ids:
        return list(config.targets)
    chosen = []
    for target_id in ids:
        target = config.target(target_id)
        if target is None:
            raise UnknownTargetError(target_id, [t.id for t in config.targets])
        chosen.append(target)
    return chosen


@click.group(cls=WatcherGroup)
@click.version_option(__version__, prog_name="watcher")
def main() -> None:
    """Watch government publications; alert when they stop, shrink or disappear."""


@main.command()
@click.argument("ids", nargs=-1)
@config_option
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report.")
@click.option(
    "--no-notify", is_flag=True, help="Record and report, but leave notifications queued."
)
@click.option("--at", "at", help="Record the check as happening at this ISO-8601 time.")
def check(
    ids: tuple[str, ...],
    config_path: Path,
    data_dir: Path | None,
    as_json: bool,
    no_notify: bool,
    at: str | None,
) -> None:
    """Check targets once (all by default). Exit 1 when an alert is firing."""
    config = load_config(config_path)
    targets = select_targets(config, ids)
    now = parse_at(at)
    err = Console(stderr=True)
    with open_store(config, data_dir) as store, store.exclusive():
        if err.is_terminal and not as_json and len(targets) > 1:
            with Progress(
                TextColumn("checking"), BarColumn(), MofNCompleteColumn(), console=err
            ) as progress:
                task = progress.add_task("check", total=len(targets))

                def advance(_: TargetResult) -> None:
                    progress.advance(task)

                run = asyncio.run(check_targets(config, targets, store, now=now, on_done=advance))
        else:
            run = asyncio.run(check_targets(config, targets, store, now=now))
        if not no_notify:
            from watcher.notify import deliver_after_check

            for line in deliver_after_check(store, config, now=now):
                click.echo(line, err=True)
    if as_json:
        click.echo(json.dumps(report_json(run), indent=2, ensure_ascii=False))
    else:
        print_table(run, Console())
    sys.exit(run.exit_code)


@main.command()
@config_option
def validate(config_path: Path) -> None:
    """Check the config file and say what it watches."""
    config = load_config(config_path)
    click.echo(f"{config_path}: ok, {len(config.targets)} targets")


# --- watcher run / watcher digest --------------------------------------------------------


@main.command()
@config_option
@data_dir_option
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="One line per event on stderr: key=value text, or JSON.",
)
def run(config_path: Path, data_dir: Path | None, log_format: str) -> None:
    """Run the scheduler: checks, the daily digest and notification retries, until stopped.

    SIGINT/SIGTERM stop it cleanly (exit 0); SIGHUP, or editing the config file, reloads it.
    """
    from watcher.daemon import run_daemon

    sys.exit(run_daemon(config_path, data_dir=data_dir, log_format=log_format))


@main.command()
@config_option
@data_dir_option
@click.option("--send", is_flag=True, help="Mail it (queued for retry if SMTP is down).")
@click.option(
    "--preview",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the HTML to this file.",
)
@click.option("--since", default="24h", show_default=True, help="Window length, e.g. 24h, 7d.")
@click.option("--at", "at", help="End of the window (ISO-8601); default now.")
def digest(
    config_path: Path,
    data_dir: Path | None,
    send: bool,
    preview: Path | None,
    since: str,
    at: str | None,
) -> None:
    """Build the digest of the last --since. Prints the text unless --send or --preview.

    Exit 0 when sent (or skipped as empty), 1 when SMTP failed and it is queued for retry.
    """
    from watcher.digest import build_digest, window_key
    from watcher.mailer import deliver_email, queue_digest, render_digest
    from watcher.units import parse_duration

    config = load_config(config_path)
    try:
        span = parse_duration(since)
    except ValueError as e:
        raise UsageError(f"--since: {e}") from None
    end = parse_at(at)
    start = end - span
    if send and config.notify.digest is None:
        raise UsageError(f"{config_path}: notify.digest is not configured; cannot --send")
    with open_store(config, data_dir) as store:
        rendered = render_digest(build_digest(store, config, start=start, end=end))
        if preview is not None:
            preview.write_text(rendered.html, encoding="utf-8")
            click.echo(f"wrote {preview}", err=True)
        if not send:
            if preview is None:
                click.echo(f"Subject: {rendered.subject}\n\n{rendered.text}", nl=False)
            return
        now = datetime.now(UTC)
        key = window_key(start, end)
        queued = queue_digest(
            store, config, start=start, end=end, now=now, key=key, scheduled=False
        )
        if queued.status == "skipped":
            click.echo("nothing to report (notify.digest.skip_empty): not sent", err=True)
            return
        delivery = deliver_email(store, config, now=now)
    for subject in delivery.sent:
        click.echo(f"sent: {subject}", err=True)
    if delivery.failed:
        click.echo(f"not sent, queued for retry: {delivery.failed[0]}", err=True)
        sys.exit(1)


@main.group()
def notify() -> None:
    """Slack notifications."""


@notify.command("test")
@config_option
def notify_test(config_path: Path) -> None:
    """Post a test message to the configured Slack channel."""
    from watcher.notify import send_test

    config = load_config(config_path)
    if config.notify.slack is None:
        raise UsageError(f"{config_path}: Slack is not configured (add notify.slack)")
    try:
        where = send_test(config.notify.slack)
    except WatcherError as e:
        click.echo(str(e), err=True)
        sys.exit(1)
    click.echo(f"slack: test message posted to {where}")


@main.command()
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the demo's data here (default: a new temporary directory).",
)
def demo(workdir: Path | None) -> None:
    """Run offline against a simulated agency site on 127.0.0.1."""
    from watcher.demo import run_demo

    run_demo(Console(), workdir)


# --- watcher mute / unmute / status / history / diff: alerts and evidence ------------------


@main.command()
@click.argument("target_id")
@click.option("--for", "span", required=True, help="How long, e.g. 12h or 7d.")
@config_option
@data_dir_option
@click.option("--at", "at", help="Count from this ISO-8601 time instead of now.")
def mute(
    target_id: str, span: str, config_path: Path, data_dir: Path | None, at: str | None
) -> None:
    """Silence a target's notifications for a while. Alerts are still recorded."""
    from watcher.alerts import set_mute
    from watcher.units import parse_duration

    config = load_config(config_path)
    (target,) = select_targets(config, (target_id,))
    try:
        until = parse_at(at) + parse_duration(span)
    except ValueError as e:
        raise UsageError(f"--for: {e}") from None
    with open_store(config, data_dir) as store, store.transaction() as db:
        set_mute(db, target, until)
    click.echo(f"{target.id}: muted until {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC")


@main.command()
@click.argument("target_id")
@config_option
@data_dir_option
def unmute(target_id: str, config_path: Path, data_dir: Path | None) -> None:
    """Notify about a muted target's alerts again."""
    from watcher.alerts import set_mute

    config = load_config(config_path)
    (target,) = select_targets(config, (target_id,))
    with open_store(config, data_dir) as store, store.transaction() as db:
        set_mute(db, target, None)
    click.echo(f"{target.id}: unmuted")


@main.command()
@config_option
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--at", "at", help="Judge due dates as of this ISO-8601 time.")
def status(config_path: Path, data_dir: Path | None, as_json: bool, at: str | None) -> None:
    """One row per target: last check, state, items, newest publication, open alerts."""
    from watcher.views import notification_problems, print_status, wide_console
    from watcher.views import status as build_status

    config = load_config(config_path)
    now = parse_at(at)
    with open_store(config, data_dir) as store:
        rows = build_status(store, config, now)
        problems = notification_problems(store, now)
    if as_json:
        doc = {"targets": [r.to_dict() for r in rows], "notify_problems": problems}
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print_status(rows, problems, wide_console())


@main.command()
@click.argument("target_id")
@config_option
@data_dir_option
@click.option("--limit", default=50, show_default=True, help="Show the last N entries (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def history(
    target_id: str, config_path: Path, data_dir: Path | None, limit: int, as_json: bool
) -> None:
    """A target's checks, snapshots, events and alerts over time, newest last."""
    from watcher.views import history as build_history
    from watcher.views import print_history

    config = load_config(config_path)
    (target,) = select_targets(config, (target_id,))
    with open_store(config, data_dir) as store:
        entries = build_history(store, target.id, limit)
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in entries], indent=2, ensure_ascii=False))
    else:
        print_history(entries, Console())


@main.command()
@click.argument("target_id")
@config_option
@data_dir_option
@click.option("--from", "from_id", type=int, help="Snapshot id (default: the one before --to).")
@click.option("--to", "to_id", type=int, help="Snapshot id (default: the latest).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def diff(
    target_id: str,
    config_path: Path,
    data_dir: Path | None,
    from_id: int | None,
    to_id: int | None,
    as_json: bool,
) -> None:
    """The text diff and item changes between two snapshots, with where the captures are."""
    from watcher.views import diff as build_diff
    from watcher.views import print_diff

    config = load_config(config_path)
    (target,) = select_targets(config, (target_id,))
    with open_store(config, data_dir) as store:
        if to_id is not None and from_id is None:
            earlier = [s.id for s in store.snapshots(target.id) if s.id < to_id]
            from_id = earlier[-1] if earlier else None
        result = build_diff(store, target.id, from_id, to_id)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        print_diff(result, Console(soft_wrap=True))
