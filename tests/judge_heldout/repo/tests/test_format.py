import pytest
from durations import format_duration


def test_format_zero():
    assert format_duration(0) == "0s"


def test_format_largest_unit_first():
    assert format_duration(5400) == "1h 30m"
    assert format_duration(90061) == "1d 1h 1m 1s"


def test_format_rejects_negative():
    with pytest.raises(ValueError, match="negative"):
        format_duration(-1)
