"""Allocation beyond places: fill places in rank order until a capacity runs out, with reserved tracks.

The reduce step after ranking, shared by every backend. Order of filling:

1. each track, in the order the stage lists them, offers its `reserved` places to its own
   subjects (a subject belongs to the first track whose `when` holds), in rank order;
2. reserved places none of its subjects took are `release`d to the general ranking, or kept
   open (`keep_open`);
3. the remaining places (`slots` less every reservation, plus what was released; unlimited
   without `slots`) go to the rest of the pool in rank order.

With `capacity`, a subject is offered a place only if what it `takes` fits in what is left;
one that does not fit is skipped (`does_not_fit: skip`, the next that fits is offered the place)
or given what is left (`does_not_fit: partial`). Subjects tied on every ranking key are offered
places in the order of their ids, so the result never depends on the order of the input. If
any subject of the pool has a request or a track that cannot be determined (missing facts), the
whole allocation is undetermined and names those facts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.core.errors import EvaluationError
from engine.evaluation.compiled import CompiledStage, settle
from engine.evaluation.compiler import Fn, Missing, Scope
from engine.evaluation.result import UNDETERMINED, Allocation, Decision, StageSummary, TrackSummary, outcomes_of
from engine.evaluation.stages import Ranking
from engine.language.ir import Track

__all__ = [
    "Claim",
    "Allotted",
    "TrackPlaces",
    "Allocated",
    "allocate",
    "allot",
    "requested_of",
    "track_of",
    "allocation_of",
    "awarded_of",
    "allocation_fields",
    "stage_summary",
    "GENERAL",
]


@dataclass(frozen=True)
class Claim:
    """One subject of the pool as allocation sees it: what it takes (None: no capacity) and its track."""

    id: str
    takes: float | None | Missing
    track: str | None | Missing


@dataclass
class Allotted:
    allotment: str  # awarded | partial | does_not_fit | no_place
    awarded: float = 0.0
    capacity_left: float | None = None  # what was left when its turn came
    reserved: bool = False


@dataclass(frozen=True)
class TrackPlaces:
    id: str
    reserved: int
    unfilled: str  # release | keep_open


@dataclass
class Allocated:
    """What the allocation gave each subject of the pool (empty when undetermined)."""

    per: dict[str, Allotted] = field(default_factory=dict)
    left: float | None = None
    reserved_taken: dict[str, int] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    capacity: float | None = None
    places: tuple[TrackPlaces, ...] = ()
    tracks: dict[str, str | None] = field(default_factory=dict)  # subject -> its track


def _exact(value: float) -> float:
    return round(value, 10)


class _Filler:
    def __init__(self, claims: dict[str, Claim], capacity: float | None, partial: bool) -> None:
        self.claims, self.left, self.partial = claims, capacity, partial
        self.per: dict[str, Allotted] = {}

    def offer(self, id: str, reserved: bool = False) -> bool:
        """Offer `id` a place; True if it took it."""
        if self.left is None:
            self.per[id] = Allotted("awarded", reserved=reserved)
            return True
        want = float(self.claims[id].takes)  # type: ignore[arg-type]
        left = self.left
        if want <= left:
            self.left = _exact(left - want)
            self.per[id] = Allotted("awarded", awarded=want, capacity_left=left, reserved=reserved)
            return True
        if self.partial and left > 0:
            self.left = 0.0
            self.per[id] = Allotted("partial", awarded=left, capacity_left=left, reserved=reserved)
            return True
        self.per[id] = Allotted("does_not_fit", capacity_left=left)
        return False

    def placed(self, id: str) -> bool:
        return id in self.per and self.per[id].allotment in ("awarded", "partial")


def allocate(
    order: Sequence[str],
    claims: dict[str, Claim],
    slots: int | None,
    capacity: float | None,
    partial: bool,
    tracks: Sequence[TrackPlaces],
) -> Allocated:
    """Allocate places (and capacity) to the ranked pool `order`; see the module's docstring."""
    gaps = sorted(
        f"{c.id}: {p}" for c in claims.values() for v in (c.takes, c.track) if isinstance(v, Missing) for p in v.paths
    )
    if gaps:
        return Allocated(left=None, missing=tuple(gaps))
    filler = _Filler(claims, capacity, partial)
    general = None if slots is None else slots - sum(t.reserved for t in tracks)
    taken: dict[str, int] = {}
    for track in tracks:
        seats = track.reserved
        for id in order:
            if seats == 0:
                break
            if claims[id].track == track.id and filler.offer(id, reserved=True):
                seats -= 1
        taken[track.id] = track.reserved - seats
        if general is not None and track.unfilled == "release":
            general += seats
    for id in order:
        if filler.placed(id):
            continue
        if general is not None and general <= 0:
            filler.per.setdefault(id, Allotted("no_place", capacity_left=filler.left))
            continue
        if filler.offer(id) and general is not None:
            general -= 1
    return Allocated(per=filler.per, left=filler.left, reserved_taken=taken)


