"""targets.yaml → typed, validated objects.

An invalid file never starts a check. Every problem becomes one ``ConfigError`` that names the
file, the line and the dotted path, so a user can fix it without reading a traceback.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from watcher import __version__
from watcher.config_errors import dotted, line_of, to_config_error
from watcher.errors import ConfigError
from watcher.units import Threshold, parse_duration, parse_size, parse_threshold

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
ThresholdField = Annotated[Threshold, BeforeValidator(parse_threshold)]
EventKind = Literal["stopped", "shrank", "disappeared", "error", "added", "changed", "recovered"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PerHost(_Strict):
    concurrency: int = Field(2, ge=1, le=64)
    delay: Duration = timedelta(seconds=2)


class Settings(_Strict):
    data_dir: Path = Path("snapshots")
    timezone: str = "America/New_York"
    interval: Duration = timedelta(hours=6)
    jitter: Duration = timedelta(minutes=15)
    timeout: Duration = timedelta(seconds=30)
    confirm: int = Field(2, ge=1, le=100)
    user_agent: str = "watcher/{version} (+mailto:desk@example.org)"
    per_host: PerHost = PerHost()
    max_body: Size = 20 * 1024 * 1024
    retries: int = Field(3, ge=0, le=10)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (use e.g. America/New_York)") from None
        return v

    @field_validator("user_agent")
    @classmethod
    def _has_contact(cls, v: str) -> str:
        # Agencies' webmasters block anonymous scrapers; a contact lets them ask us to slow down.
        if "@" not in v and "http" not in v:
            raise ValueError("user_agent must carry a contact address (mailto: or a URL)")
        return v

    @property
    def user_agent_string(self) -> str:
        return self.user_agent.replace("{version}", __version__)


class SlackConfig(_Strict):
    webhook_url: SecretStr | None = None
    token: SecretStr | None = None
    channel: str | None = None
    # Where slack-sdk's WebClient sends API calls; only changed for proxies and tests.
    base_url: str | None = None
    kinds: list[EventKind] = ["stopped", "shrank", "disappeared", "error", "recovered"]
    repeat: Duration = timedelta(hours=24)

    @model_validator(mode="after")
    def _one_mode(self) -> SlackConfig:
        if bool(self.webhook_url) == bool(self.token):
            raise ValueError("set either webhook_url or token (with channel), not both")
        if self.token and not self.channel:
            raise ValueError("token needs a channel (e.g. '#foia-watch')")
        return self


class SmtpConfig(_Strict):
    host: str
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password: SecretStr | None = None
    timeout: Duration = timedelta(seconds=30)


class DigestConfig(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    at: str = "08:00"
    to: list[str] = Field(min_length=1)
    from_: str = Field(alias="from")
    smtp: SmtpConfig
    skip_empty: bool = False

    @field_validator("at")
    @classmethod
    def _clock_time(cls, v: str) -> str:
        if not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", v):
            raise ValueError(f"invalid time {v!r} (use HH:MM, e.g. 08:00)")
        return v

    @field_validator("to")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        for address in v:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+", address):
                raise ValueError(f"invalid email address {address!r}")
        return v

    @property
    def at_time(self) -> time:
        hour, minute = self.at.split(":")
        return time(int(hour), int(minute))


class NotifyConfig(_Strict):
    slack: SlackConfig | None = None
    digest: DigestConfig | None = None


class ItemRules(_Strict):
    select: str | None = None
    within: str | None = None


class Expect(_Strict):
    """``{every, grace}``, or ``auto`` to learn the cadence from the target's own history."""

    every: Duration | None = None
    grace: Duration = timedelta(0)
    auto: bool = False

    @model_validator(mode="after")
    def _every_or_auto(self) -> Expect:
        if not self.auto and self.every is None:
            raise ValueError("expect needs 'every' (e.g. {every: 14d, grace: 7d}) or 'auto'")
        return self


def _expect_before(value: object) -> object:
    if value == "auto":
        return {"auto": True}
    if isinstance(value, str):
        raise ValueError(f"invalid expect {value!r} (use auto or {{every: 14d, grace: 7d}})")
    return value


class Shrink(_Strict):
    items: ThresholdField = Threshold(value=0.10, relative=True)
    text: ThresholdField = Threshold(value=0.25, relative=True)
    rows: ThresholdField = Threshold(value=0.10, relative=True)
    size: ThresholdField = Threshold(value=0.25, relative=True)


