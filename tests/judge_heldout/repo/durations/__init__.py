"""Durations written the way people type them: "45s", "1h 30m", "2d"."""

from durations.parse import format_duration, parse_duration

__all__ = ["format_duration", "parse_duration"]