# --- a stage's allocation, wired into the evaluation of a cohort ---------------------------------


def _number(stage: CompiledStage, fn: Fn, scope: Scope, what: str, whole: bool) -> float:
    value = settle(fn, scope)
    if isinstance(value, Missing):
        raise EvaluationError(f"stage `{stage.stage.id}` cannot count {what}: missing {', '.join(sorted(value.paths))}")
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        raise EvaluationError(f"stage `{stage.stage.id}`: {what} must be {kind} of at least 0, got {value!r}")
    if whole and int(value) != value:
        raise EvaluationError(f"stage `{stage.stage.id}`: {what} must be {kind} of at least 0, got {value!r}")
    return float(value)


def requested_of(stage: CompiledStage, scope: Scope) -> Any:
    """What one subject asks for (`takes`, settled with its scope; None without capacity), unchecked."""
    return settle(stage.takes, scope) if stage.takes is not None else None


def _request(stage: CompiledStage, value: Any, id: str) -> float | None | Missing:
    """A subject's request, checked: a number of at least 0 (Missing stays Missing)."""
    if stage.takes is None:
        return None
    if isinstance(value, Missing):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise EvaluationError(
            f"stage `{stage.stage.id}`: `takes` of `{id}` must be a number of at least 0, got {value!r}"
        )
    return float(value)


def track_of(stage: CompiledStage, answers: dict[str, Any]) -> str | None | Missing:
    """The first track whose `when` holds (`general` for none); Missing if an earlier one is undetermined."""
    if not stage.tracks:
        return None
    for track, _, _ in stage.tracks:
        value = answers.get(f"track:{track.id}")
        if isinstance(value, Missing):
            return value
        if value is True:
            return track.id
    return GENERAL


GENERAL = "general"  # the track of a subject that is in none of the stage's tracks


