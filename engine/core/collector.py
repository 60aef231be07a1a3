"""The cyclic garbage collector paused while one large piece of work builds many objects that live on.

Validating a cohort's facts and deciding a cohort each build many objects and keep most of them
(fact models, decisions). With the collector on, every young collection that such a burst
triggers also walks what was kept so far, now and then the whole heap: the cost per subject grew
with the cohort (validation 66 µs per subject at 1,000 and 520 µs at 10,000; evaluation alike).
Neither makes reference cycles, so nothing waits for the collector meanwhile; it is on again,
as it was, once the last piece of work in flight (any thread) is done.

After a large cohort's facts are validated, the first young collections walked all of them, then
the middle generation's did again (validating 100,000 consortia took 2.3 times as long per subject
as 1,000). Deciding a large cohort alike: the one young collection right after it walked all that
the result keeps, and through it the facts it points to, scattered over the heap (0.5 s, 5 µs a
decision, at 100,000 subjects). Validating the facts of a cohort of `MANY` subjects or more, and
deciding a cohort of `MANY_DECIDED` or more, is therefore `building_many`: what it built is filed
straight into the oldest generation, as if it had survived those collections, and the young
generations are collected just before the work, so that no garbage made before it is filed along
(filing after every evaluation, the smallest included, without collecting first did that: a server
reloading its policy and evaluating grew without bound, since only full collections, which then
came rarely, freed the old policies' reference cycles). Neither the facts nor a result make
reference cycles: dropped, they are freed at once, wherever they are filed.

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

__all__ = ["collector_paused", "building_many", "long_lived", "MANY", "MANY_DECIDED"]

MANY = 1_000  # subjects from which validating a cohort's facts is `building_many`
# subjects from which deciding a cohort is `building_many`: from about 80, what the result keeps passes the young
# generation's threshold (700 objects) and sets off a collection that walks it all (7% of a 100- or 200-subject
# evaluation, measured); below, nothing is saved, and nothing lost
MANY_DECIDED = 100

_lock = threading.Lock()
_pauses = 0  # pieces of work in flight that paused the collector
_resume = False  # whether the collector was on when the first of them paused it


class _Paused:
    """The context manager `collector_paused()` returns (a class, not a generator: it is entered once per
    evaluation, small ones included), and `building_many()` (`files`: one per use, as it remembers whether
    it files what the work built)."""

    __slots__ = ("files", "filing")

    def __init__(self, files: bool = False) -> None:
        self.files = files
        self.filing = False

    def __enter__(self) -> None:
        global _pauses, _resume
        with _lock:
            if _pauses == 0:
                _resume = gc.isenabled()
                self.filing = self.files and _resume
                if self.filing:
                    gc.collect(1)  # what was garbage before the work is freed now, not filed with what it builds
                gc.disable()
            _pauses += 1

    def __exit__(self, *_: object) -> None:
        global _pauses
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _resume:
                if self.filing and gc.get_freeze_count() == 0:
                    gc.freeze()
                    gc.unfreeze()
                gc.enable()


_PAUSED = _Paused()


def collector_paused() -> AbstractContextManager[None]:
    """The cyclic collector off inside the block (on again after the last block in flight, if it was on)."""
    return _PAUSED


def building_many() -> AbstractContextManager[None]:
    """`collector_paused()` for one piece of work that builds very many objects which live on (a large cohort's
    facts): the young generations are collected first (garbage made before it is freed now), and what the work
    built is filed in the oldest generation at its end, as `long_lived` files the engine's imports (see above)."""
    return _Paused(files=True)


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
