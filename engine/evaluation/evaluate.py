"""Evaluate a compiled policy: per subject (map), then the stage over the cohort (reduce).

For each subject, values and rules are settled in dependency order by a backend (the compiled
evaluator by default); the stage then ranks the pool and counts slots; rules that use `stage.*`
and the outcome table are settled last. The first outcome row that holds decides; a row that is
undetermined before any row holds makes the outcome undetermined, naming what is missing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from engine.core.collector import MANY_DECIDED, building_many, collector_paused
from engine.core.errors import EvaluationError
from engine.evaluation.allocation import (
    allocation_fields,
    allocation_of,
    allot,
    awarded_of,
    requested_of,
    stage_summary,
    track_of,
)
from engine.evaluation.compiled import CompiledPolicy, CompiledStage, Params, settle
from engine.evaluation.compiler import Missing, Scope, StageState
from engine.evaluation.periods import check_period
from engine.evaluation.reasons import decision_reasons
from engine.evaluation.result import (
    UNDETERMINED,
    Allocation,
    Decision,
    Decisions,
    Grant,
    Later,
    Placement,
    Result,
    Tie,
)
from engine.evaluation.stages import Entry, Ranking, rank_pool, ties_of
from engine.evaluation.uncertain import Bounder
from engine.language.ir import OutcomeRow

__all__ = [
    "Backend",
    "PythonBackend",
    "Trace",
    "evaluate_cohort",
    "evaluate_subject",
    "scope_of",
    "Surveyed",
    "Standing",
    "survey",
    "stand",
    "conclude",
    "prepare",
    "Decider",
    "settle_at",
    "place_at",
    "At",
]


class Backend(Protocol):
    """Decides values, rules, pool membership (and track membership) and outcome rows for one subject.

    Asked for the pool (`rows=False`), it returns {"pool": ...} and, for a stage with tracks,
    {"track:ID": ...} for each track's `when`; asked for the rows, {"row:N": ...}.
    """

    name: str

    def run(
        self, policy: CompiledPolicy, scope: Scope, names: Sequence[str], stage: CompiledStage | None, rows: bool
    ) -> dict[str, Any]:
        """Fill `scope.known` for `names`; return {"pool": ...} or {"row:N": ...} as asked."""
        ...


class PythonBackend:
    """The compiled evaluator: plain Python closures; defines the semantics."""

    name = "python"

    def run(
        self, policy: CompiledPolicy, scope: Scope, names: Sequence[str], stage: CompiledStage | None, rows: bool
    ) -> dict[str, Any]:
        for name in names:
            scope.known[name] = settle(policy.defs[name], scope)
        if stage is None:
            return {}
        if not rows:
            found = {"pool": settle(stage.pool, scope)}
            found.update({f"track:{track.id}": settle(when, scope) for track, when, _ in stage.tracks})
            return found
        return {f"row:{row.index}": settle(fn, scope) for row, fn in stage.rows}


def _possible(stage: CompiledStage, conditions: dict[str, Any]) -> tuple[str, ...]:
    """The outcomes an undetermined decision may still reach: rows not yet decided false, up to one that holds."""
    found: dict[str, None] = {}
    for key, row in stage.choices:
        value = conditions[key]
        if isinstance(value, Missing) or value:
            found[row.outcome] = None
        if value is True:
            break
    return tuple(found)


_NONE: frozenset[str] = frozenset()


def _choose(stage: CompiledStage, conditions: dict[str, Any]) -> tuple[OutcomeRow | None, frozenset[str]]:
    for key, row in stage.choices:
        value = conditions[key]
        if value.__class__ is Missing:
            return None, value.paths
        if value:
            return row, _NONE
    return None, _NONE


def _subject_id(policy: CompiledPolicy, subject: BaseModel) -> str:
    return str(getattr(subject, policy.ir.schema.id_field))


def _decide(
    policy: CompiledPolicy,
    stage: CompiledStage,
    scope: Scope,
    conditions: dict[str, Any],
    as_of: dt.date,
    placement: Placement | None,
    owner: Any,
    cohort: Any = None,
    traced: bool = True,
    ranking_missing: tuple[str, ...] = (),
    outside_period: bool = False,
    backend: Backend | None = None,
) -> Decision:
    row, gaps = _choose(stage, conditions)
    settled = _settled(policy, backend, stage, scope, row, gaps, placement is not None)
    given = (as_of, owner, cohort, traced, outside_period)
    return _decision(policy, stage, scope, conditions, settled, given, placement, ranking_missing, backend)


def _settled(
    policy: CompiledPolicy,
    backend: Backend | None,
    stage: CompiledStage,
    scope: Scope,
    row: OutcomeRow | None,
    gaps: frozenset[str],
    allocating: bool,
) -> Settled:
    """What a decision settles once its row is chosen: its grants' quantities and (`allocating`) its allocation,
    each when the subject is decided, so that an error in either fails the evaluation."""
    quantities = _quantities(policy, row, scope, backend) if row is not None and row.grants else ()
    return row, gaps, quantities, allocation_of(stage, scope) if allocating else None


Given = tuple[dt.date, Any, Any, bool, bool]
"""What an evaluation gives each of its decisions: as of, the owning `Policy`, the cohort, whether it is traced,
whether it was decided outside its stage's period."""

