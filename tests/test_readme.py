"""The README's targets.yaml reference must name every key the config accepts."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from watcher.config import Config
from watcher.units import Threshold

README = Path(__file__).parent.parent / "README.md"


def keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    found = set()
    for name, field in model.model_fields.items():
        if name == "source":
            continue
        key = field.alias or name
        found.add(prefix + key)
        for arg in [field.annotation, *getattr(field.annotation, "__args__", ())]:
            nested = isinstance(arg, type) and issubclass(arg, BaseModel)
            if nested and arg is not Threshold and key != "expect":
                found |= keys(arg, f"{prefix}{key}.")
    return found


def test_every_config_key_is_in_the_readme_reference() -> None:
    text = README.read_text()
    reference = text[text.index("## targets.yaml reference") :]
    # Every word inside a code span counts: `{host, port: 587}` documents host and port.
    documented = {
        w for span in re.findall(r"`([^`]+)`", reference) for w in re.findall(r"[a-z_]+", span)
    }
    missing = sorted(k for k in keys(Config) if k.split(".")[-1] not in documented)
    assert missing == [], f"document these keys in README.md: {missing}"


def test_the_reference_walk_sees_nested_keys() -> None:
    found = keys(Config)
    assert {"settings.per_host.delay", "notify.digest.smtp.host", "targets.items.select"} <= found