class Target(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    name: str = ""
    agency: str = ""
    url: str
    interval: Duration | None = None
    items: ItemRules = ItemRules()
    expect: Annotated[Expect | None, BeforeValidator(_expect_before)] = None
    shrink: Shrink = Shrink()
    documents: bool = False
    tags: list[str] = []
    confirm: int | None = Field(None, ge=1, le=100)

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        m = re.fullmatch(r"https?://([^/\s?#]+)(/\S*)?", v)
        if not m or ("." not in m.group(1).split(":")[0] and "localhost" not in m.group(1)):
            raise ValueError(f"invalid URL {v!r} (use a full http:// or https:// address)")
        return v

    @property
    def label(self) -> str:
        return self.name or self.id


class Config(_Strict):
    settings: Settings = Settings()
    notify: NotifyConfig = NotifyConfig()
    targets: list[Target] = []

    # Not part of the file: where it was read from, to resolve relative paths.
    source: Path = Field(default=Path("targets.yaml"), exclude=True)

    @property
    def data_dir(self) -> Path:
        d = self.settings.data_dir
        return d if d.is_absolute() else self.source.parent / d

    def target(self, target_id: str) -> Target | None:
        return next((t for t in self.targets if t.id == target_id), None)

    def interval_of(self, target: Target) -> timedelta:
        return target.interval or self.settings.interval

    def confirm_of(self, target: Target) -> int:
        return target.confirm or self.settings.confirm


# --- loading -------------------------------------------------------------------------------

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_config(path: Path | str, env: dict[str, str] | None = None) -> Config:
    """Read, substitute ``${VAR}`` and validate. Raises ``ConfigError`` on any problem."""
    path = Path(path)
    env = dict(os.environ) if env is None else env
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, f"cannot read file ({e.__class__.__name__})") from None
    if not text.strip():
        raise ConfigError(path, "the file is empty (see README: targets.yaml)")
    try:
        node, data = _parse_yaml(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(path, f"invalid YAML: {e.problem or e.context}", line=line) from None
    except yaml.YAMLError as e:
        raise ConfigError(path, f"invalid YAML: {e}") from None
    if data is None:
        raise ConfigError(path, "the file is empty (see README: targets.yaml)")
    if not isinstance(data, dict):
        raise ConfigError(path, "expected a mapping with 'targets:' at the top level", line=1)
    lines: dict[tuple[str | int, ...], int] = {}
    _index_lines(node, (), lines)
    data = _substitute(data, (), env, path, lines)
    try:
        config = Config.model_validate(data)
    except ValidationError as e:
        raise to_config_error(e, path, lines, Config) from None
    _check_unique_ids(config, path, lines)
    return config.model_copy(update={"source": path.resolve()})


def _parse_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """One parse gives both the node tree (for line numbers) and the data.

    libyaml is ten times faster on a 1,000-target file; on an error the pure-Python parser
    runs again because its messages are the clearer ones.
    """
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return _compose_and_construct(fast(text))
        except yaml.YAMLError:
            pass
    return _compose_and_construct(yaml.SafeLoader(text))


def _compose_and_construct(loader: Any) -> tuple[yaml.Node | None, Any]:
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def _index_lines(
    node: yaml.Node | None, at: tuple[str | int, ...], out: dict[tuple[str | int, ...], int]
) -> None:
    if node is None:
        return
    out.setdefault(at, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*at, str(key.value))] = key.start_mark.line + 1
            _index_lines(value, (*at, str(key.value)), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            _index_lines(child, (*at, i), out)


def _substitute(
    value: Any,
    at: tuple[str | int, ...],
    env: dict[str, str],
    path: Path,
    lines: dict[tuple[str | int, ...], int],
) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, (*at, str(k)), env, path, lines) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, (*at, i), env, path, lines) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                path,
                f"environment variable {name} is not set",
                line=line_of(lines, at),
                path=dotted(at),
            )

        return _VAR.sub(repl, value)
    return value


def _check_unique_ids(config: Config, path: Path, lines: dict[tuple[str | int, ...], int]) -> None:
    seen: dict[str, int] = {}
    for i, target in enumerate(config.targets):
        if target.id in seen:
            raise ConfigError(
                path,
                f"duplicate id '{target.id}' (also targets.{seen[target.id]}.id)",
                line=line_of(lines, ("targets", i, "id")),
                path=f"targets.{i}.id",
            )
        seen[target.id] = i
