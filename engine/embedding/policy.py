"""The `Policy` object: a loaded, checked, compiled rule package, ready to evaluate.

    policy = load_policy("rules/sovereign_ai")
    result = policy.evaluate("examples/stage1.yaml")
    result.decisions["naver-cloud"].outcome      # "disqualified"

A `Policy` is immutable and safe to share between threads; every evaluation has its own state.
`reload()` loads the package again into a new `Policy` (the old one keeps answering); `close()`
frees backend resources (the durable backend's rulesets) once the evaluations in flight finish.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from engine.core.diagnostics import Diagnostic
from engine.core.errors import BackendUnavailable, EvaluationError
from engine.evaluation.compiled import CompiledPolicy, compile_policy
from engine.evaluation.evaluate import Backend, PythonBackend, evaluate_cohort, evaluate_subject
from engine.evaluation.result import Decision, PolicyIdentity, Result
from engine.language.checker import check
from engine.language.ir import PolicyIR
from engine.source.facts import load_facts
from engine.source.loader import load_sources

__all__ = ["Policy", "load_policy", "BackendName"]

BackendName = Literal["python", "durable"]


def _backend(name: str, compiled: CompiledPolicy) -> Backend:
    if name == "python":
        return PythonBackend()
    if name == "durable":
        from engine.evaluation.durable.backend import DurableBackend

        return DurableBackend(compiled)
    raise BackendUnavailable(f"unknown backend `{name}`: use `python` or `durable`")


class Policy:
    """A checked and compiled rule package."""

    def __init__(
        self, path: Path, compiled: CompiledPolicy, warnings: list[Diagnostic], backend: BackendName = "python"
    ) -> None:
        self.path = path
        self.compiled = compiled
        self.warnings = warnings
        self.backend_name = backend
        self._backend = _backend(backend, compiled)
        self._guard = threading.Lock()
        self._running = 0  # evaluations in flight
        self._closed = False

    @property
    def ir(self) -> PolicyIR:
        return self.compiled.ir

    @property
    def identity(self) -> PolicyIdentity:
        """Name, version and content hash of the package's files."""
        return PolicyIdentity(self.ir.name, self.ir.version, self.ir.digest)

    def check(self) -> list[Diagnostic]:
        """The warnings found when the package was checked (errors would have stopped loading)."""
        return list(self.warnings)

    def with_backend(self, backend: BackendName) -> Policy:
        """The same compiled policy on another backend."""
        return Policy(self.path, self.compiled, self.warnings, backend)

    def reload(self) -> Policy:
        """Load the package again from disk, as a new `Policy` on the same backend.

        Raises `PolicyError` with every diagnostic if the files on disk are broken; this policy
        is unchanged either way (close it when it is no longer needed).
        """
        return load_policy(self.path, backend=self.backend_name)

    def close(self) -> None:
        """Free backend resources (durable rulesets) now, or when the evaluations in flight finish.

        Idempotent. A closed policy still answers: a caller that picked it up just before a swap
        does not fail; what the backend then builds is freed again after each evaluation.
        """
        with self._guard:
            self._closed = True
            if self._running == 0:
                self._free()

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""
        return self._closed

    def __enter__(self) -> Policy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _free(self) -> None:
        close = getattr(self._backend, "close", None)
        if close is not None:
            close()

    @contextmanager
    def _in_flight(self) -> Iterator[None]:
        with self._guard:
            self._running += 1
        try:
            yield
        finally:
            with self._guard:
                self._running -= 1
                if self._closed and self._running == 0:
                    self._free()

    def load_cohort(self, cohort: Any) -> BaseModel:
        """Validate a cohort (model instance, dict, or file path) against the fact model."""
        return load_facts(self.ir.schema.cohort, cohort)

    def _context(self, cohort: BaseModel) -> BaseModel | None:
        field = self.ir.schema.context_field
        return getattr(cohort, field) if field else None

    def _stage(self, context: BaseModel | None, stage: str | None) -> str:
        schema = self.ir.schema
        if stage is None and context is not None and schema.stage_field:
            stage = str(getattr(context, schema.stage_field))
        if stage is None and len(self.ir.stages) == 1:
            stage = next(iter(self.ir.stages))
        known = ", ".join(f"`{s}`" for s in self.ir.stages)
        if stage is None:
            raise EvaluationError(
                f"which stage? this policy defines {known}: pass one (`stage=`, `--stage`) or give the "
                "cohort's context a stage"
            )
        if stage not in self.ir.stages:
            raise EvaluationError(f"unknown stage `{stage}`: this policy defines {known}")
        return stage

    def _as_of(self, context: BaseModel | None, as_of: dt.date | str | None) -> dt.date:
        if isinstance(as_of, str):
            try:
                return dt.date.fromisoformat(as_of)
            except ValueError:
                raise EvaluationError(f"as-of date `{as_of}` is not a date (YYYY-MM-DD)") from None
        if as_of is not None:
            return as_of
        field = self.ir.schema.date_field
        if context is not None and field and getattr(context, field, None) is not None:
            return getattr(context, field)  # type: ignore[no-any-return]
        raise EvaluationError("no as-of date: pass one, or give the cohort's context a date")

    def evaluate(
        self, cohort: Any, as_of: dt.date | str | None = None, stage: str | None = None, trace: bool = True
    ) -> Result:
        """Decide every subject of a cohort (model, dict or file path) as of a date.

        With `trace=False` decisions keep their outcome and reasons but not the values needed to
        build an explanation graph (less memory for large batches); the decisions are the same.
        """
        model = self.load_cohort(cohort)
        context = self._context(model)
        subjects = getattr(model, self.ir.schema.subjects_field)
        date, stage_id = self._as_of(context, as_of), self._stage(context, stage)
        with self._in_flight():
            return evaluate_cohort(
                self.compiled, self._backend, subjects, context, date, stage_id, owner=self, cohort=model, trace=trace
            )

    def decide(
        self, subject: Any, as_of: dt.date | str | None = None, stage: str | None = None, context: Any = None
    ) -> Decision:
        """Decide one subject outside a cohort; rules that need a ranking are undetermined.

        `as_of` defaults to the context's date, else today; `stage` to the context's stage, else
        the policy's only stage.
        """
        model = load_facts(self.ir.schema.subject, subject)
        date, stage_id = (
            self._as_of(context, as_of or (None if context is not None else dt.date.today())),
            self._stage(context, stage),
        )
        with self._in_flight():
            return evaluate_subject(self.compiled, self._backend, model, date, stage_id, context, owner=self)


def load_policy(path: str | Path, backend: BackendName = "python") -> Policy:
    """Load, check and compile the rule package at `path` (its folder or its `policy.yaml`)."""
    source = load_sources(path)
    ir, warnings = check(source)
    return Policy(Path(path), compile_policy(ir), warnings, backend)
