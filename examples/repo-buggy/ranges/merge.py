"""Merge closed integer intervals."""


def merge(intervals):
    """Merge overlapping intervals; the result is sorted and disjoint."""
    ordered = sorted(intervals)
    merged = []
    current = ordered[0] if ordered else None
    for start, end in ordered[1:]:
        if start <= current[1]:
            current = (current[0], max(current[1], end))
        else:
            merged.append(current)
            current = (start, end)
    if current is not None and not merged:
        merged.append(current)
    return merged


def overlaps(a, b):
    """True when the closed intervals a and b share at least one point."""
    return a[0] <= b[1] and b[0] <= a[1]


def total_length(intervals):
    """Length covered by the intervals, counting overlaps once."""
    return sum(end - start for start, end in merge(intervals))
