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
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, overload

from engine.core import errors
from engine.core.diagnostics import Diagnostic
from engine.core.errors import EngineError, EvaluationError, FactError, PolicyError
from engine.embedding.policy import BackendName, Policy, load_policy
from engine.evaluation.result import Result

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
) -> list[Result] | list[Result | EngineError]:
    """Evaluate every cohort (model, dict or file path) with `policy`, results in input order.

    Without `executor` the cohorts are evaluated one after another in this thread. The first
    `EngineError` (in input order) is raised, unless `return_exceptions` is true: then it takes
    that cohort's place in the list. Other exceptions (bugs) always propagate. `outside_period`
    lets a stage decide outside its declared period (a what-if), as in `Policy.evaluate`.
    """
    items = list(cohorts)
    if executor is None:
        return [
            _settle(lambda c=c: policy.evaluate(c, as_of, stage, outside_period=outside_period), return_exceptions)
            for c in items
        ]
    if isinstance(executor, ThreadPoolExecutor):
        futures: list[Future[Any]] = [
            executor.submit(policy.evaluate, c, as_of, stage, outside_period=outside_period) for c in items
        ]
        return [_settle(f.result, return_exceptions) for f in futures]
    task = _Task(
        path=str(Path(policy.path).resolve()),
        backend=policy.backend_name,
        digest=policy.identity.digest,
        as_of=as_of,
        stage=stage,
        fact_modules=policy.fact_modules.specs(),
        outside_period=outside_period,
    )
    futures = [executor.submit(_run, task, _portable(c)) for c in items]
    return [_settle(lambda f=f: _received(policy, f.result()), return_exceptions) for f in futures]


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


def _run(task: _Task, cohort: Any) -> Result | _Failure:
    """In a worker: evaluate one cohort with the package the caller loaded (by digest)."""
    try:
        result = _worker_policy(task).evaluate(cohort, task.as_of, task.stage, outside_period=task.outside_period)
    except EngineError as error:
        found = getattr(error, "diagnostics", None)
        return _Failure(type(error).__name__, str(error), tuple(found) if found is not None else None)
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
