import pytest
from durations import parse_duration


def test_parse_single_unit():
    assert parse_duration("45s") == 45
    assert parse_duration("2d") == 172800


def test_parse_compact_parts():
    assert parse_duration("1h30m") == 5400


def test_parse_spaced_parts():
    # Issue #17: format_duration writes "1h 30m"; parse_duration must read it back.
    assert parse_duration("1h 30m") == 5400


def test_parse_rejects_unknown_unit():
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("5x")


def test_parse_rejects_empty_text():
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("")


def test_parse_rejects_words_between_parts():
    with pytest.raises(ValueError, match="unexpected"):
        parse_duration("1h and 30m")