Settled = tuple[OutcomeRow | None, frozenset[str], tuple[Any, ...], Allocation | None]
"""What a decision settles when it is made, whatever is read of it later: its row (None: undetermined),
what the rows miss, the quantities of its grants (`_quantities`) and its allocation."""


def _decision(
    policy: CompiledPolicy,
    stage: CompiledStage,
    scope: Scope,
    conditions: dict[str, Any],
    settled: Settled,
    given: Given,
    placement: Placement | None,
    ranking_missing: tuple[str, ...],
    backend: Backend | None,
) -> Decision:
    """The `Decision` of what `_choose` and `_quantities` settled for the subject of `scope` (made at once for one
    subject, on first read for a cohort's: see `result.Decisions`); it settles nothing a backend could fail on."""
    row, gaps, quantities, allocation = settled
    as_of, owner, cohort, traced, outside_period = given
    subject = scope.subject
    subject_id = _subject_id(policy, subject) if subject is not None else "?"
    missing = _own_terms(gaps, subject_id if subject is not None else None, ranking_missing) if gaps else gaps
    outcome = row.outcome if row else UNDETERMINED
    params = scope.params
    used = params.used() if traced and isinstance(params, Params) else {}
    trace: Mapping[str, Any] = {}
    if traced:  # the scope's own record (nothing writes to it after this), with the rows
        known = scope.known
        known.update(conditions)
        by = backend or PythonBackend()
        rest = Later(_settle_rest, (policy, by, stage, scope, ranking_missing)) if stage.others else None
        trace = Trace(known, rest, stage.others)
    return Decision(
        id=subject_id,
        outcome=outcome,
        stage=stage.stage.id,
        row=row.index if row else None,
        reasons=Later(decision_reasons, (policy, stage, scope, conditions, row)),  # type: ignore[arg-type] # on first read
        missing=tuple(sorted(missing)) if missing else (),
        placement=placement,
        as_of=as_of,
        trace=trace,
        parameters=used,
        policy=owner,
        subject=subject,
        context=scope.context,
        cohort=cohort,
        grants=_granted(row, quantities),
        awarded=awarded_of(stage, outcome, allocation),
        allocation=allocation,
        outside_period=outside_period,
        possible=_possible(stage, conditions) if row is None else (),
    )


def _quantities(
    policy: CompiledPolicy, row: OutcomeRow | None, scope: Scope, backend: Backend | None = None
) -> tuple[Any, ...]:
    """The quantities of what the deciding row grants, each computed as of the evaluation's date (by the
    backend's `quantities` where it has one: the generated backend writes them out too); None where a
    grant has none, `Missing` where facts are missing. Computed when the subject is decided: an error in
    one fails the evaluation."""
    if row is None or not row.grants:
        return ()
    written = getattr(backend, "quantities", None)
    if written is not None:
        return tuple(written(policy, row, scope))
    return tuple(settle(policy.fn(g.quantity), scope) if g.quantity is not None else None for g in row.grants)


