"""Dates from text, file names and <time> values, checked against real ICE/EOIR spellings."""

from __future__ import annotations

from datetime import date

import pytest

from watcher.dates import (
    date_after_label,
    date_from_filename,
    date_from_text,
    date_from_time,
    plausible,
)

TODAY = date(2026, 4, 15)


@pytest.mark.parametrize(
    "text",
    [
        "Sept. 25, 2025",
        "September 25, 2025",
        "Sep 25 2025",
        "Sep. 25 2025",
        "09/25/2025",
        "9/25/2025",
        "2025-09-25",
        "25 September 2025",
        "25 Sept. 2025",
        "Thursday, September 25th, 2025",
        "Released on sept 25, 2025 by ERO",
    ],
)
def test_date_from_text_formats(text: str) -> None:
    assert date_from_text(text, TODAY) == date(2025, 9, 25)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # ice_node_62047's title
        ("Detainee Death Review Report (OPR) - Kesley Vial (Dec. 8, 2022)", date(2022, 12, 8)),
        # ice_node_62041: a day range gives its first day
        ("Berks County Residential Center – Aug. 9-11, 2022", date(2022, 8, 9)),
        # ice_node_62001: the real typo "28-20" still gives the first day
        (
            "2022 Baker County Sheriff’s Office, Macclenny, FL - Oct. 28-20, 2022",
            date(2022, 10, 28),
        ),
        # ice_node_62037's <time> text
        ("Mon, 12/12/2022 - 10:54", date(2022, 12, 12)),
        # the first plausible date wins; a future one is skipped
        ("Due Dec. 8, 2027; first issued Jan 2, 2020", date(2020, 1, 2)),
    ],
)
def test_date_from_text_real_titles(text: str, expected: date) -> None:
    assert date_from_text(text, TODAY) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "B-Z-R-, 28 I&N Dec. 424 (A.G. 2021) ID 4033 (PDF)",  # EOIR row: years, no dates
        "27 I&N Dec. 316, 338 (A.G. 2018)",
        "FY2025 Detention Statistics (XLSX, 1.2 MB)",
        "September 2025",
        "13/45/2025",
        "February 30, 2024",
        "Summary 12 2024",  # "mar" inside a word is not March
    ],
)
def test_date_from_text_none(text: str) -> None:
    assert date_from_text(text, TODAY) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("FY25_detentionStats09252025.xlsx", date(2025, 9, 25)),
        ("FY24_detentionStats09302024.xlsx", date(2024, 9, 30)),
        ("FY22_detentionStats03172022b.xlsx", date(2022, 3, 17)),  # "b": a re-issue
        ("FY21_detention-stats_0301.xlsx", date(2021, 3, 1)),  # MMDD, year from FY21
        ("FY21_detention-stats_1105.xlsx", date(2020, 11, 5)),  # Oct-Dec fall in FY-1
        ("FY23_detentionStats01192022.xlsx", date(2023, 1, 19)),  # written year is a typo
        ("FY2023_detentionStats01192022.xlsx", date(2023, 1, 19)),
        ("2024_1108_detention_report.pdf", date(2024, 11, 8)),
        ("24-0607_weekly.pdf", date(2024, 6, 7)),
        ("report_2025-09-25.pdf", date(2025, 9, 25)),
        ("report_20250925.csv", date(2025, 9, 25)),
        ("stats-09-25-2025.xlsx", date(2025, 9, 25)),
        # ice_node_62010's contract file: the contract number is not a date
        ("70CDCR21D00000004_08242022_BrowardCDF_PompanoBeachFL.pdf", date(2022, 8, 24)),
        (
            "https://www.ice.gov/doclib/detention/FY25_detentionStats09252025.xlsx",
            date(2025, 9, 25),
        ),
    ],
)
def test_date_from_filename(name: str, expected: date) -> None:
    assert date_from_filename(name, TODAY) == expected


@pytest.mark.parametrize(
    "name",
    [
        "ice_node_62047",  # node ids
        "62047",
        "dl",  # EOIR /media/1208956/dl
        "1208956",
        "4070.pdf",  # EOIR decision numbers
        "4074_amended_2.pdf",
        "4066_edit.pdf",
        "2022-BerksCountyResidentialCenter.pdf",  # a year is not a date
        "BakerCountySheriffsOffice_2022.pdf",
        "ddrKesleyVial_opr.pdf",
        "g-28.pdf",
        "12345678.pdf",  # month 12, day 34
        "report_0301.xlsx",  # MMDD without a fiscal year
        "FY21_report_2021.xlsx",  # "2021" is not MMDD
        "report_20990101.pdf",  # in the future
        "report_19850101.pdf",  # before 1990
        "",
    ],
)
def test_date_from_filename_none(name: str) -> None:
    assert date_from_filename(name, TODAY) is None


def test_fiscal_year_correction_only_when_plausible() -> None:
    # Corrected to 2026-01-19, which is after "today": unreliable, so no date at all.
    assert date_from_filename("FY26_detentionStats01192025.xlsx", date(2025, 12, 1)) is None
    assert date_from_filename("FY26_detentionStats01192025.xlsx", date(2026, 2, 1)) == date(
        2026, 1, 19
    )


def test_fiscal_year_grace_after_year_end() -> None:
    # Year-end files come out after the fiscal year closes: kept as written...
    assert date_from_filename("FY24_detentionStats10152024.xlsx", TODAY) == date(2024, 10, 15)
    # ...but not a year later: then the written year is wrong, as in the FY23 file.
    assert date_from_filename("FY23_detentionStats01192025.xlsx", TODAY) == date(2023, 1, 19)


def test_filename_future_date_rejected_relative_to_today() -> None:
    assert date_from_filename("FY25_detentionStats09252025.xlsx", date(2025, 9, 24)) is None
    assert date_from_filename("FY25_detentionStats09252025.xlsx", date(2025, 9, 25)) == date(
        2025, 9, 25
    )


def test_plausible() -> None:
    assert plausible(date(1990, 1, 1), TODAY)
    assert plausible(TODAY, TODAY)
    assert not plausible(date(1989, 12, 31), TODAY)
    assert not plausible(date(2026, 4, 16), TODAY)
    assert not plausible(date(1970, 1, 1), TODAY)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-02-04T13:51:38-05:00", date(2026, 2, 4)),  # ice.gov "Updated:" block
        ("2022-12-12T15:54:30Z", date(2022, 12, 12)),  # ice_node_62037
        ("2024-05-07", date(2024, 5, 7)),
        ("May 7, 2024", date(2024, 5, 7)),  # no datetime attribute: the text
        ("1970-01-01T00:00:00Z", None),  # Drupal's empty date
        ("2031-01-01", None),
        ("2024-13-01", None),
        ("soon", None),
    ],
)
def test_date_from_time(value: str, expected: date | None) -> None:
    assert date_from_time(value, TODAY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Updated: 02/04/2026", date(2026, 2, 4)),
        ("Updated December 9, 2021", date(2021, 12, 9)),  # EOIR 2021
        ("Last updated September 25, 2025", date(2025, 9, 25)),
        ("Last Updated: Sept. 25, 2025", date(2025, 9, 25)),
        ("Page last reviewed: 09/25/2025", date(2025, 9, 25)),
        ("Page last updated on 2025-09-25", date(2025, 9, 25)),
        ("This list is updated monthly.", None),
        ("Updated monthly since September 25, 2025, when", None),
        ("Statistics were updated on September 25, 2025", None),  # label not at the start
    ],
)
def test_date_after_label(text: str, expected: date | None) -> None:
    assert date_after_label(text, TODAY) == expected
