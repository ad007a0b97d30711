"""Turns a pydantic ValidationError on targets.yaml into one line a person can act on.

The line names the file, the line and the dotted path (``targets.3.expect.every``), says what
was expected in words rather than pydantic's, suggests the nearest key for a typo, and never
repeats a secret's value.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from watcher.errors import ConfigError

Location = tuple[str | int, ...]


def line_of(lines: dict[Location, int], at: Location) -> int | None:
    while at:
        if at in lines:
            return lines[at]
        at = at[:-1]
    return lines.get(())


def dotted(at: Location) -> str:
    return ".".join(str(p) for p in at)


# Never echo these back in an error message: the value may be a real secret.
_SECRET_KEYS = {"password", "token", "webhook_url", "username"}
_TYPE_WORDS = {
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def to_config_error(
    error: ValidationError, path: Path, lines: dict[Location, int], root: type[BaseModel]
) -> ConfigError:
    problems = []
    for e in error.errors():
        at = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        problems.append((line_of(lines, at) or 0, at, _message(e, at, root)))
    problems.sort(key=lambda p: p[0])
    line, at, message = problems[0]
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more)"
    return ConfigError(path, message, line=line or None, path=dotted(at))


def _message(e: Any, at: Location, root: type[BaseModel]) -> str:
    kind = e["type"]
    given = e.get("input")
    if kind == "extra_forbidden":
        return f"unknown key{_did_you_mean(at, root)}"
    if kind == "missing":
        return "required key is missing"
    if kind in _TYPE_WORDS:
        if at and at[-1] in _SECRET_KEYS:
            return f"expected {_TYPE_WORDS[kind]}, got a value of another type"
        return f"expected {_TYPE_WORDS[kind]}, got {_show(given)}"
    if kind == "string_pattern_mismatch" and at[-1:] == ("id",):
        return f"invalid id {_show(given)} (use lower-case letters, digits and '-')"
    if kind == "literal_error":
        return f"unknown value {_show(given)} ({e['msg'].replace('Input should be ', 'use ')})"
    if kind in ("greater_than_equal", "less_than_equal", "too_short", "string_too_long"):
        return f"{e['msg'].lower()}, got {_show(given)}"
    msg = str(e["msg"])
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _did_you_mean(at: Location, root: type[BaseModel]) -> str:
    known = _keys_at(at[:-1], root)
    close = difflib.get_close_matches(str(at[-1]), known, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else f" (known keys: {', '.join(known)})"


def _keys_at(at: Location, root: type[BaseModel]) -> list[str]:
    model = root
    for part in at:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        nested = _model_in(field.annotation)
        if nested is None:
            return []
        model = nested
    return [f.alias or name for name, f in model.model_fields.items() if name != "source"]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