def _granted(row: OutcomeRow | None, quantities: tuple[Any, ...]) -> tuple[Grant, ...]:
    """What the deciding row brings, from its grants' quantities."""
    if row is None or not row.grants:
        return ()
    found = []
    for grant, quantity in zip(row.grants, quantities, strict=True):
        missing = tuple(sorted(quantity.paths)) if isinstance(quantity, Missing) else ()
        found.append(
            Grant(
                id=grant.id,
                title=grant.title,
                quantity=None if missing else quantity,
                unit=grant.unit,
                reference=grant.reference,
                missing=missing,
            )
        )
    return tuple(found)


def _own_terms(missing: frozenset[str], subject_id: Any, ranking_missing: tuple[str, ...]) -> frozenset[str]:
    """`stage.rank` (or what allocation gives, `stage.awarded`...) is missing because some subject's
    ranking key (or request) is: name those facts instead (another subject's as `id: path`, this
    subject's as its own path)."""
    ranked = {m for m in missing if m.startswith("stage.") and m != "stage.in_pool"}
    if not ranked or not ranking_missing:
        return missing
    return (missing - ranked) | _named(ranking_missing, subject_id)


def scope_of(policy: CompiledPolicy, decision: Decision, params: Params | None = None) -> Scope:
    """The state a decision was made in, rebuilt from its trace: for why-not and invariants."""
    place = decision.placement
    stage = (
        StageState(
            id=decision.stage or "",
            in_pool=place.in_pool,
            rank=place.rank,
            pool_size=place.pool_size,
            slots=place.slots,
        )
        if place and decision.stage
        else None
    )
    if stage is not None and decision.allocation is not None:
        stage = stage.model_copy(update=allocation_fields(decision.allocation))
    scope = Scope(
        decision.subject,
        decision.context,
        params if params is not None else policy.parameters_on(decision.as_of),
        stage,
    )
    scope.known = _FromTrace(decision.trace)
    scope.rank_range = place.rank_range if place else None
    return scope


class _FromTrace(dict[str, Any]):
    """A rebuilt scope's values and rules: read from the trace when first asked for (see `Trace`)."""

    def __init__(self, trace: Mapping[str, Any]) -> None:
        super().__init__()
        self.trace = trace

    def __missing__(self, name: str) -> Any:
        if name.startswith("row:"):
            raise KeyError(name)
        value = self[name] = self.trace[name]
        return value

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or (isinstance(name, str) and name in self.trace)

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default


def evaluate_subject(
    policy: CompiledPolicy,
    backend: Backend,
    subject: BaseModel,
    as_of: dt.date,
    stage_id: str,
    context: BaseModel | None = None,
    owner: Any = None,
    outside_period: bool = False,
) -> Decision:
    """Decide one subject outside any cohort: rules that need a ranking are undetermined.

    A stage that declares its period refuses a date outside it (`OutsidePeriod`) unless `outside_period`.
    """
    outside = check_period(policy.ir, stage_id, as_of, outside_period)
    stage = policy.stages[stage_id]
    scope = Scope(subject, context, policy.parameters_on(as_of))
    prepare(policy, backend, stage, scope.params, True)
    conditions = backend.run(policy, scope, stage.phase1 + stage.phase2, stage, rows=True)
    return _decide(policy, stage, scope, conditions, as_of, None, owner, outside_period=outside, backend=backend)


def evaluate_cohort(
    policy: CompiledPolicy,
    backend: Backend,
    subjects: Sequence[BaseModel],
    context: BaseModel | None,
    as_of: dt.date,
    stage_id: str,
    owner: Any = None,
    cohort: Any = None,
    trace: bool = True,
    outside_period: bool = False,
    tick: Callable[[], None] | None = None,
) -> Result:
    """Decide every subject of a cohort at one stage; no partial result on error.

    A stage that declares its period refuses a date outside it (`OutsidePeriod`) unless `outside_period`.
    `tick`, if given, is called once per subject in each of the two passes (a progress display).

    Three steps with plain data between them, the same ones `evaluate_many(..., chunk_size=)` runs
    on an executor's workers: `survey` each subject (phase 1: pool, tracks, ranking keys or their
    intervals, what it asks for), `stand` (the ranking and allocation, a reduce over what the
    survey found), decide each subject at its place (`Decider`: phase 2 and the outcome rows). The cyclic
    garbage collector is paused meanwhile; what deciding a cohort of `MANY_DECIDED` subjects or more builds
    is then filed as old, not walked by the next young collection (`paused_for`). Each
    subject's outcome, its grants' quantities and its allocation are settled here; its `Decision` object
    (placement, trace, reasons, grants) is built when first read from the result (`result.Decisions`).
    """
    outside = check_period(policy.ir, stage_id, as_of, outside_period)
    stage = policy.stages[stage_id]
    params = policy.parameters_on(as_of)
    prepare(policy, backend, stage, params, trace)
    with paused_for(len(subjects)):
        scopes = [Scope(s, context, params) for s in subjects]
        surveyed = _survey_all(policy, backend, stage, scopes, tick)
        standing = stand(policy, stage, surveyed, context, params)
        made = Decider(
            policy=policy, backend=backend, stage=stage, standing=standing, given=(as_of, owner, cohort, trace, outside)
        )
        outcomes, kept = made.decide_all(scopes, surveyed, tick)
        return conclude(policy, backend.name, stage, standing, Decisions(outcomes, kept, made.build), as_of, outside)


