"""The cyclic garbage collector paused while one large piece of work builds many objects that live on.

Validating a cohort's facts and deciding a cohort each build many objects and keep most of them
(fact models, decisions). With the collector on, every young collection that such a burst
triggers also walks what was kept so far, now and then the whole heap: the cost per subject grew
with the cohort (validation 66 µs per subject at 1,000 and 520 µs at 10,000; evaluation alike).
Neither makes reference cycles, so nothing waits for the collector meanwhile; it is on again,
as it was, once the last piece of work in flight (any thread) is done.

What the work built is then filed straight into the oldest generation (`gc.freeze()` then
`gc.unfreeze()`, as if it had survived the young collections): otherwise the first young
collection after the pause walks all of it, then the middle generation's does again, and those
two walks cost about 6% of a 200-subject evaluation (0.5 µs a decision) for objects that either
live as long as the result or are freed by reference counting when it is dropped. Nothing is kept
from the collector: full collections still walk the oldest generation, and a reference cycle
anyone dropped meanwhile is freed by the next of them rather than a young one. It is not done
where something of the process is frozen already (a server that froze its heap before forking
keeps it frozen; once one is seen, never again in that process), nor where the collector was off.

Importing the engine is such a burst too: its modules build thousands of classes and functions
(dataclasses, pydantic models) that live as long as the process, and the collector walked them
some 60 times while `policy evaluate` imported them (about 8 ms of its 180); `long_lived` names
that use of the same pause.
"""

from __future__ import annotations

import gc
import threading
from contextlib import AbstractContextManager

__all__ = ["collector_paused", "long_lived"]

_lock = threading.Lock()
_pauses = 0  # pieces of work in flight that paused the collector
_resume = False  # whether the collector was on when the first of them paused it
_frozen_seen = False  # something of the process was seen frozen: nothing is filed as old any more


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
                _file_as_old()
                gc.enable()


def _file_as_old() -> None:
    """What the work built, to the oldest generation (see above), unless something of the process is frozen.
    Counting the frozen objects walks them all (some 350,000 in `policy`, which freezes its heap): once some are
    seen, never again (nor filed: a process that froze its heap once is taken to keep doing so)."""
    global _frozen_seen
    if _frozen_seen:
        return
    if gc.get_freeze_count():
        _frozen_seen = True
        return
    gc.freeze()
    gc.unfreeze()


_PAUSED = _Paused()


def collector_paused() -> AbstractContextManager[None]:
    """The cyclic collector off inside the block (on again after the last block in flight, if it was on, with
    what was built meanwhile filed in the oldest generation)."""
    return _PAUSED


def long_lived() -> AbstractContextManager[None]:
    """The collector off inside the block, and every object tracked by then moved to the oldest generation at
    its end: `collector_paused()`, named for what is built once and kept (the engine's imports)."""
    return _PAUSED
