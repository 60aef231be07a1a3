"""Evaluate many cohorts: one after another, on threads, or on any `concurrent.futures.Executor`.

    results = evaluate_many(policy, cohorts)                               # sequential
    with ThreadPoolExecutor(8) as pool:
        results = evaluate_many(policy, cohorts, executor=pool)            # shares the Policy
    with ProcessPoolExecutor(2) as pool:
        results = evaluate_many(policy, cohorts, executor=pool)            # picklable tasks
    results = evaluate_many(policy, cohorts, executor=client.get_executor())   # Dask `distributed`

A `ThreadPoolExecutor` shares the caller's `Policy` (safe: evaluation keeps per-call state only).
Any other executor is sent picklable tasks: the package path, the backend, the package digest and
the cohort (a dict, a fact model, or a file path, which the worker must be able to read). Each
worker process loads the package once per digest and keeps it; a worker that finds different
files on disk refuses to answer with them (`EvaluationError`) rather than mix versions. Results
come back in the order of `cohorts`, attached to the caller's `Policy`, so `decision.explain()`
works as after `policy.evaluate`.

One cohort too large for one process is split with `chunk_size`:

    with Client(LocalCluster(n_workers=2, threads_per_worker=1)) as client:   # dask.distributed
        [result] = evaluate_many(policy, [cohort], executor=client.get_executor(), chunk_size=20_000)

Each cohort is then decided in the three steps of `evaluate_cohort`: the workers survey their
chunks of subjects (pool, tracks, ranking keys or their intervals: plain data), the caller ranks
and allocates over what came back (ids and keys only, no facts), and the workers settle their
chunks at the places the ranking gave (phase 2 and the outcome rows), from what their survey
settled (its values, sent back to the caller with the survey and out again with the places:
nothing of a worker is kept between the steps, so any worker may take any chunk). The facts go out
again only if phase 2 or the rows read them (`CompiledStage.facts_after`); otherwise the chunk is
its ids. What comes back is plain data, not decisions: the caller settles the grants' quantities
and the allocation with its own facts, and builds each `Decision` when it is first read
(`result.Decisions`), as `policy.evaluate` does; the decisions are the ones it gives, decision by
decision. The cyclic collector is paused throughout (the answers are unpickled into the caller's heap).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, overload

from pydantic import BaseModel, TypeAdapter

from engine.core import errors
from engine.core.collector import collector_paused
from engine.core.diagnostics import Diagnostic
from engine.core.errors import EngineError, EvaluationError, FactError, PolicyError
from engine.embedding.policy import BackendName, Policy, load_policy
from engine.evaluation.compiled import CompiledStage, Params
from engine.evaluation.compiler import Scope
from engine.evaluation.evaluate import (
    At,
    Decider,
    Surveyed,
    conclude,
    paused_for,
    place_at,
    prepare,
    settle_at,
    stand,
    survey,
)
from engine.evaluation.periods import check_period
from engine.evaluation.result import Decisions, Result

__all__ = ["evaluate_many", "WORKER_CACHE_SIZE"]

WORKER_CACHE_SIZE = 4  # packages (by path, backend and digest) each worker process keeps loaded

_cache: OrderedDict[tuple[str, str, str], Policy] = OrderedDict()
_cache_lock = threading.Lock()


@dataclasses.dataclass(frozen=True)
class _Task:
    """What a worker needs to evaluate one cohort; picklable."""

    path: str
    backend: BackendName
    digest: str
    as_of: dt.date | str | None
    stage: str | None
    fact_modules: tuple[str, ...] = ()  # the modules the caller trusted by name (entry points are re-read)
    outside_period: bool = False  # a stage may decide outside its declared period (a what-if)
    trace: bool = True  # decisions keep the values explanations need


@dataclasses.dataclass(frozen=True)
class _Failure:
    """An engine error, carried back from a worker as plain data (its class name and content)."""

    kind: str
    message: str
    diagnostics: tuple[Diagnostic, ...] | None

    def error(self) -> EngineError:
        cls = getattr(errors, self.kind, None)
        if not (isinstance(cls, type) and issubclass(cls, EngineError)):
            return EngineError(self.message)
        if self.diagnostics is not None and issubclass(cls, (PolicyError, FactError)):
            return cls(list(self.diagnostics))
        return cls(self.message)


@overload
def evaluate_many(
    policy: Policy,
    cohorts: Iterable[Any],
    executor: Executor | None = ...,
    *,
    as_of: dt.date | str | None = ...,
    stage: str | None = ...,
    outside_period: bool = ...,
    return_exceptions: Literal[False] = ...,
    trace: bool = ...,
    chunk_size: int | None = ...,
) -> list[Result]: ...


@overload
def evaluate_many(
    policy: Policy,
    cohorts: Iterable[Any],
    executor: Executor | None = ...,
    *,
    as_of: dt.date | str | None = ...,
    stage: str | None = ...,
    outside_period: bool = ...,
    return_exceptions: Literal[True],
    trace: bool = ...,
    chunk_size: int | None = ...,
) -> list[Result | EngineError]: ...


def evaluate_many(
    policy: Policy,
    cohorts: Iterable[Any],
    executor: Executor | None = None,
    *,
    as_of: dt.date | str | None = None,
    stage: str | None = None,
    outside_period: bool = False,
    return_exceptions: bool = False,
    trace: bool = True,
    chunk_size: int | None = None,
) -> list[Result] | list[Result | EngineError]:
    """Evaluate every cohort (model, dict or file path) with `policy`, results in input order.

    Without `executor` the cohorts are evaluated one after another in this thread. The first
    `EngineError` (in input order) is raised, unless `return_exceptions` is true: then it takes
    that cohort's place in the list. Other exceptions (bugs) always propagate. `outside_period`
    lets a stage decide outside its declared period (a what-if), as in `Policy.evaluate`; `trace`
    too. With `chunk_size`, each cohort is decided in chunks of at most that many subjects, the
    chunks on the executor's workers (see the module's docstring); the results are the same.
    """
    items = list(cohorts)
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        return [
            _settle(
                lambda c=c: _chunked(policy, c, executor, as_of, stage, outside_period, trace, chunk_size),
                return_exceptions,
            )
            for c in items
        ]
    if executor is None:
        return [
            _settle(
                lambda c=c: policy.evaluate(c, as_of, stage, trace, outside_period=outside_period), return_exceptions
            )
            for c in items
        ]
    if isinstance(executor, ThreadPoolExecutor):
        futures: list[Future[Any]] = [
            executor.submit(policy.evaluate, c, as_of, stage, trace, outside_period=outside_period) for c in items
        ]
        return [_settle(f.result, return_exceptions) for f in futures]
    task = _task(policy, as_of, stage, outside_period, trace)
    futures = [executor.submit(_run, task, _portable(c)) for c in items]
    return [_settle(lambda f=f: _received(policy, f.result()), return_exceptions) for f in futures]


def _task(policy: Policy, as_of: dt.date | str | None, stage: str | None, outside_period: bool, trace: bool) -> _Task:
    return _Task(
        path=str(Path(policy.path).resolve()),
        backend=policy.backend_name,
        digest=policy.identity.digest,
        as_of=as_of,
        stage=stage,
        fact_modules=policy.fact_modules.specs(),
        outside_period=outside_period,
        trace=trace,
    )


# --- one cohort in chunks: survey on the workers, rank here, decide on the workers ---------------


def _chunked(
    policy: Policy,
    cohort: Any,
    executor: Executor | None,
    as_of: dt.date | str | None,
    stage: str | None,
    outside_period: bool,
    trace: bool,
    chunk_size: int,
) -> Result:
    """One cohort decided in the three steps of `evaluate_cohort`, its chunks on `executor`."""
    model = policy.load_cohort(cohort)
    schema = policy.ir.schema
    context = getattr(model, schema.context_field) if schema.context_field else None
    subjects = list(getattr(model, schema.subjects_field))
    date, stage_id = policy._as_of(context, as_of), policy._stage(context, stage)
    outside = check_period(policy.ir, stage_id, date, outside_period)
    task = dataclasses.replace(_task(policy, date, stage_id, outside, trace), outside_period=outside)
    chunks = [subjects[i : i + chunk_size] for i in range(0, len(subjects), chunk_size)]
    local = executor is None or isinstance(executor, ThreadPoolExecutor)
    here = policy if local else None  # threads share the caller's policy; processes load theirs by digest
    # to another process a chunk travels as JSON, written once, read by pydantic-core in the worker:
    # pickling fact models costs several times more than deciding them (measured: ~30x to write)
    shipped: list[Any] = chunks if local else [_to_json(schema.subject, chunk) for chunk in chunks]

    def run(work: Callable[..., Any], *args: list[Any]) -> list[Any]:
        if executor is None:
            return [work(task, context, *chunk_args, policy=here) for chunk_args in zip(*args, strict=True)]
        futures = [
            executor.submit(work, task, context, *chunk_args, policy=here) for chunk_args in zip(*args, strict=True)
        ]
        return [f.result() for f in futures]

    # the collector is paused throughout, the waits included: the answers are unpickled in this process (by the
    # executor's threads) into a heap that holds the whole cohort, and every collection they set off walked it
    # (measured, 20,000 subjects on one process worker: 4-5.7 s of the caller's CPU with it on, 1.2 s paused)
    with (
        paused_for(len(subjects)),
        policy._in_flight() if local else contextlib.nullcontext(),
    ):
        found = [s for answer in run(_survey_chunk, shipped) for s in _answer(answer)]
        surveyed = [seen for seen, _ in found]
        states = [[state for _, state in found[i : i + chunk_size]] for i in range(0, len(found), chunk_size)]
        del found
        compiled = policy.compiled
        stage_ = compiled.stages[stage_id]
        params = compiled.parameters_on(date)
        standing = stand(compiled, stage_, surveyed, context, params)
        ats = [place_at(standing.ranking, s.entry.id) for s in surveyed]
        parcels = [_Parcel(ats[i : i + chunk_size], states[i // chunk_size]) for i in range(0, len(ats), chunk_size)]
        prepare(compiled, policy._backend, stage_, params, trace)  # what traces settle on first read, here
        decider = Decider(
            policy=compiled,
            backend=policy._backend,
            stage=stage_,
            standing=standing,
            given=(date, policy, model, trace, outside),
        )
        outcomes: dict[str, str] = {}
        kept: dict[str, tuple[Any, ...]] = {}
        starts = range(0, len(subjects), chunk_size)
        # the facts go out again only where phase 2 or the rows read them (grants are settled here); else the ids
        again = shipped if stage_.facts_after else [[s.entry.id for s in surveyed[i : i + chunk_size]] for i in starts]
        answers = run(_decide_chunk, again, parcels)
        for start, chunk, chunk_states, answer in zip(starts, chunks, states, answers, strict=True):
            every = zip(chunk, surveyed[start : start + chunk_size], chunk_states, _answer(answer), strict=True)
            for subject, seen, (known, _), settled in every:
                entry = seen.entry  # the caller's scope: its own subject, the values its survey settled
                outcomes[entry.id], kept[entry.id] = decider.keep(
                    Scope(subject, context, params, known=known), entry, settled
                )
        decisions = Decisions(outcomes, kept, decider.build)
        return conclude(compiled, policy.backend_name, stage_, standing, decisions, date, outside)


def _answer(answer: Any) -> Any:
    if isinstance(answer, _Failure):
        raise answer.error()
    return answer


@functools.lru_cache(maxsize=16)
def _adapter(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _to_json(model: type[BaseModel], chunk: list[BaseModel]) -> bytes:
    """A chunk of subjects as JSON (computed fields left out: they are not input)."""
    try:
        return _adapter(model).dump_json(chunk, exclude_computed_fields=True)
    except TypeError:  # pydantic before 2.12: no `exclude_computed_fields`
        return _adapter(model).dump_json(chunk)


def _subjects(policy: Policy, subjects: list[Any] | bytes) -> list[BaseModel]:
    if isinstance(subjects, bytes):  # validated by the caller: read back as the same models
        return _adapter(policy.ir.schema.subject).validate_json(subjects)
    return subjects


State = tuple[dict[str, Any], int]  # what phase 1 settled in a subject's scope (`known`, `by_bounds`)


def _survey_chunk(
    task: _Task, context: BaseModel | None, subjects: list[BaseModel] | bytes, policy: Policy | None = None
) -> list[tuple[Surveyed, State]] | _Failure:
    """Step 1 on a worker: each subject of the chunk surveyed; back come what the ranking needs and what
    phase 1 settled (plain values, no facts), so that the decision step need not settle it again."""
    try:
        policy, stage, params = _on_worker(task, policy)
        compiled, backend = policy.compiled, policy._backend
        found = []
        with collector_paused():
            for subject in _subjects(policy, subjects):
                scope = Scope(subject, context, params)
                seen = survey(compiled, backend, stage, scope)
                found.append((seen, (scope.known, scope.by_bounds)))
        return found
    except EngineError as error:
        return _failure(error)


def _on_worker(task: _Task, policy: Policy | None) -> tuple[Policy, CompiledStage, Params]:
    """A chunk's policy (the caller's, on threads; else the worker's, loaded by digest), stage and parameters."""
    policy = policy if policy is not None else _worker_policy(task)
    assert isinstance(task.as_of, dt.date) and task.stage is not None
    compiled = policy.compiled
    return policy, compiled.stages[task.stage], compiled.parameters_on(task.as_of)