def paused_for(subjects: int) -> AbstractContextManager[None]:
    """The collector's pause around deciding a cohort of `subjects` (in one process or over chunks):
    `building_many()` from `MANY_DECIDED` subjects, what the result keeps then filed as old; else
    `collector_paused()`."""
    return building_many() if subjects >= MANY_DECIDED else collector_paused()


class Decider:
    """Step 3 of a cohort: each subject settled at its place (phase 2, the rows, its grants' quantities and
    allocation), and its `Decision` built from that when first read (`result.Decisions`), with its
    `Placement` from the ranking. In one process `decide_all` settles every subject; over chunks each
    worker settles its own (`settle_at`) and the caller keeps what comes back (`keep`)."""

    __slots__ = ("policy", "backend", "stage", "standing", "given", "_ties", "_rows")

    def __init__(
        self,
        policy: CompiledPolicy,
        backend: Backend,
        stage: CompiledStage,
        standing: Standing,
        given: Given,
    ) -> None:
        self.policy, self.backend, self.stage, self.standing = policy, backend, stage, standing
        self.given = given  # as_of, owner, cohort, traced, outside
        self._ties: dict[str, tuple[Tie, ...]] | None = None
        self._rows = {row.index: row for _, row in stage.choices}  # `row:N` -> the row

    def decide_all(
        self, scopes: list[Scope], surveyed: list[Surveyed], tick: Callable[[], None] | None
    ) -> tuple[dict[str, str], dict[str, tuple[Any, ...]]]:
        """Each subject's outcome, and what its decision is built from: as `_decide` settles them for one. Each
        subject's place is read as `place_at` and `_at_place` read it on a worker, written out here with the
        phase's function found once (a call and a tuple fewer per subject: tests/test_scale.py holds the two to
        the same decisions)."""
        policy, backend, stage = self.policy, self.backend, self.stage
        ranking = self.standing.ranking
        infos, ranges, settles, missing = ranking.infos, ranking.ranges, ranking.settling, ranking.missing
        run = _runner(policy, backend, stage.phase2, stage, True)
        allocating = stage.stage.capacity is not None or bool(stage.stage.tracks)
        outcomes: dict[str, str] = {}
        kept: dict[str, tuple[Any, ...]] = {}
        for scope, seen in zip(scopes, surveyed, strict=True):
            entry = seen.entry
            id = entry.id
            span = ranges.get(id) if ranges else None
            scope.stage, scope.rank_range = infos[id], span
            if span is not None and span[1] - span[0] < MAX_RANK_SPREAD:
                settling = settles.get(id, missing) if settles else missing
                conditions = _over_ranks(policy, backend, stage, scope, span, _named(settling, id))
            else:
                conditions = run(scope)
            row, gaps = _choose(stage, conditions)
            outcomes[id] = row.outcome if row is not None else UNDETERMINED
            if allocating or (row is not None and row.grants):
                kept[id] = (scope, conditions, *_settled(policy, backend, stage, scope, row, gaps, allocating), entry)
            else:  # what `_settled` gives a row without grants in a stage that allocates nothing, without the call
                kept[id] = (scope, conditions, row, gaps, (), None, entry)
            if tick is not None:
                tick()
        return outcomes, kept

    def keep(
        self, scope: Scope, entry: Entry, at: tuple[dict[str, Any], int, dict[str, Any], int | None, frozenset[str]]
    ) -> tuple[str, tuple[Any, ...]]:
        """A subject a worker settled (`settle_at`'s answer), kept as `decide_all` keeps one: its outcome and
        what its decision is built from. `scope` is the caller's own, with its subject and the values its
        survey settled; the worker's phase-2 values are added, and the grants' quantities and the
        allocation settled here, as `decide_all` settles them (an error in one fails the evaluation)."""
        later, by_bounds, conditions, index, gaps = at
        _, info, span, _ = place_at(self.standing.ranking, entry.id)
        scope.stage, scope.rank_range, scope.by_bounds = info, span, by_bounds
        scope.known.update(later)
        row = self._rows[index] if index is not None else None
        outcome = row.outcome if row is not None else UNDETERMINED
        return outcome, (
            scope,
            conditions,
            *_settled(self.policy, self.backend, self.stage, scope, row, gaps, True),
            entry,
        )

    def build(
        self,
        scope: Scope,
        conditions: dict[str, Any],
        row: OutcomeRow | None,
        gaps: frozenset[str],
        quantities: tuple[Any, ...],
        allocation: Allocation | None,
        entry: Entry,
    ) -> Decision:
        """One subject's `Decision`, from what `decide_all` (or `keep`) kept of it; its placement's ties are
        computed, for the whole cohort at once, when some decision's are first read."""
        placement, settling = _placed(self.standing.ranking, Later(self._ties_for, (entry.id,)), entry)
        settled = (row, gaps, quantities, allocation)
        return _decision(
            self.policy, self.stage, scope, conditions, settled, self.given, placement, settling, self.backend
        )

    def _ties_for(self, id: str) -> tuple[Tie, ...]:
        if self._ties is None:
            self._ties = ties_of(self.standing.ranking, self.standing.slots)
        return self._ties.get(id, ())


