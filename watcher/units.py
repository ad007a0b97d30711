"""The units targets.yaml is written in: durations, sizes and shrink thresholds.

Durations are ``90s``, ``30m``, ``6h`` or ``14d``: short, and unambiguous in YAML (a bare
number could be seconds or hours, so it is refused with a suggestion).
"""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import BaseModel, ConfigDict

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WORDS = {
    "sec": "s",
    "second": "s",
    "min": "m",
    "minute": "m",
    "hour": "h",
    "hr": "h",
    "day": "d",
    "week": "w",
    "wk": "w",
}


def parse_duration(value: object) -> timedelta:
    """Durations are written ``90s``, ``30m``, ``6h`` or ``14d``: short, and unambiguous in YAML."""
    if isinstance(value, timedelta):
        return value
    text = str(value).strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd])", text)
    if m and not isinstance(value, bool):
        return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    raise ValueError(f"invalid duration {text!r} (use {_suggest_duration(text)})")


def _suggest_duration(text: str) -> str:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]+?)s?", text.lower())
    if m:
        unit = _WORDS.get(m.group(2)) or _WORDS.get(m.group(2)[:3]) or ""
        n = float(m.group(1))
        if unit == "w":
            return f"{n * 7:g}d"
        if unit:
            return f"{n:g}{unit}"
    if re.fullmatch(r"\d+", text):
        return f"{text}s, or e.g. 30m, 6h, 14d"
    return "e.g. 90s, 30m, 6h, 14d"


def parse_size(value: object) -> int:
    """Byte sizes: ``20MB``, ``512KB``, ``1GB`` or a plain number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)?", str(value).strip(), re.IGNORECASE)
    if not m:
        raise ValueError(f"invalid size {value!r} (use e.g. 20MB)")
    scale = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}[(m.group(2) or "B").upper()]
    return int(float(m.group(1)) * scale)


class Threshold(BaseModel):
    """A drop that counts as a shrink: an absolute amount (``3``) or a share (``25%``)."""

    model_config = ConfigDict(frozen=True)
    value: float
    relative: bool

    def exceeded(self, before: float, after: float) -> bool:
        drop = before - after
        if drop <= 0:
            return False
        if self.relative:
            return before > 0 and drop / before >= self.value
        return drop >= self.value

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"{self.value:g}"


def parse_threshold(value: object) -> Threshold:
    if isinstance(value, Threshold):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return Threshold(value=float(value), relative=False)
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", str(value).strip())
    if m and float(m.group(1)) <= 100:
        return Threshold(value=float(m.group(1)) / 100, relative=True)
    raise ValueError(f"invalid threshold {value!r} (use a count like 3 or a share like 25%)")
