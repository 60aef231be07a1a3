"""Cohort stages: rank the pool, count the slots, account for slots left open.

The reduce step after the per-subject map. Shared by every backend, so both decide the same
ranking. Subjects tied on every ranking key share a rank (competition ranking: 1, 2, 2, 4), so the
result never depends on the order of subjects in the input; a tie across the last slot is
reported in the stage summary.

A subject whose ranking keys cannot all be computed (missing facts), or whose membership of the
pool is undetermined, does not stop the ranking: its keys range over what the fact model allows
(`engine.evaluation.uncertain`), so every rank becomes an interval `best..worst` (competition
rank: 1 + the subjects surely ranked before it .. 1 + those possibly ranked before it). A rank
that is the same for every completion is known; the others are `ranges`, with the facts that
would settle each (`settling`, as `id: path`). Beyond `MAX_COMPARISONS` pairs of an uncertain
subject and another, the ranking gives up bounding and leaves every rank open (as a ranking
without intervals would).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.evaluation.compiler import Missing, StageState
from engine.evaluation.result import Tie
from engine.evaluation.uncertain import Interval, possibly_before, surely_before

__all__ = ["Entry", "Ranking", "rank_pool", "ties_of", "MAX_COMPARISONS"]

MAX_COMPARISONS = 5_000_000  # pairs (uncertain subject, other subject) the ranking compares at most


@dataclass(slots=True)
class Entry:
    """One subject as ranking sees it: pool membership and key values (or Missing).

    Plain data, slotted and not frozen: one is built per subject of every cohort (a frozen
    dataclass's `__init__` costs several times a plain one's); nothing writes to it once built."""

    id: str
    in_pool: bool | Missing
    keys: tuple[Any, ...] | Missing
    intervals: tuple[Interval, ...] | None = None  # the keys as intervals, when some are missing
    unbounded: tuple[str, ...] = ()  # missing facts of its keys that the fact model does not bound

    @property
    def certain(self) -> bool:
        return self.in_pool is True and not isinstance(self.keys, Missing)

    @property
    def gaps(self) -> frozenset[str]:
        """The missing facts that make its place in the ranking uncertain."""
        found: frozenset[str] = frozenset()
        for part in (self.in_pool, self.keys):
            if isinstance(part, Missing):
                found |= part.paths
        return found

    def bounds(self) -> tuple[Interval, ...] | None:
        if not isinstance(self.keys, Missing):
            return tuple(Interval.point(k) for k in self.keys)
        return self.intervals


@dataclass(slots=True)
class Ranking:
    """The pool ranked (the reduce step's answer): each subject's `stage.*`, the ranking's keys and order, its
    cut-off, what leaves ranks open, and what allocation gave. Plain data, slotted and not frozen: one is made
    per evaluation, small ones included (a frozen dataclass's `__init__` costs 1.4 µs for these eleven fields);
    nothing writes to one once made (allocation makes another, `dataclasses.replace`)."""

    infos: dict[str, StageState]
    keys: dict[str, tuple[Any, ...]]
    order: tuple[tuple[str, int | None], ...]
    cut_off: tuple[Any, ...] | None
    tie_at_cut_off: bool
    missing: tuple[str, ...]
    allocated: Any = None  # a stage with `capacity` or `tracks`: what allocation gave (`allocation.Allocated`)
    ranges: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)  # id -> (best, worst) rank
    settling: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)  # id -> facts, `other: path`
    unbounded: tuple[str, ...] = ()  # missing ranking facts without bounds in the fact model, `id: path`
    bounded: bool = True  # False: too many uncertain subjects to bound the ranks (every rank left open)
    exposed: frozenset[str] = frozenset()  # ids some uncertain subject may be ranked before (or equal to)


def rank_pool(stage_id: str, entries: Sequence[Entry], descending: Sequence[bool], slots: int | None) -> Ranking:
    """Rank the subjects in the pool by their keys; everyone else gets no rank."""
    pool = [e for e in entries if e.in_pool is True]
    uncertain = [
        e for e in entries if e.in_pool is not False and (e.in_pool is not True or e.keys.__class__ is Missing)
    ]
    missing = sorted({f"{e.id}: {p}" for e in uncertain for p in e.gaps}) if uncertain else []
    unbounded = tuple(sorted({f"{e.id}: {p}" for e in uncertain for p in e.unbounded})) if uncertain else ()
    ranks: dict[str, int | None] = {}
    ranges: dict[str, tuple[int, int]] = {}
    settling: dict[str, tuple[str, ...]] = {}
    ordered: list[Entry] = []
    exposed: frozenset[str] = frozenset(e.id for e in pool) if uncertain else frozenset()
    bounded = not uncertain or (
        all(e.bounds() is not None for e in uncertain) and len(uncertain) * len(entries) <= MAX_COMPARISONS
    )
    if not uncertain:
        ordered = _ordered(pool, descending)
        rank, before = 0, None
        for position, entry in enumerate(ordered, start=1):
            these = entry.keys
            if these != before:  # competition ranking: tied keys share the rank of the first of them
                rank, before = position, these
            ranks[entry.id] = rank
    elif bounded:
        spans = _spans(pool, uncertain, descending)
        for id, (best, worst, unsettled) in spans.items():
            ranks[id] = best if best == worst else None
            if best != worst:
                ranges[id] = (best, worst)
                settling[id] = tuple(sorted({f"{t.id}: {p}" for t in unsettled for p in t.gaps}))
        ordered = sorted(pool, key=lambda e: (*spans[e.id][:2], e.id))
        exposed = frozenset(e.id for e in pool if not e.certain or _exposed(e, uncertain, descending))
    size, rank_of = len(pool), ranks.get
    infos = {  # `stage.*` of each subject (its membership of the pool: None where undetermined)
        # by position but the last: one per subject, and keywords cost half as much again as the object's making
        e.id: StageState(stage_id, e.in_pool if e.in_pool.__class__ is bool else None, rank_of(e.id), size, slots=slots)
        for e in entries
    }
    cut_off, tie = _cut_off(ordered, ranks, slots) if not uncertain else (None, False)
    order = tuple((e.id, rank_of(e.id)) for e in ordered)
    keys = {e.id: e.keys for e in ordered if e.keys.__class__ is not Missing}
    return Ranking(
        infos=infos,
        keys=keys,  # type: ignore[arg-type]
        order=order,
        cut_off=cut_off,
        tie_at_cut_off=tie,
        missing=tuple(missing),
        ranges=ranges,
        settling=settling,
        unbounded=unbounded,
        bounded=bounded,
        exposed=exposed,
    )


def _exposed(s: Entry, uncertain: list[Entry], descending: Sequence[bool]) -> bool:
    """Whether an uncertain subject may come before `s` or tie with it (so may change what `s` is given)."""
    mine = s.bounds()
    for t in uncertain:
        theirs = t.bounds()
        if mine is None or theirs is None or not possibly_before(mine, theirs, descending):
            return True
    return False


def _ordered(pool: list[Entry], descending: Sequence[bool]) -> list[Entry]:
    """The pool in ranking order: by each key in its direction (the first that differs decides), then by id;
    stable sorts from the last criterion to the first (a reversed sort keeps equal entries in their order)."""
    ordered = sorted(pool, key=_id_of)
    if descending and all(d == descending[0] for d in descending):  # one direction: the keys compared as a tuple
        ordered.sort(key=_keys_of, reverse=descending[0])
        return ordered
    for index in reversed(range(len(descending))):
        ordered.sort(key=lambda e: e.keys[index], reverse=descending[index])  # type: ignore[index]
    return ordered


def _keys_of(entry: Entry) -> Any:
    return entry.keys


def _id_of(entry: Entry) -> str:
    return entry.id


def _spans(
    pool: list[Entry], uncertain: list[Entry], descending: Sequence[bool]
) -> dict[str, tuple[int, int, list[Entry]]]:
    """Each pool member's rank interval (best, worst) and the uncertain subjects that leave it open."""
    known = _ordered([e for e in pool if e.certain], descending)
    spans: dict[str, tuple[int, int, list[Entry]]] = {}
    rank = 0
    for position, s in enumerate(known):
        if not position or known[position - 1].keys != s.keys:
            rank = position + 1
        spans[s.id] = _against(s, rank, uncertain, descending)
    members = [e for e in pool if not e.certain]
    for s in members:
        others = known + [t for t in uncertain if t is not s]
        best, worst, unsettled = _against(s, 1, others, descending)
        open_ = best != worst
        spans[s.id] = (best, worst, ([s] if open_ else []) + [t for t in unsettled if not t.certain])
    return spans


def _against(s: Entry, rank: int, others: list[Entry], descending: Sequence[bool]) -> tuple[int, int, list[Entry]]:
    """`s`'s rank interval, given its rank among subjects already counted (`rank`) and `others` to compare."""
    mine = s.bounds()
    best = worst = rank
    unsettled = []
    for t in others:
        theirs = t.bounds()
        if theirs is None or mine is None:
            continue
        if not possibly_before(theirs, mine, descending):
            continue
        worst += 1
        if t.in_pool is True and surely_before(theirs, mine, descending):
            best += 1
        else:
            unsettled.append(t)
    return best, worst, unsettled


def _cut_off(
    ordered: list[Entry], ranks: dict[str, int | None], slots: int | None
) -> tuple[tuple[Any, ...] | None, bool]:
    if not slots or not ordered:
        return None, False
    last = ordered[min(slots, len(ordered)) - 1]
    tie = len(ordered) > slots and ordered[slots].keys == last.keys
    return last.keys, tie  # type: ignore[return-value]


def ties_of(ranking: Ranking, slots: int | None) -> dict[str, tuple[Tie, ...]]:
    """For each ranked subject, its neighbours in the order that share its first key, and what told them apart."""
    order = [(id, rank) for id, rank in ranking.order if rank is not None and id in ranking.keys]
    found: dict[str, list[Tie]] = {}
    for position, ((a, rank_a), (b, rank_b)) in enumerate(zip(order, order[1:], strict=False), start=1):
        ka, kb = ranking.keys[a], ranking.keys[b]
        if not ka or ka[0] != kb[0]:
            continue
        key = next((i for i, (x, y) in enumerate(zip(ka, kb, strict=True)) if x != y), None)
        across = slots is not None and position == slots  # the last place and the first without one
        mine, theirs = (ka[key], kb[key]) if key is not None else (ka[0], kb[0])
        found.setdefault(a, []).append(
            Tie(other=b, other_rank=rank_b, key=key, mine=mine, theirs=theirs, across_last_place=across, shared=ka[0])
        )
        found.setdefault(b, []).append(
            Tie(other=a, other_rank=rank_a, key=key, mine=theirs, theirs=mine, across_last_place=across, shared=ka[0])
        )
    return {id: tuple(ties) for id, ties in found.items()}