# --- the three steps of a cohort's evaluation, with plain data between them ----------------------


@dataclass(slots=True)
class Surveyed:
    """One subject after the per-subject step, as the ranking and allocation see it (plain data).

    `entry`: its id, pool membership and ranking keys (or their intervals); `requested`: what it
    asks for (`takes`, unchecked; None outside the pool or without capacity); `track`: the first
    track whose `when` holds (None for a stage without tracks).
    """

    entry: Entry
    requested: Any
    track: str | None | Missing
    # slotted and not frozen: one per subject; a frozen dataclass's `__init__` costs several times more

    def __reduce__(self) -> tuple[Any, ...]:  # pickled by position: a slotted dataclass's own way is slow
        return (Surveyed, (self.entry, self.requested, self.track))


@dataclass(slots=True)
class Standing:
    """The stage over the cohort after the reduce: slots, the ranking (with allocation, and each subject's place
    in it: `place_at`)."""

    slots: int | None
    ranking: Ranking


def survey(policy: CompiledPolicy, backend: Backend, stage: CompiledStage, scope: Scope) -> Surveyed:
    """Step 1, per subject: settle phase 1 (filling `scope.known`); what the ranking needs of this subject."""
    return _surveyed(policy, stage, scope, backend.run(policy, scope, stage.phase1, stage, rows=False))


def _surveyed(policy: CompiledPolicy, stage: CompiledStage, scope: Scope, answers: dict[str, Any]) -> Surveyed:
    entry = _entry(policy, stage, scope, answers["pool"], answers.get("keys"))
    requested = requested_of(stage, scope) if entry.in_pool is True and stage.takes is not None else None
    return Surveyed(entry, requested, track_of(stage, answers))


def _survey_all(
    policy: CompiledPolicy, backend: Backend, stage: CompiledStage, scopes: list[Scope], tick: Callable[[], None] | None
) -> list[Surveyed]:
    """Step 1 over a cohort in one process: `survey` of each scope, with the backend's function for the stage
    found once; a subject in the pool with every ranking key known, of a stage without requests or tracks,
    is surveyed without the general path's questions."""
    run = _runner(policy, backend, stage.phase1, stage, False)
    plain = stage.takes is None and not stage.tracks
    id_field = policy.ir.schema.id_field
    found = []
    for scope in scopes:
        answers = run(scope)
        keys = answers.get("keys")
        if plain and answers["pool"] is True and keys.__class__ is tuple:
            found.append(Surveyed(Entry(str(getattr(scope.subject, id_field)), True, keys), None, None))
        else:
            found.append(_surveyed(policy, stage, scope, answers))
        if tick is not None:
            tick()
    return found