@dataclasses.dataclass(frozen=True)
class _Parcel:
    """A chunk's places and survey states as one object (a cluster's client need not walk through them
    looking for its own futures: Dask's does, in lists and dicts, at some 500 µs a subject)."""

    places: list[At]
    states: list[State]


def _decide_chunk(
    task: _Task,
    context: BaseModel | None,
    subjects: list[BaseModel] | bytes | list[str],
    parcel: _Parcel,
    policy: Policy | None = None,
) -> list[tuple[Any, ...]] | _Failure:
    """Step 3 on a worker: each subject of the chunk settled at its place, from the state its survey left.

    What comes back is plain data (`evaluate.settle_at`: phase 2's values, the rows, the deciding row), not
    decisions: the caller settles grants and allocation and builds each decision, with its own facts."""
    try:
        policy, stage, params = _on_worker(task, policy)
        compiled, backend = policy.compiled, policy._backend
        found = []
        with collector_paused():
            facts: list[Any] = [None] * len(parcel.places) if _ids(subjects) else _subjects(policy, subjects)
            for subject, at, (known, by_bounds) in zip(facts, parcel.places, parcel.states, strict=True):
                scope = Scope(subject, context, params, known=dict(known))  # a thread's caller keeps its own
                scope.by_bounds = by_bounds
                found.append(settle_at(compiled, backend, stage, scope, at))
        return found
    except EngineError as error:
        return _failure(error)


