"""The cyclic garbage collector, tuned for a process that serves requests.

A chunk PUT allocates some ten thousand container objects (validated models, their dicts,
the dumped events), none of them in a cycle and all dropped when the answer is sent. At
CPython's default young-generation threshold (700) that is a dozen collections per request,
each promoting the request's live objects a generation up, so the older collections that
follow walk them again: about a millisecond of a 1,000-event chunk's 6, and the tail of
its latency. What the cold start built lives as long as the process and is frozen out of
every scan; a young generation large enough for one request collects about once a request.
"""

from __future__ import annotations

import gc
from typing import Final

YOUNG_GENERATION_THRESHOLD: Final = 50_000


def settle_after_init() -> None:
    """Call once, at the end of a process's initialization."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