def _runner(
    policy: CompiledPolicy, backend: Backend, names: Sequence[str], stage: CompiledStage, rows: bool
) -> Callable[[Scope], dict[str, Any]]:
    """What `backend.run(policy, scope, names, stage, rows)` does for one scope, as a function of the scope
    (the backend's own, found once, where it has `runner`)."""
    made = getattr(backend, "runner", None)
    if made is not None:
        return made(policy, names, stage, rows)  # type: ignore[no-any-return]
    run = backend.run
    return lambda scope: run(policy, scope, names, stage, rows)


def stand(
    policy: CompiledPolicy,
    stage: CompiledStage,
    surveyed: Sequence[Surveyed],
    context: BaseModel | None,
    params: dict[str, Any],
) -> Standing:
    """Step 2, a reduce over the surveyed subjects only (no facts of theirs): slots, ranking, allocation."""
    stage_scope = Scope(None, context, params)
    slots = _slots(stage, stage_scope)
    entries = [s.entry for s in surveyed]
    ranking = rank_pool(stage.stage.id, entries, [k.descending for k in stage.stage.rank_by], slots)
    if stage.stage.capacity is not None or stage.stage.tracks:  # else allocation gives nothing: no requests to list
        ranking = allot(stage, stage_scope, ranking, [(s.entry.id, s.requested, s.track) for s in surveyed], slots)
    return Standing(slots, ranking)


def _placed(ranking: Ranking, ties: tuple[Tie, ...] | Later, entry: Entry) -> tuple[Placement, tuple[str, ...]]:
    """One subject's `Placement` in the ranking (`ties`: its own, or what computes them when first read) and
    what would settle its rank."""
    id, info, span, settling = place_at(ranking, entry.id)
    placement = Placement(
        in_pool=info.in_pool,
        rank=info.rank,
        pool_size=info.pool_size,
        slots=info.slots,
        keys=ranking.keys.get(id),
        rank_range=span,
        key_ranges=_key_ranges(entry) if entry.intervals is not None else None,
        ties=ties,
        settled_by=tuple(sorted(_named(settling, id))) if span else (),
    )
    return placement, settling


At = tuple[str, StageState, tuple[int, int] | None, tuple[str, ...]]
"""Where the ranking put one subject, as a worker needs it: its id, its `stage.*`, its rank range (None:
known or not ranked) and the facts that would settle it (another subject's as `id: path`)."""


def settle_at(
    policy: CompiledPolicy, backend: Backend, stage: CompiledStage, scope: Scope, at: At
) -> tuple[dict[str, Any], int, dict[str, Any], int | None, frozenset[str]]:
    """Step 3 on a worker, per subject: phase 2 and the rows, as plain data for the caller's `Decider.keep`:
    the values of phase 2 (phase 1's the caller has) and the scope's comparisons decided from bounds, the
    rows, the deciding row's index (`row:N`; None: undetermined) and what the rows miss. The grants'
    quantities and the allocation, which may read facts the worker was not sent, the caller settles."""
    conditions = _at_place(policy, backend, stage, scope, at)
    row, gaps = _choose(stage, conditions)
    known = scope.known
    later = {name: known[name] for name in stage.phase2}
    return later, scope.by_bounds, conditions, row.index if row is not None else None, gaps


def place_at(ranking: Ranking, id: str) -> At:
    """Where the ranking put subject `id`, as `settle_at` reads it (no `Placement`: the caller makes those)."""
    ranges, settles, missing = ranking.ranges, ranking.settling, ranking.missing
    span = ranges.get(id) if ranges else None
    return id, ranking.infos[id], span, settles.get(id, missing) if settles else missing


def _at_place(policy: CompiledPolicy, backend: Backend, stage: CompiledStage, scope: Scope, at: At) -> dict[str, Any]:
    """Phase 2 and the rows at a place; the scope's subject may be absent where the stage reads no fact of it
    then (`CompiledStage.facts_after`): a worker is then not sent the facts again."""
    id, info, span, settling = at
    scope.stage, scope.rank_range = info, span
    if span is not None and span[1] - span[0] < MAX_RANK_SPREAD:
        return _over_ranks(policy, backend, stage, scope, span, _named(settling, id))
    return backend.run(policy, scope, stage.phase2, stage, rows=True)