def allot(
    stage: CompiledStage,
    scope: Scope,
    ranking: Ranking,
    subjects: Sequence[tuple[str, Any, str | None | Missing]],
    slots: int | None,
) -> Ranking:
    """The ranking with what allocation gives each subject in its `StageState` (unchanged without allocation).

    `subjects` are plain data: each subject's id, what it asks for (`requested_of`, unchecked; None
    for a subject outside the pool) and its track (`track_of`).
    """
    s = stage.stage
    if s.capacity is None and not s.tracks:
        return ranking
    capacity = _number(stage, stage.capacity, scope, "its capacity", whole=False) if stage.capacity else None
    places = [
        TrackPlaces(
            t.id, int(_number(stage, fn, scope, f"the places reserved for track `{t.id}`", whole=True)), t.unfilled
        )
        for t, _, fn in stage.tracks
    ]
    if slots is not None and sum(p.reserved for p in places) > slots:
        raise EvaluationError(
            f"stage `{s.id}`: its tracks reserve {sum(p.reserved for p in places)} place(s), more than its {slots}"
        )
    tracks = {id: track for id, _, track in subjects}
    claims = {
        id: Claim(id, _request(stage, requested, id), tracks[id])
        for id, requested, _ in subjects
        if ranking.infos[id].in_pool is True
    }
    if ranking.missing:
        # Ranks not all known: with a capacity alone, a subject's allotment depends only on those ranked
        # before it, so the subjects no uncertain one can precede are still allotted; the rest wait.
        # Tracks release or keep places by what happens further down: then everything waits.
        prefix = [] if places else list(_unexposed(ranking))
        allocated = allocate(
            prefix,
            {id: claims[id] for id in prefix},
            slots,
            capacity,
            s.capacity is not None and s.capacity.does_not_fit == "partial",
            places,
        )
        allocated.missing = tuple(sorted(set(allocated.missing) | set(ranking.missing)))
    else:
        allocated = allocate(
            [id for id, _ in ranking.order],
            claims,
            slots,
            capacity,
            s.capacity is not None and s.capacity.does_not_fit == "partial",
            places,
        )
    allocated.capacity = capacity
    allocated.places = tuple(places)
    allocated.tracks = {id: t for id, t in tracks.items() if not isinstance(t, Missing)}
    infos = {
        id: info.model_copy(update=_stage_fields(allocated, id, info.in_pool)) for id, info in ranking.infos.items()
    }
    missing = tuple(sorted(set(ranking.missing) | set(allocated.missing)))
    return dataclasses.replace(
        ranking,
        infos=infos,
        missing=missing,
        allocated=allocated,
        cut_off=None,
        tie_at_cut_off=_tie(ranking, allocated),
    )


def _unexposed(ranking: Ranking) -> list[str]:
    """The head of the ranking that no subject of uncertain rank can come before."""
    found = []
    for id, rank in ranking.order:
        if rank is None or id in ranking.exposed:
            break
        found.append(id)
    return found


def _tie(ranking: Ranking, allocated: Allocated) -> bool:
    """Whether two subjects tied on every ranking key were treated differently (their ids decided)."""
    placed = {id for id, given in allocated.per.items() if given.allotment in ("awarded", "partial")}
    keys = ranking.keys
    try:  # one pass over the pool (keys are numbers, text, dates: hashable)
        shared = {keys[a] for a in placed if a in keys}
        return any(keys[b] in shared for b in allocated.per if b not in placed and b in keys)
    except TypeError:  # a key of a kind that cannot be hashed: compare every pair
        return any(
            keys.get(a) == keys.get(b)
            for a in placed
            for b in allocated.per
            if b not in placed and a in keys and b in keys
        )


def _stage_fields(allocated: Allocated, id: str, in_pool: bool | None) -> dict[str, Any]:
    """What `stage.*` tells one subject about the allocation."""
    fields: dict[str, Any] = {"capacity": allocated.capacity, "track": allocated.tracks.get(id)}
    if in_pool is False:
        nothing = 0.0 if allocated.capacity is not None else None
        return fields | {"placed": False, "awarded": nothing, "allotment": "not_in_pool", "reserved": False}
    given = allocated.per.get(id)
    if in_pool is None or given is None:
        return fields
    return fields | {
        "placed": given.allotment in ("awarded", "partial"),
        "awarded": given.awarded if allocated.capacity is not None else None,
        "allotment": given.allotment,
        "capacity_left": given.capacity_left,
        "reserved": given.reserved,
    }


def allocation_of(stage: CompiledStage, scope: Scope) -> Allocation | None:
    """How the allocation treated the subject of `scope` (None for a stage without allocation)."""
    s, info = stage.stage, scope.stage
    if (s.capacity is None and not s.tracks) or info is None:
        return None
    requested = settle(stage.takes, scope) if stage.takes is not None else None
    return Allocation(
        allotment=info.allotment or "undetermined",
        awarded=info.awarded,
        requested=None if isinstance(requested, Missing) else requested,
        capacity=info.capacity,
        capacity_left=info.capacity_left,
        track=info.track,
        reserved=bool(info.reserved),
        unit=s.capacity.unit if s.capacity else None,
    )


