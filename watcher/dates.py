"""Publication dates from page text and from file names.

Every function is pure: ``today`` is passed in, so a check run at any hour gives the same
answer in tests and production. A wrong date is worse than no date (a date in the future
hides a stalled series; one from 1970 raises a false "stopped" alarm), so anything that is
not clearly a date, or not ``plausible``, comes back as ``None``.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

EARLIEST = date(1990, 1, 1)

MONTHS = {
    "jan": 1,
    "january": 1,
    "feb": 2,
    "february": 2,
    "mar": 3,
    "march": 3,
    "apr": 4,
    "april": 4,
    "may": 5,
    "jun": 6,
    "june": 6,
    "jul": 7,
    "july": 7,
    "aug": 8,
    "august": 8,
    "sep": 9,
    "sept": 9,
    "september": 9,
    "oct": 10,
    "october": 10,
    "nov": 11,
    "november": 11,
    "dec": 12,
    "december": 12,
}
_MONTH = r"(?P<mon>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")"

# "Sept. 25, 2025", "September 25, 2025", "Sep 25 2025", "Wednesday, June 12, 2024".
# A day range takes its first day: ICE inspection titles read "Aug. 9-11, 2022", and one
# real title has the typo "Oct. 28-20, 2022" (ice_node_62001), whose first day is still right.
_MDY = re.compile(
    r"\b"
    + _MONTH
    + r"\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?(?:\s*[-–]\s*\d{1,2})?,?\s+(?P<year>\d{4})\b",
    re.IGNORECASE,
)
_DMY = re.compile(
    r"\b(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH + r"\.?,?\s+(?P<year>\d{4})\b",
    re.IGNORECASE,
)
# "09/25/2025" (US order; ICE's "Updated" block shows 02/04/2026) and "2025-09-25".
_US_NUMERIC = re.compile(r"(?<![\d/])(?P<mon>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})(?![\d/])")
_ISO = re.compile(r"(?<![\d-])(?P<year>\d{4})-(?P<mon>\d{1,2})-(?P<day>\d{1,2})(?![\d-])")
_TEXT_PATTERNS = (_MDY, _DMY, _US_NUMERIC, _ISO)


def plausible(d: date, today: date) -> bool:
    """True for a date a publication can carry: not in the future, not before 1990."""
    return EARLIEST <= d <= today


def _make(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _month_of(token: str) -> int:
    return int(token) if token.isdigit() else MONTHS[token.lower()]


def _first_date(text: str, today: date) -> tuple[int, date] | None:
    found: list[tuple[int, date]] = []
    for pattern in _TEXT_PATTERNS:
        for m in pattern.finditer(text):
            d = _make(int(m["year"]), _month_of(m["mon"]), int(m["day"]))
            if d is not None and plausible(d, today):
                found.append((m.start(), d))
                break
    return min(found) if found else None


def date_from_text(text: str, today: date) -> date | None:
    """The first plausible date written in ``text``, or None.

    Reads "Sept. 25, 2025", "September 25, 2025", "Sep 25 2025", "25 September 2025",
    "09/25/2025" (month first, as US agencies write it) and "2025-09-25". Bare years
    ("(BIA 2021)" on EOIR rows) and month-year pairs are not dates.
    """
    found = _first_date(text, today) if text else None
    return found[1] if found else None


# --- file names --------------------------------------------------------------------------

# "FY25", "FY2025", "fy_21": the US federal fiscal year N runs 1 Oct N-1 to 30 Sep N.
_FISCAL_YEAR = re.compile(r"(?<![A-Za-z])FY[\s_-]?(\d{4}|\d{2})(?!\d)", re.IGNORECASE)
_SEP = r"[-_. ]"
# "2025-09-25", "2025_09_25" in names.
_NAME_YMD = re.compile(r"(?<!\d)(\d{4})" + _SEP + r"(\d{1,2})" + _SEP + r"(\d{1,2})(?!\d)")
# "09-25-2025".
_NAME_MDY = re.compile(r"(?<!\d)(\d{1,2})" + _SEP + r"(\d{1,2})" + _SEP + r"(\d{4})(?!\d)")
# "20250925" or "09252025" (FY25_detentionStats09252025.xlsx; letters may touch it, as in
# FY22_detentionStats03172022b.xlsx, where the trailing "b" marks a re-issue).
_NAME_EIGHT = re.compile(r"(?<!\d)(\d{8})(?!\d)")
# "2024_1108_..." : year, then month and day.
_NAME_Y_MD = re.compile(r"(?<!\d)(\d{4})[-_](\d{2})(\d{2})(?!\d)")
# "24-0607_..." : two-digit year, then month and day; only at the start of the name or
# after "_" or a space, so "form-10-0301" inside a name is not read as a date.
_NAME_YY_MD = re.compile(r"(?:^|(?<=[_\s]))(\d{2})[-_](\d{2})(\d{2})(?!\d)")
# "0301" in FY21_detention-stats_0301.xlsx: month and day only, year from the fiscal year.
_NAME_MD = re.compile(r"(?<!\d)(\d{2})(\d{2})(?!\d)")

# How long after its fiscal year ends a file for that year may still be dated: year-end
# figures are finalised and re-issued in the following months.
FISCAL_GRACE = timedelta(days=182)


def _fiscal_year(name: str) -> tuple[int | None, str]:
    """The fiscal year named in ``name`` and the name with that token blanked out."""
    m = _FISCAL_YEAR.search(name)
    if not m:
        return None, name
    digits = m.group(1)
    fy = int(digits) if len(digits) == 4 else (1900 if int(digits) >= 90 else 2000) + int(digits)
    return fy, name[: m.start()] + "_" * (m.end() - m.start()) + name[m.end() :]


def _in_fiscal_year(month: int, fy: int) -> int:
    """The calendar year in which ``month`` falls during fiscal year ``fy``."""
    return fy - 1 if month >= 10 else fy


def _written_dates(name: str) -> list[date]:
    """Every full date spelled in ``name``, most explicit forms first."""
    out: list[date | None] = []
    out += [_make(int(y), int(mo), int(d)) for y, mo, d in _NAME_YMD.findall(name)]
    out += [_make(int(y), int(mo), int(d)) for mo, d, y in _NAME_MDY.findall(name)]
    for digits in _NAME_EIGHT.findall(name):
        year_first = int(digits[:4])
        if 1990 <= year_first <= 2099:
            out.append(_make(year_first, int(digits[4:6]), int(digits[6:])))
        else:
            out.append(_make(int(digits[4:]), int(digits[:2]), int(digits[2:4])))
    out += [_make(int(y), int(mo), int(d)) for y, mo, d in _NAME_Y_MD.findall(name)]
    out += [_make(2000 + int(y), int(mo), int(d)) for y, mo, d in _NAME_YY_MD.findall(name)]
    return [d for d in out if d is not None and d.year >= EARLIEST.year]


def date_from_filename(name: str, today: date) -> date | None:
    """The release date a file name carries, or None.

    Real ICE detention-statistics names, and what they give:

    - ``FY25_detentionStats09252025.xlsx`` -> 2025-09-25 (MMDDYYYY)
    - ``FY22_detentionStats03172022b.xlsx`` -> 2022-03-17 (the "b" marks a re-issue)
    - ``FY21_detention-stats_0301.xlsx`` -> 2021-03-01: only month and day are written;
      the year comes from the fiscal year (FY21 is Oct 2020 - Sep 2021, so months 10-12
      fall in 2020 and months 1-9 in 2021).
    - ``FY23_detentionStats01192022.xlsx`` -> 2023-01-19. The written date is in FY22,
      and an FY23 file cannot be released before FY23 begins, so the written year is a
      typo. Decision: a date that falls before its fiscal year starts, or more than
      ``FISCAL_GRACE`` after it ends, is unreliable; we keep its month and day and take
      the year from the fiscal year, and return that only if it is plausible (else None).
      A date shortly after the fiscal year ends is kept as written, because year-end
      files are released after the year closes and "correcting" them would date the
      newest file a year too early (a false "stopped" alarm).

    Also ``2024_1108_...`` (2024-11-08), ``24-0607_...`` (2024-06-07), ``2025-09-25`` and
    ``20250925``. Runs of digits that are not a valid month and day in a plausible year
    are ignored, so node ids (``ice_node_62047``), EOIR download numbers
    (``/media/1208956/dl``) and decision numbers (``4070.pdf``) give None.
    """
    name = name.rsplit("/", 1)[-1]
    fy, rest = _fiscal_year(name)
    candidates = _written_dates(rest)
    if fy is not None and not candidates:
        candidates = [
            d
            for mo, dd in _NAME_MD.findall(rest)
            if (d := _make(_in_fiscal_year(int(mo), fy), int(mo), int(dd))) is not None
        ]
    for d in candidates:
        if fy is not None:
            start, end = date(fy - 1, 10, 1), date(fy, 9, 30)
            if d < start or d > end + FISCAL_GRACE:
                fixed = _make(_in_fiscal_year(d.month, fy), d.month, d.day)
                d_or_none = fixed if fixed is not None and plausible(fixed, today) else None
                if d_or_none is None:
                    continue
                d = d_or_none
        if plausible(d, today):
            return d
    return None


_ISO_PREFIX = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})")


def date_from_time(value: str, today: date) -> date | None:
    """The date of a ``<time>`` element's ``datetime`` value (else its text), or None.

    The date is taken as written, before any offset: ice.gov's
    ``2026-02-04T13:51:38-05:00`` is 4 February, the day the page itself shows.
    """
    m = _ISO_PREFIX.match(value)
    if m is None:
        return date_from_text(value, today)
    d = _make(int(m[1]), int(m[2]), int(m[3]))
    return d if d is not None and plausible(d, today) else None


# "Updated:", "Last updated", "Last Updated:", "Page last reviewed", "Last modified on".
UPDATED_LABEL = re.compile(
    r"^\W*(?:page\s+)?(?:last\s+)?(?:updated|modified|reviewed)(?:\s+on)?\b\W*", re.I
)


_WEEKDAY_PREFIX = re.compile(
    r"\W*(?:(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|nesday|rsday|urday)?\.?,?\s*)?",
    re.I,
)


def date_after_label(text: str, today: date) -> date | None:
    """The date in "Updated: Sept. 25, 2025"-style text: the label starts the text and the
    date follows it directly (a weekday may come between). None for "updated monthly"."""
    m = UPDATED_LABEL.match(text) if len(text) <= 200 else None
    rest = text[m.end() : m.end() + 60] if m else ""
    found = _first_date(rest, today) if rest else None
    return found[1] if found and _WEEKDAY_PREFIX.fullmatch(rest[: found[0]]) else None