def conclude(
    policy: CompiledPolicy,
    backend_name: str,
    stage: CompiledStage,
    standing: Standing,
    decisions: Mapping[str, Decision],
    as_of: dt.date,
    outside: bool,
) -> Result:
    """The result of a cohort: its decisions (in the order of the input) and the stage's summary."""
    summary = stage_summary(stage, standing.slots, decisions, standing.ranking, outside)
    return Result(
        policy=policy.identity,
        as_of=as_of,
        stage=stage.stage.id,
        backend=backend_name,
        decisions=decisions,
        summary=summary,
        outside_period=outside,
    )


MAX_RANK_SPREAD = 64  # a subject whose rank may take more values than this is not decided rank by rank


def _entry(policy: CompiledPolicy, stage: CompiledStage, scope: Scope, pool: Any, keys: Any = None) -> Entry:
    """One subject as the ranking sees it; keys it cannot compute become intervals of what they may be.

    `keys`: the ranking keys as a backend already settled them with the pool (as `_keys` does), if it did."""
    assert scope.subject is not None
    id = _subject_id(policy, scope.subject)
    if pool is False:
        return Entry(id, False, Missing(frozenset()))
    if keys is None:
        keys = _keys(stage, scope)
    if not isinstance(keys, Missing):
        return Entry(id, pool, keys)
    bounder = Bounder(policy.ir, policy.compiler.value_in(scope))
    intervals = tuple(bounder.of(key.expr) for key in stage.stage.rank_by)
    return Entry(id, pool, keys, intervals=intervals, unbounded=tuple(sorted(bounder.unbounded)))


def _key_ranges(entry: Entry) -> tuple[str, ...] | None:
    if entry.intervals is None or entry.in_pool is False:
        return None
    return tuple(i.describe() for i in entry.intervals)


def _named(settling: tuple[str, ...], subject_id: str) -> frozenset[str]:
    """Facts as a subject's decision names them: its own by path, another subject's as `id: path`."""
    own = f"{subject_id}: "
    return frozenset(m[len(own) :] if m.startswith(own) else m for m in settling)


def _over_ranks(
    policy: CompiledPolicy,
    backend: Backend,
    stage: CompiledStage,
    scope: Scope,
    span: tuple[int, int],
    settling: frozenset[str],
) -> dict[str, Any]:
    """Settle what reads the stage at every rank the subject may have; what differs is undetermined.

    A rule or row with the same value at every rank of `span` is decided; one whose value depends
    on the rank is missing the facts that would settle the rank (`settling`).
    """
    return _at_ranks(policy, backend, stage, scope, span, settling, stage.phase2)


def _at_ranks(
    policy: CompiledPolicy,
    backend: Backend,
    stage: CompiledStage | None,
    scope: Scope,
    span: tuple[int, int],
    settling: frozenset[str],
    names: Sequence[str],
) -> dict[str, Any]:
    """`names` (and the stage's rows, if a stage is given) settled at every rank of `span`, agreed."""
    base, info = dict(scope.known), scope.stage
    assert info is not None
    runs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for rank in range(span[0], span[1] + 1):
        scope.known = dict(base)
        scope.stage = info.model_copy(update={"rank": rank})
        conditions = backend.run(policy, scope, names, stage, rows=True)
        runs.append((scope.known, conditions))
    scope.stage = info
    gap = Missing(settling)
    scope.known = dict(base)
    for name in names:
        scope.known[name] = _agreed([known[name] for known, _ in runs], gap)
    return {key: _agreed([c[key] for _, c in runs], gap) for key in runs[0][1]}


_ABSENT = object()  # not a value of a trace's (None is one)


