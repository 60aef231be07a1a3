"""The cyclic garbage collector paused while one large piece of work builds many objects that live on.

Validating a cohort's facts and deciding a cohort each build many objects and keep most of them
(fact models, decisions). With the collector on, every young collection that such a burst
triggers also walks what was kept so far, now and then the whole heap: the cost per subject grew
with the cohort (validation 66 µs per subject at 1,000 and 520 µs at 10,000; evaluation alike).
Neither makes reference cycles, so nothing waits for the collector meanwhile; it is on again,
as it was, once the last piece of work in flight (any thread) is done.

Importing the engine is such a burst too: its modules build thousands of classes and functions
(dataclasses, pydantic models) that live as long as the process, and the collector walked them
some 60 times while `policy evaluate` imported them (about 8 ms of its 180). `long_lived` pauses
the collector around those imports and then files what they built straight into the oldest
generation, where young collections never walk it again (as if it had survived them).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

__all__ = ["collector_paused", "long_lived"]

_lock = threading.Lock()
_pauses = 0  # pieces of work in flight that paused the collector
_resume = False  # whether the collector was on when the first of them paused it


class _Paused:
    """The context manager `collector_paused()` returns (a class, not a generator: it is entered once per
    evaluation, small ones included)."""

    __slots__ = ()

    def __enter__(self) -> None:
        global _pauses, _resume
        with _lock:
            if _pauses == 0:
                _resume = gc.isenabled()
                gc.disable()
            _pauses += 1

    def __exit__(self, *_: object) -> None:
        global _pauses
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                gc.enable()


_PAUSED = _Paused()


def collector_paused() -> AbstractContextManager[None]:
    """The cyclic collector off inside the block (on again after the last block in flight, if it was on)."""
    return _PAUSED


@contextmanager
def long_lived() -> Iterator[None]:
    """The collector off inside the block (as `collector_paused`), and every object tracked by then
    moved to the oldest generation at its end (`gc.freeze()` then `gc.unfreeze()`): nothing is kept
    from the collector, full collections still walk it all. Not done if something of the process
    is frozen already (a server that froze its heap before forking keeps it frozen)."""
    with collector_paused():
        yield
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
