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
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from engine.core.diagnostics import Diagnostic, Span
from engine.core.errors import BackendUnavailable, EvaluationError, FactError, PolicyError
from engine.evaluation.compiled import CompiledPolicy, compile_policy
from engine.evaluation.evaluate import Backend, PythonBackend, evaluate_cohort, evaluate_subject
from engine.evaluation.generated import GeneratedBackend
from engine.evaluation.result import Decision, PolicyIdentity, Result
from engine.language.checker import check
from engine.language.factmodels import FactModules, ModuleSpec, trusted_fact_modules
from engine.language.factpaths import set_path
from engine.language.ir import PolicyIR
from engine.language.overrides import override_parameters
from engine.source.facts import load_facts
from engine.source.loader import PackageSource, load_sources

__all__ = [
    "Policy",
    "load_policy",
    "BackendName",
    "SETTLE_SECONDS",
    "SNAPSHOT_PAUSE",
    "SNAPSHOT_TRIES",
    "package_files",
]

BackendName = Literal["generated", "python", "durable"]
SETTLE_SECONDS = 0.1  # a reload first waits until no package file was written for this long
SNAPSHOT_PAUSE = 0.1  # seconds to wait before reading again a package that changed while it was read
SNAPSHOT_TRIES = 10  # reads of a package that changed while it was read, before giving up


def _backend(name: str, compiled: CompiledPolicy) -> Backend:
    if name == "generated":
        return GeneratedBackend()
    if name == "python":
        return PythonBackend()
    if name == "durable":
        from engine.evaluation.durable.backend import DurableBackend

        return DurableBackend(compiled)
    raise BackendUnavailable(f"unknown backend `{name}`: use `generated`, `python` or `durable`")


