"""Interval helpers."""

from ranges.merge import merge, overlaps, total_length

__all__ = ["merge", "overlaps", "total_length"]