def allocation_fields(allocation: Allocation) -> dict[str, Any]:
    """The `stage.*` fields a decision's allocation stands for (to rebuild the state it was made in)."""
    fields: dict[str, Any] = {"capacity": allocation.capacity, "track": allocation.track}
    if allocation.allotment == "undetermined":
        return fields
    return fields | {
        "placed": allocation.allotment in ("awarded", "partial"),
        "awarded": allocation.awarded,
        "allotment": allocation.allotment,
        "capacity_left": allocation.capacity_left,
        "reserved": allocation.reserved,
    }


def awarded_of(stage: CompiledStage, outcome: str, allocation: Allocation | None) -> float | None:
    """What the subject receives: the allocation's award if its outcome fills a place, else 0."""
    if stage.stage.capacity is None or allocation is None or allocation.awarded is None or outcome == UNDETERMINED:
        return None
    return allocation.awarded if outcome == stage.stage.fills_slot else 0.0


def stage_summary(
    stage: CompiledStage, slots: int | None, decisions: Mapping[str, Decision], ranking: Ranking, outside: bool
) -> StageSummary:
    """The stage over the cohort: places filled and left open, capacity used and left, each track's places."""
    s = stage.stage
    # the outcomes alone where they suffice: a cohort's decisions are built when first read (`Decisions`)
    outcomes = outcomes_of(decisions)
    filled = sum(1 for outcome in outcomes.values() if s.fills_slot is not None and outcome == s.fills_slot)
    open_ = pending = None
    if slots is not None:
        # a place is open only once it is decided that no one fills it: an undetermined decision that
        # may still fill a place keeps one pending
        could = sum(1 for i, o in outcomes.items() if o == UNDETERMINED and s.fills_slot in decisions[i].possible)
        pending = min(max(slots - filled, 0), could)
        open_ = max(slots - filled, 0) - pending
    to = s.open_slots.to if s.open_slots and open_ else None
    title = s.open_slots.title if s.open_slots and open_ else None
    allocated: Allocated | None = ranking.allocated
    capacity = allocated.capacity if allocated else None
    used = left = None
    if capacity is not None and allocated is not None and not allocated.missing:
        used = _exact(sum(d.awarded or 0.0 for d in decisions.values()))
        left = _exact(capacity - used)
    return StageSummary(
        id=s.id,
        title=s.title,
        reference=s.reference,
        slots=slots,
        filled=filled,
        open=open_,
        pending=pending,
        open_slots_to=to,
        open_slots_title=title,
        ranking=ranking.order,
        cut_off=ranking.cut_off,
        tie_at_cut_off=ranking.tie_at_cut_off,
        missing=ranking.missing,
        ranges=tuple((id, best, worst) for id, (best, worst) in ranking.ranges.items()),
        unbounded=ranking.unbounded,
        capacity=capacity,
        capacity_used=used,
        capacity_left=left,
        unit=s.capacity.unit if s.capacity else None,
        tracks=_tracks(s.tracks, allocated, decisions, s.fills_slot),
        period=s.dates,
        outside_period=outside,
    )


def _tracks(
    tracks: Sequence[Track], allocated: Allocated | None, decisions: Mapping[str, Decision], fills: str | None
) -> tuple[TrackSummary, ...]:
    if allocated is None:
        return ()
    reserved = {p.id: p.reserved for p in allocated.places}
    found = []
    for track in tracks:
        mine = [d for d in decisions.values() if d.allocation and d.allocation.track == track.id]
        taken = allocated.reserved_taken.get(track.id)
        found.append(
            TrackSummary(
                id=track.id,
                title=track.title,
                reserved=reserved[track.id],
                filled=sum(1 for d in mine if d.allocation and d.allocation.reserved and d.outcome == fills),
                unfilled=reserved[track.id] - taken if taken is not None else 0,
                unfilled_to=track.unfilled,
                members=sum(1 for d in mine if d.placement and d.placement.in_pool),
            )
        )
    return tuple(found)
