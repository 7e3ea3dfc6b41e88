from __future__ import annotations

from datetime import date, timedelta

import pytest

from courriel.errors import ValidationError
from courriel.units import format_size, parse_date, parse_duration, parse_size

GB = 1024**3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3G", 3 * GB),
        ("3GB", 3 * GB),
        ("1024M", GB),
        ("1024 MB", GB),
        ("50M", 50 * 1024**2),
        ("123", 123),
        ("1.5G", int(1.5 * GB)),
        ("unlimited", None),
        ("Illimité", None),
    ],
)
def test_sizes(text: str, expected: int | None) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["lots", "-3G", "3X", "", "G3"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_size(text)


def test_size_display_like_the_manual() -> None:
    assert format_size(76 * 1024) == "76 kB"
    assert format_size(30 * GB) == "30 GB"
    assert format_size(1024 * 1024**2) == "1 GB"
    assert format_size(None) == "Unlimited"


def test_durations_and_dates() -> None:
    assert parse_duration("10m") == timedelta(minutes=10)
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration("30") == timedelta(minutes=30)
    assert parse_date("19/09/2010") == parse_date("2010-09-19") == date(2010, 9, 19)
    assert parse_date("19/Sep/2010") == date(2010, 9, 19)
    assert parse_date("any") is None
    for bad in ("31/02/2010", "tomorrow"):
        with pytest.raises(ValidationError):
            parse_date(bad)
    with pytest.raises(ValidationError):
        parse_duration("soon")