class Policy:
    """A checked and compiled rule package."""

    def __init__(
        self,
        path: Path,
        compiled: CompiledPolicy,
        warnings: list[Diagnostic],
        backend: BackendName = "generated",
        fact_modules: FactModules | None = None,
        sources: Mapping[str, bytes] | None = None,
    ) -> None:
        self.path = path
        # The package's files exactly as they were read (path relative to the package → bytes),
        # manifest first: what a decision record stores so that replay never needs the folder.
        self.sources: Mapping[str, bytes] = dict(sources or {})
        self.fact_modules = fact_modules if fact_modules is not None else trusted_fact_modules()
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
        return self.compiled.identity

    @property
    def overrides(self) -> dict[str, Any]:
        """The what-if parameters in force (`with_parameters`), as JSON data; empty for the package as written."""
        return self.identity.to_json().get("overrides", {})

    def with_parameters(self, values: Mapping[str, Any]) -> Policy:
        """A new `Policy` with these parameters set (what-if); this one is unchanged.

        Each value is type-checked against the parameter (PolicyError lists every problem); a dated
        parameter takes the value on every as-of date. Results and outputs name the overrides.
        """
        ir = override_parameters(self.ir, values)
        return Policy(
            path=self.path,
            compiled=compile_policy(ir),
            warnings=self.warnings,
            backend=self.backend_name,
            fact_modules=self.fact_modules,
            sources=self.sources,
        )

    def check(self) -> list[Diagnostic]:
        """The warnings found when the package was checked (errors would have stopped loading)."""
        return list(self.warnings)

    def with_backend(self, backend: BackendName) -> Policy:
        """The same compiled policy on another backend."""
        return Policy(
            path=self.path,
            compiled=self.compiled,
            warnings=self.warnings,
            backend=backend,
            fact_modules=self.fact_modules,
            sources=self.sources,
        )

    def reload(self, settle: float = SETTLE_SECONDS) -> Policy:
        """Load the package again from disk, as a new `Policy` on the same backend.

        Raises `PolicyError` with every diagnostic if the files on disk are broken; this policy
        is unchanged either way (close it when it is no longer needed). The fact-model modules
        trusted when this policy was loaded are the only ones the reload may import.

        The files are read as one snapshot: the reload waits until no file of the package was
        written in the last `settle` seconds, and reads again, after a pause, if a file was
        written while it was read (a file being rewritten in place), up to `SNAPSHOT_TRIES` times.
        """
        fresh = _load(self.path, self.backend_name, self.fact_modules, settle)
        return fresh.with_parameters(dict(self.ir.overrides)) if self.ir.overrides else fresh

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

    def _in_flight(self) -> AbstractContextManager[None]:
        """An evaluation using the backend: `close()` frees it only once none is in flight."""
        return _InFlight(self)

    def with_facts(self, cohort: Any, changes: Mapping[str, Mapping[str, Any]]) -> BaseModel:
        """The cohort with some subjects' facts changed (what-if), validated again by the fact model.

        `changes` maps a subject's id to `{fact path: value}`, e.g. `{"nc-ai": {"scores.expert": 30}}`;
        an unknown id or a path that cannot be set is an `EvaluationError`, a bad value a `FactError`.
        """
        schema = self.ir.schema
        data = self.load_cohort(cohort).model_dump()
        subjects = {str(s.get(schema.id_field)): s for s in data.get(schema.subjects_field) or []}
        for subject_id, facts in changes.items():
            if subject_id not in subjects:
                known = ", ".join(f"`{i}`" for i in subjects)
                raise EvaluationError(f"--set-fact: no subject `{subject_id}` in the cohort; ids: {known}")
            for path, value in facts.items():
                if not set_path(subjects[subject_id], path, value):
                    raise EvaluationError(f"--set-fact: `{subject_id}.{path}` cannot be set (no such record)")
        return self.load_cohort(data)

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
        if stage is not None and stage in self.ir.stages:
            return stage
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
        self,
        cohort: Any,
        as_of: dt.date | str | None = None,
        stage: str | None = None,
        trace: bool = True,
        *,
        outside_period: bool = False,
        tick: Callable[[], None] | None = None,
    ) -> Result:
        """Decide every subject of a cohort (model, dict or file path) as of a date.

        With `trace=False` decisions keep their outcome and reasons but not the values needed to
        build an explanation graph (less memory for large batches); the decisions are the same.
        A stage that declares its period (`dates:`) refuses a date outside it (`OutsidePeriod`)
        unless `outside_period=True` (a what-if; the result says so). `tick`, if given, is called
        once per subject in each of the evaluation's two passes (a progress display).
        """
        model = self.load_cohort(cohort)
        context = self._context(model)
        subjects = getattr(model, self.ir.schema.subjects_field)
        date, stage_id = self._as_of(context, as_of), self._stage(context, stage)
        with self._in_flight():
            return evaluate_cohort(
                self.compiled,
                self._backend,
                subjects,
                context,
                date,
                stage_id,
                owner=self,
                cohort=model,
                trace=trace,
                outside_period=outside_period,
                tick=tick,
            )

    def decide(
        self,
        subject: Any,
        as_of: dt.date | str | None = None,
        stage: str | None = None,
        context: Any = None,
        *,
        outside_period: bool = False,
    ) -> Decision:
        """Decide one subject outside a cohort.

        `as_of` defaults to the context's date, else today; `stage` to the context's stage, else
        the policy's only stage; `context` is the cohort's context (a model or a dict). A stage that
        ranks its pool (`rank_by`, `slots`, `capacity`) ranks the subject alone, in a pool of one
        (`stage.rank` 1 of 1), as `evaluate` would decide a cohort of that one subject; that needs
        the context the cohort model asks for (built from the stage and date when it holds only
        those). A date outside the stage's declared period is refused (`OutsidePeriod`) unless
        `outside_period=True`.
        """
        model = load_facts(self.ir.schema.subject, subject)
        context = self._context_of(context)
        date, stage_id = (
            self._as_of(context, as_of or (None if context is not None else dt.date.today())),
            self._stage(context, stage),
        )
        if self._ranks(stage_id):
            return self._decide_alone(model, context, date, stage_id, outside_period)
        with self._in_flight():
            return evaluate_subject(
                self.compiled,
                self._backend,
                model,
                date,
                stage_id,
                context,
                owner=self,
                outside_period=outside_period,
            )

    def _ranks(self, stage_id: str) -> bool:
        stage = self.ir.stages[stage_id]
        return bool(stage.rank_by) or stage.slots is not None or stage.capacity is not None

    def _context_of(self, context: Any) -> Any:
        """A context given as a dict, validated as the cohort model's context."""
        schema = self.ir.schema
        if not isinstance(context, dict) or schema.context_field is None:
            return context
        cohort = self.load_cohort({schema.context_field: context, schema.subjects_field: []})
        return getattr(cohort, schema.context_field)

    def _decide_alone(
        self, model: BaseModel, context: Any, date: dt.date, stage_id: str, outside_period: bool
    ) -> Decision:
        """`model` decided in a cohort of its own: the stage ranks it in a pool of one."""
        schema = self.ir.schema
        data: dict[str, Any] = {schema.subjects_field: [model.model_dump()]}
        if schema.context_field is not None:
            if context is None:
                built = {schema.stage_field: stage_id, schema.date_field: date}
                context = {k: v for k, v in built.items() if k is not None}
            data[schema.context_field] = context.model_dump() if isinstance(context, BaseModel) else context
        try:
            cohort = self.load_cohort(data)
        except FactError as error:
            first = error.diagnostics[0].message if error.diagnostics else str(error)
            raise EvaluationError(
                f"stage `{stage_id}` ranks its pool, so one subject is decided in a pool of its own, and that "
                f"cohort needs its context: pass `context=` ({first})"
            ) from None
        result = self.evaluate(cohort, as_of=date, stage=stage_id, outside_period=outside_period)
        return result.decisions[str(getattr(model, schema.id_field))]


