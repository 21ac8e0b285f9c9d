"""Parse and format durations made of <number><unit> parts (units d, h, m, s)."""

import re

SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([dhms])")


def parse_duration(text):
    """The number of seconds in `text`, such as "90s", "1h30m" or "1h 30m".

    Raises ValueError for anything that is not a sequence of parts.
    """
    total = 0
    position = 0
    for part in _PART.finditer(text):
        if part.start() != position:
            raise ValueError(f"unexpected {text[position : part.start()]!r} in {text!r}")
        total += int(part.group(1)) * SECONDS[part.group(2)]
        position = part.end()
    if position == 0 or position != len(text):
        raise ValueError(f"not a duration: {text!r}")
    return total


def format_duration(seconds):
    """The shortest text for a whole number of seconds, largest unit first: "1h 30m"."""
    if seconds < 0:
        raise ValueError(f"negative duration: {seconds}")
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in SECONDS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts)