class Trace(Mapping[str, Any]):
    """A decision's trace: every value and rule result, and each outcome row's (`row:N`).

    What the decision's stage needed was settled when it was decided; any other value or rule
    (another stage's) is settled the first time the trace is read for it, in the same state and by the
    same backend.
    """

    __slots__ = ("_settled", "_rest", "_others")

    def __init__(
        self,
        settled: dict[str, Any],
        rest: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        others: frozenset[str] = frozenset(),
    ) -> None:
        self._settled = settled
        self._rest = rest
        self._others = others  # the names `rest` settles

    def _complete(self) -> None:
        if self._rest is not None:
            rest, self._rest = self._rest, None
            rows = {k: v for k, v in self._settled.items() if k.startswith("row:")}
            self._settled = {**rest(self._settled), **rows}

    def __getitem__(self, key: str) -> Any:
        try:
            return self._settled[key]
        except KeyError:
            if self._rest is None or key not in self._others:
                raise
        self._complete()
        return self._settled[key]

    def get(self, key: str, default: Any = None) -> Any:  # `Mapping.get` goes through `__getitem__` and a raise
        found = self._settled.get(key, _ABSENT)
        if found is not _ABSENT:
            return found
        if self._rest is None or key not in self._others:
            return default
        self._complete()
        return self._settled.get(key, default)

    def __iter__(self) -> Iterator[str]:
        self._complete()
        return iter(self._settled)

    def __len__(self) -> int:
        self._complete()
        return len(self._settled)

    def __bool__(self) -> bool:
        return bool(self._settled)

    def __reduce__(self) -> tuple[Any, ...]:
        """Sent to another process whole: what the stage did not need is settled first."""
        self._complete()
        return (Trace, (self._settled,))

    def __repr__(self) -> str:
        return f"Trace({dict(self)!r})"


def _settle_rest(
    policy: CompiledPolicy,
    backend: Backend,
    stage: CompiledStage,
    scope: Scope,
    settling: tuple[str, ...],
    settled: dict[str, Any],
) -> dict[str, Any]:
    """Settle the values and rules the stage did not need (`stage.others`), in the state of the
    decided `scope`, from what it `settled`: what a `Trace` calls when first read for one of them
    (given as a `Later`, one object per decision rather than a closure and its cells)."""
    subject, info, span = scope.subject, scope.stage, scope.rank_range
    again = Scope(subject, scope.context, scope.params, info)
    again.known = {k: v for k, v in settled.items() if not k.startswith("row:")}
    later = stage.rest2
    backend.run(policy, again, stage.rest1, None, rows=False)
    if later and info is not None and span is not None and info.rank is None and span[1] - span[0] < MAX_RANK_SPREAD:
        subject_id = _subject_id(policy, subject) if subject is not None else ""
        _at_ranks(policy, backend, None, again, span, _named(settling, subject_id), later)
    else:
        backend.run(policy, again, later, None, rows=False)
    return {n: again.known[n] for n in policy.ir.order}


def prepare(
    policy: CompiledPolicy, backend: Backend, stage: CompiledStage, params: dict[str, Any], trace: bool
) -> None:
    """Before any subject is decided: let a backend that builds something per set of names (the
    durable backend's rulesets) build what the traces may settle later, so that a definition it
    cannot evaluate fails the evaluation (no result), not a later read of a decision's trace."""
    ready = getattr(backend, "prepare", None)
    if ready is not None and trace and stage.others:
        ready(policy, params, [names for names in (stage.rest1, stage.rest2) if names])


def _agreed(values: list[Any], gap: Missing) -> Any:
    first = values[0]
    if all(v == first for v in values[1:]):
        return first
    paths = frozenset().union(*(v.paths for v in values if isinstance(v, Missing)))
    return Missing(gap.paths | paths)


def _keys(stage: CompiledStage, scope: Scope) -> tuple[Any, ...] | Missing:
    values = tuple(settle(fn, scope) for fn in stage.keys)
    gaps = [v for v in values if isinstance(v, Missing)]
    return Missing(frozenset().union(*(g.paths for g in gaps))) if gaps else values


def _slots(stage: CompiledStage, scope: Scope) -> int | None:
    if stage.slots is None:
        return None
    value = settle(stage.slots, scope)
    if isinstance(value, Missing):
        raise EvaluationError(
            f"stage `{stage.stage.id}` cannot count its slots: missing {', '.join(sorted(value.paths))}"
        )
    if not isinstance(value, (int, float)) or value < 0 or int(value) != value:
        raise EvaluationError(f"stage `{stage.stage.id}`: `slots` must be a whole number of at least 0, got {value!r}")
    return int(value)