class _InFlight:
    """`Policy._in_flight()`: counts the evaluations using the policy's backend (a class, not a generator:
    it is entered once per evaluation)."""

    __slots__ = ("policy",)

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def __enter__(self) -> None:
        policy = self.policy
        with policy._guard:
            policy._running += 1

    def __exit__(self, *_: object) -> None:
        policy = self.policy
        with policy._guard:
            policy._running -= 1
            if policy._closed and policy._running == 0:
                policy._free()


def load_policy(
    path: str | Path, backend: BackendName = "generated", fact_modules: Iterable[ModuleSpec] = ()
) -> Policy:
    """Load, check and compile the rule package at `path` (its folder or its `policy.yaml`).

    The package's fact models are imported only from trusted modules: those that installed
    distributions register under the `engine.fact_models` entry-point group, those named in the
    `POLICY_FACT_MODULES` environment variable, and `fact_modules` (module names, paths of `.py`
    files, or modules). Loading never runs code that the package brought, nor changes `sys.path`.
    """
    return _load(Path(path), backend, trusted_fact_modules(fact_modules))


def _load(path: Path, backend: BackendName, fact_modules: FactModules, settle: float = 0.0) -> Policy:
    """Load a consistent snapshot: no file of the package was written while it was read and checked."""
    for _ in range(SNAPSHOT_TRIES):
        before = _stamps(path)
        unsettled = _unsettled(before, settle)
        if unsettled > 0:  # a file was written less than `settle` seconds before these stamps
            time.sleep(unsettled)
            continue
        outcome = _attempt(path, fact_modules)
        if _stamps(path) == before:
            if isinstance(outcome, PolicyError):
                raise outcome
            source, (ir, warnings) = outcome
            return Policy(
                path=path,
                compiled=compile_policy(ir),
                warnings=warnings,
                backend=backend,
                fact_modules=fact_modules,
                sources=dict(source.contents),
            )
        time.sleep(SNAPSHOT_PAUSE)  # a file is being rewritten (its errors may be a half-written file's): again
    message = (
        f"the rule package `{path}` kept changing while it was read ({SNAPSHOT_TRIES} tries); replace its "
        "files atomically (write a new file beside the old one, then rename it over the old one)"
    )
    raise PolicyError([Diagnostic(code="package-changing", message=message, span=Span(str(path)))])


def _attempt(
    path: Path, fact_modules: FactModules
) -> tuple[PackageSource, tuple[PolicyIR, list[Diagnostic]]] | PolicyError:
    """Read and check the package once."""
    try:
        source = load_sources(path)
        return source, check(source, fact_modules)
    except PolicyError as error:
        return error


def package_files(path: Path) -> list[Path]:
    """Every file under the package's folder, but hidden ones, caches and editors' temporary files."""
    root = path if path.is_dir() else path.parent
    return sorted(p for p in root.rglob("*") if p.is_file() and not _ignored(p.relative_to(root)))


def _ignored(relative: Path) -> bool:
    return any(part.startswith(".") or part == "__pycache__" for part in relative.parts) or relative.suffix in (
        ".pyc",
        ".swp",
        ".tmp",
    )


def _stamps(path: Path) -> tuple[tuple[str, int, int], ...]:
    """Each file's name, modification time (ns) and size: any write in between changes them."""
    stamps = []
    for file in package_files(path):
        try:
            stat = file.stat()
        except OSError:  # removed while walking
            stamps.append((str(file), -1, -1))
        else:
            stamps.append((str(file), stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)


def _unsettled(stamps: tuple[tuple[str, int, int], ...], settle: float) -> float:
    """How long to wait until the newest write in `stamps` is `settle` seconds old (0: settled).

    Taken from the very stamps that are compared after the read, so a write that starts between
    a quiet check and the read cannot slip through (a half-written file that stays unchanged
    while it is read and checked, some milliseconds)."""
    if settle <= 0:
        return 0.0
    newest = max((m for _, m, _ in stamps), default=0) / 1e9
    return max(0.0, min(settle, settle - (time.time() - newest)))
