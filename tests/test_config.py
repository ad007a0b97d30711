"""targets.yaml: every bad input is one exact line naming file, line and dotted path; exit 2."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from watcher.config import load_config
from watcher.errors import ConfigError
from watcher.units import Threshold, parse_duration, parse_threshold

GOOD = """\
settings:
  interval: 6h
  per_host: {concurrency: 2, delay: 2s}
notify:
  slack:
    webhook_url: ${SLACK_WEBHOOK_URL}
    repeat: 24h
targets:
  - id: ice-detention-stats
    name: ICE detention statistics
    agency: ICE
    url: https://www.ice.gov/detain/detention-management
    interval: 12h
    items: {select: "a[href*='detentionStats']", within: main}
    expect: {every: 14d, grace: 7d}
    shrink: {items: 1, text: 25%}
    documents: true
    tags: [ice, detention]
  - id: eoir-volume-28
    url: https://www.justice.gov/eoir/volume-28
    expect: auto
"""
ENV = {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T1/B2/secret"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env=ENV if env is None else env)
    return str(info.value).replace(str(path), "targets.yaml")


def test_good_file_loads_with_types_and_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), env=ENV)
    first, second = config.targets
    assert first.interval == timedelta(hours=12)
    assert first.expect is not None and first.expect.every == timedelta(days=14)
    assert first.expect.grace == timedelta(days=7)
    assert first.shrink.items == Threshold(value=1, relative=False)
    assert first.shrink.text == Threshold(value=0.25, relative=True)
    assert second.expect is not None and second.expect.auto
    assert config.interval_of(second) == timedelta(hours=6)
    assert config.confirm_of(second) == 2
    assert config.settings.per_host.delay == timedelta(seconds=2)
    assert config.notify.slack is not None and config.notify.slack.webhook_url is not None
    assert config.notify.slack.webhook_url.get_secret_value() == ENV["SLACK_WEBHOOK_URL"]
    assert "secret" not in repr(config)
    assert config.data_dir == tmp_path / "snapshots"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD.replace("    interval: 12h", "    intervall: 12h"),
            "targets.yaml:13: targets.0.intervall: unknown key (did you mean 'interval'?)",
        ),
        (
            GOOD.replace("every: 14d", "every: 2 weeks"),
            "targets.yaml:15: targets.0.expect.every: invalid duration '2 weeks' (use 14d)",
        ),
        (
            GOOD.replace("interval: 6h", "interval: 6 hours"),
            "targets.yaml:2: settings.interval: invalid duration '6 hours' (use 6h)",
        ),
        (
            GOOD.replace("documents: true", "documents: often"),
            "targets.yaml:17: targets.0.documents: expected true or false, got 'often'",
        ),
        (
            GOOD.replace("concurrency: 2", "concurrency: two"),
            "targets.yaml:3: settings.per_host.concurrency: expected a whole number, got 'two'",
        ),
        (
            GOOD.replace("url: https://www.justice.gov/eoir/volume-28", "url: justice.gov/eoir"),
            "targets.yaml:20: targets.1.url: invalid URL 'justice.gov/eoir' "
            "(use a full http:// or https:// address)",
        ),
        (
            GOOD.replace("id: eoir-volume-28", "id: ice-detention-stats"),
            "targets.yaml:19: targets.1.id: duplicate id 'ice-detention-stats' (also targets.0.id)",
        ),
        (
            GOOD.replace("id: eoir-volume-28", "id: EOIR Volume 28"),
            "targets.yaml:19: targets.1.id: invalid id 'EOIR Volume 28' "
            "(use lower-case letters, digits and '-')",
        ),
        (
            GOOD.replace("text: 25%", "text: 250%"),
            "targets.yaml:16: targets.0.shrink.text: invalid threshold '250%' "
            "(use a count like 3 or a share like 25%)",
        ),
        (
            GOOD.replace("expect: auto", "expect: sometimes"),
            "targets.yaml:21: targets.1.expect: invalid expect 'sometimes' "
            "(use auto or {every: 14d, grace: 7d})",
        ),
        (
            GOOD.replace("  - id: eoir-volume-28\n", "  - name: no id\n"),
            "targets.yaml:19: targets.1.id: required key is missing",
        ),
        (
            "targets:\n  - id: a\n    url: https://x.gov/\n  foo: [\n",
            "targets.yaml:4: invalid YAML: expected <block end>, but found '?'",
        ),
        (
            "targets: [\n",
            "targets.yaml:2: invalid YAML: expected the node content, but found '<stream end>'",
        ),
        ("", "targets.yaml: the file is empty (see README: targets.yaml)"),
        ("# only a comment\n", "targets.yaml: the file is empty (see README: targets.yaml)"),
        ("- a\n- b\n", "targets.yaml:1: expected a mapping with 'targets:' at the top level"),
        (
            "setings:\n  interval: 6h\n",
            "targets.yaml:1: setings: unknown key (did you mean 'settings'?)",
        ),
        (
            GOOD.replace("timezone", "x").replace(
                "settings:\n", "settings:\n  timezone: Mars/Base\n"
            ),
            "targets.yaml:2: settings.timezone: unknown time zone 'Mars/Base' "
            "(use e.g. America/New_York)",
        ),
    ],
)
def test_exact_error_messages(tmp_path: Path, text: str, message: str) -> None:
    assert error_of(tmp_path, text) == message


def test_unset_env_var_names_variable_line_and_path(tmp_path: Path) -> None:
    assert error_of(tmp_path, GOOD, env={}) == (
        "targets.yaml:6: notify.slack.webhook_url: "
        "environment variable SLACK_WEBHOOK_URL is not set"
    )


def test_env_default_syntax(tmp_path: Path) -> None:
    text = GOOD.replace("${SLACK_WEBHOOK_URL}", "${SLACK_WEBHOOK_URL:-https://hooks.example/x}")
    config = load_config(write(tmp_path, text), env={})
    assert config.notify.slack is not None and config.notify.slack.webhook_url is not None
    assert config.notify.slack.webhook_url.get_secret_value() == "https://hooks.example/x"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: no such file"


def test_several_errors_reported_as_one_line(tmp_path: Path) -> None:
    text = GOOD.replace("every: 14d", "every: soon").replace("documents: true", "documents: 7x")
    message = error_of(tmp_path, text)
    assert message.endswith("(and 1 more)")
    assert "\n" not in message


def test_slack_needs_exactly_one_mode(tmp_path: Path) -> None:
    text = GOOD.replace("    repeat: 24h", "    token: xoxb-1\n    repeat: 24h")
    assert error_of(tmp_path, text) == (
        "targets.yaml:5: notify.slack: set either webhook_url or token (with channel), not both"
    )


def test_durations_and_thresholds() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("14d") == timedelta(days=14)
    assert parse_threshold("25%") == Threshold(value=0.25, relative=True)
    assert parse_threshold(3) == Threshold(value=3, relative=False)
    assert parse_threshold("10%").exceeded(25, 22)
    assert not parse_threshold("20%").exceeded(25, 22)
    assert parse_threshold(1).exceeded(25, 24)
    with pytest.raises(ValueError, match=r"use 3600s"):
        parse_duration(3600)


def test_validate_command_ok_and_error_exit_codes(tmp_path: Path) -> None:
    from watcher.cli import main

    runner = CliRunner()
    path = write(tmp_path, GOOD)
    ok = runner.invoke(main, ["validate", "--config", str(path)], env=ENV)
    assert ok.exit_code == 0
    assert ok.output == f"{path}: ok, 2 targets\n"
    path.write_text(GOOD.replace("every: 14d", "every: 2 weeks"))
    bad = runner.invoke(main, ["validate", "--config", str(path)], env=ENV)
    assert bad.exit_code == 2
    assert bad.output == (
        f"Error: {path}:15: targets.0.expect.every: invalid duration '2 weeks' (use 14d)\n"
    )


def test_check_refuses_to_start_on_invalid_config(tmp_path: Path) -> None:
    from watcher.cli import main

    path = write(tmp_path, GOOD.replace("intervall", "x").replace("interval: 12h", "intervall: 1h"))
    result = CliRunner().invoke(main, ["check", "--config", str(path)], env=ENV)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "did you mean 'interval'" in result.output
    assert not (tmp_path / "snapshots").exists()


def test_errors_never_echo_a_secret(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    repeat: 24h\n",
        "    repeat: 24h\n  digest:\n    to: [a@b.org]\n    from: w@b.org\n"
        "    smtp: {host: mail.b.org, password: 123456789}\n",
    )
    message = error_of(tmp_path, text)
    assert "123456789" not in message
    assert message.endswith(
        "notify.digest.smtp.password: expected text, got a value of another type"
    )