def _ids(subjects: Any) -> bool:
    """Whether a chunk was sent as its subjects' ids only (the stage's decide step reads no fact of theirs)."""
    return isinstance(subjects, list) and bool(subjects) and isinstance(subjects[0], str)


def _settle(get: Any, return_exceptions: bool) -> Any:
    try:
        return get()
    except EngineError as error:
        if return_exceptions:
            return error
        raise


def _portable(cohort: Any) -> Any:
    """A cohort as data a worker can receive: paths as text, dicts and models as they are."""
    return str(cohort) if isinstance(cohort, Path) else cohort


def _received(policy: Policy, answer: Result | _Failure) -> Result:
    """A worker's answer: re-raise its error, or attach its decisions to the caller's policy."""
    if isinstance(answer, _Failure):
        raise answer.error()
    decisions = {key: dataclasses.replace(d, policy=policy) for key, d in answer.decisions.items()}
    return dataclasses.replace(answer, decisions=decisions)


def _failure(error: EngineError) -> _Failure:
    found = getattr(error, "diagnostics", None)
    return _Failure(type(error).__name__, str(error), tuple(found) if found is not None else None)


def _run(task: _Task, cohort: Any) -> Result | _Failure:
    """In a worker: evaluate one cohort with the package the caller loaded (by digest)."""
    try:
        policy = _worker_policy(task)
        result = policy.evaluate(cohort, task.as_of, task.stage, task.trace, outside_period=task.outside_period)
    except EngineError as error:
        return _failure(error)
    decisions = {key: dataclasses.replace(d, policy=None) for key, d in result.decisions.items()}
    return dataclasses.replace(result, decisions=decisions)  # a Policy holds closures: not sent back


def _worker_policy(task: _Task) -> Policy:
    key = (task.path, task.backend, task.digest)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        policy = load_policy(task.path, backend=task.backend, fact_modules=task.fact_modules)
        found = policy.identity.digest
        _cache[(task.path, task.backend, found)] = policy
        while len(_cache) > WORKER_CACHE_SIZE:
            _cache.popitem(last=False)[1].close()
    if found != task.digest:
        raise EvaluationError(
            f"the rule package at `{task.path}` changed since it was loaded (digest {task.digest[:12]} there, "
            f"{found[:12]} in this worker): reload the policy and submit again"
        )
    return policy
