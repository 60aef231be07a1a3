"""Cohort stages: rank the pool, count the slots, account for slots left open.

The reduce step after the per-subject map. Shared by every backend, so both decide the same
ranking. Subjects tied on every ranking key share a rank (competition ranking: 1, 2, 2, 4), so the
result never depends on the order of subjects in the input; a tie across the last slot is
reported in the stage summary.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.evaluation.compiler import Missing
from engine.language.ir import StageInfo

__all__ = ["Entry", "Ranking", "rank_pool"]


@dataclass(frozen=True)
class Entry:
    """One subject as ranking sees it: pool membership and key values (or Missing)."""

    id: str
    in_pool: bool | Missing
    keys: tuple[Any, ...] | Missing


@dataclass(frozen=True)
class Ranking:
    infos: dict[str, StageInfo]
    keys: dict[str, tuple[Any, ...]]
    order: tuple[tuple[str, int | None], ...]
    cut_off: tuple[Any, ...] | None
    tie_at_cut_off: bool
    missing: tuple[str, ...]
    allocated: Any = None  # a stage with `capacity` or `tracks`: what allocation gave (`allocation.Allocated`)


def _compare(descending: Sequence[bool], a: tuple[Any, ...], b: tuple[Any, ...]) -> int:
    for desc, x, y in zip(descending, a, b, strict=True):
        if x != y:
            before = x > y if desc else x < y
            return -1 if before else 1
    return 0


def rank_pool(stage_id: str, entries: Sequence[Entry], descending: Sequence[bool], slots: int | None) -> Ranking:
    """Rank the subjects in the pool by their keys; everyone else gets no rank."""
    pool = [e for e in entries if e.in_pool is True]
    undecided = [e for e in pool if isinstance(e.keys, Missing)]
    missing = sorted({f"{e.id}: {p}" for e in undecided for p in e.keys.paths})  # type: ignore[union-attr]
    ranks: dict[str, int | None] = {}
    ordered: list[Entry] = []
    if not undecided:

        def by_keys(a: Entry, b: Entry) -> int:
            return _compare(descending, a.keys, b.keys) or (a.id > b.id) - (a.id < b.id)  # type: ignore[arg-type]

        ordered = sorted(pool, key=functools.cmp_to_key(by_keys))
        for position, entry in enumerate(ordered):
            previous = ordered[position - 1] if position else None
            same = previous is not None and previous.keys == entry.keys
            ranks[entry.id] = ranks[previous.id] if same and previous else position + 1  # type: ignore[union-attr]
    infos = {e.id: _info(stage_id, e, ranks.get(e.id), len(pool), slots) for e in entries}
    cut_off, tie = _cut_off(ordered, ranks, slots)
    order = tuple((e.id, ranks.get(e.id)) for e in ordered)
    keys = {e.id: e.keys for e in ordered}  # type: ignore[misc]
    return Ranking(infos=infos, keys=keys, order=order, cut_off=cut_off, tie_at_cut_off=tie, missing=tuple(missing))  # type: ignore[arg-type]


def _info(stage_id: str, entry: Entry, rank: int | None, pool_size: int, slots: int | None) -> StageInfo:
    in_pool = entry.in_pool if isinstance(entry.in_pool, bool) else None
    return StageInfo(id=stage_id, in_pool=in_pool, rank=rank, pool_size=pool_size, slots=slots)


def _cut_off(
    ordered: list[Entry], ranks: dict[str, int | None], slots: int | None
) -> tuple[tuple[Any, ...] | None, bool]:
    if not slots or not ordered:
        return None, False
    last = ordered[min(slots, len(ordered)) - 1]
    tie = len(ordered) > slots and ordered[slots].keys == last.keys
    return last.keys, tie  # type: ignore[return-value]
