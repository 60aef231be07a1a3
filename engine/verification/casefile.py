"""Policy test cases in YAML: given facts and a date, the outcomes (and reasons) expected.

Policymakers write these next to their rules (`rules/<package>/tests/*.yaml`); the engine's own
golden cases use the same format. A file holds `cases`, each with facts (a file, inline, or a
file with `changes` to some consortia), an optional as-of date and stage, and expectations:

    cases:
      - name: Naver Cloud is disqualified for its Qwen2.5-VL encoders
        facts: ../../../examples/stage1.yaml
        changes:
          nc-ai: {scores.expert: 31.0, "model.components[1].weights.use": fine_tuned}
        expect:
          - id: naver-cloud
            outcome: disqualified
            reasons: [weights_trained_by_team]      # rules among the decisive reasons
            messages: ["Qwen2.5-VL"]               # text found in the decisive messages
        summary: {filled: 3, open: 1}
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engine.core.diagnostics import Diagnostic, Span
from engine.core.errors import EngineError, FactError
from engine.embedding.policy import Policy
from engine.source.validation import validation_diagnostics
from engine.source.yamlsource import SourceMap, read_document

__all__ = [
    "CaseFile",
    "Case",
    "Expectation",
    "CaseResult",
    "load_cases",
    "run_case",
    "run_file",
    "case_cohort",
    "compare",
    "steps_of",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Expectation(_Model):
    id: str
    outcome: str
    reasons: list[str] = []
    messages: list[str] = []
    grants: dict[str, float | None] | None = None  # grant id → quantity (None: a designation); exactly these
    rank: int | None = None  # its rank in the stage's ranking
    rank_range: tuple[int, int] | None = None  # its rank not known (missing facts): the best and worst it may be
    missing: list[str] | None = None  # exactly the facts it is undetermined for (another's as `id: path`)


class SummaryExpectation(_Model):
    filled: int | None = None
    open: int | None = None
    pending: int | None = None


class Case(_Model):
    name: str
    facts: str | None = None
    cohort: dict[str, Any] | None = None
    changes: dict[str, dict[str, Any]] = {}
    as_of: dt.date | None = None
    stage: str | None = None
    outside_period: bool = False  # decide the stage as of a date outside its declared period (a what-if)
    parameters: dict[str, Any] = Field(default={}, alias="set")  # what-if: parameters set for this case only
    expect: list[Expectation] = Field(min_length=1)
    summary: SummaryExpectation | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Case:
        if self.facts is not None and self.cohort is not None:
            raise ValueError("give one of `facts` (a file) or `cohort` (inline facts), not both")
        return self


class CaseFile(_Model):
    """A file of cases; `facts` here is the default fact file of cases that name none."""

    description: str | None = None
    facts: str | None = None
    cases: list[Case] = Field(min_length=1)

    @model_validator(mode="after")
    def _every_case_has_facts(self) -> CaseFile:
        if self.facts is None and any(c.facts is None and c.cohort is None for c in self.cases):
            raise ValueError("a case needs `facts` (a file) or `cohort` (inline facts), or the file a default `facts`")
        return self

    def with_defaults(self) -> CaseFile:
        """The cases with the file's default `facts` filled in."""
        cases = [
            c if c.facts or c.cohort is not None else c.model_copy(update={"facts": self.facts}) for c in self.cases
        ]
        return self.model_copy(update={"cases": cases})


@dataclass(frozen=True)
class CaseResult:
    file: Path
    name: str
    span: Span
    failures: tuple[str, ...]
    result: Any = field(default=None, compare=False, repr=False)  # the evaluation's Result, if it ran

    @property
    def passed(self) -> bool:
        return not self.failures


def load_cases(path: Path) -> tuple[CaseFile, SourceMap]:
    """Read and validate a case file; raise FactError (with locations) if it is malformed."""
    document = read_document(path)
    if document.diagnostics:
        raise FactError(document.diagnostics)
    try:
        return CaseFile.model_validate(document.data or {}).with_defaults(), document.source
    except ValidationError as error:
        raise FactError(validation_diagnostics(error, document.data, document.source, model=CaseFile)) from None


def _cohort(policy: Policy, case: Case, base: Path) -> dict[str, Any]:
    if case.cohort is not None:
        data = copy.deepcopy(case.cohort)
    else:
        data = policy.load_cohort(base / case.facts).model_dump()  # type: ignore[operator]
    subjects = data.get(policy.ir.schema.subjects_field, [])
    by_id = {str(s.get(policy.ir.schema.id_field)): s for s in subjects}
    for subject_id, changes in case.changes.items():
        if subject_id not in by_id:
            raise FactError(
                [
                    Diagnostic(
                        "unknown-subject", f"`changes` names `{subject_id}`, which is not in the facts", Span(str(base))
                    )
                ]
            )
        for path, value in changes.items():
            try:
                _set(by_id[subject_id], _steps(path), value)
            except ValueError as error:
                raise FactError(
                    [Diagnostic("bad-change", f"cannot change `{path}` of `{subject_id}`: {error}", Span(str(base)))]
                ) from None
    return data


_STEP = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)$")


def _steps(path: str) -> list[str | int]:
    """`model.components[1].weights` → ["model", "components", 1, "weights"]."""
    steps: list[str | int] = []
    for part in path.split("."):
        match = _STEP.match(part)
        if match is None:
            raise ValueError(f"`{path}` is not a fact path (e.g. `scores.expert` or `model.components[1].kind`)")
        steps.append(match.group(1))
        steps += [int(i) for i in re.findall(r"\d+", match.group(2))]
    return steps


def steps_of(path: str) -> list[str | int]:
    """The steps of a fact path as `changes` writes it; ValueError if it is not one."""
    return _steps(path)


def _set(target: Any, path: list[str | int], value: Any) -> None:
    for step, following in zip(path[:-1], path[1:], strict=True):
        if isinstance(step, int):
            if not isinstance(target, list) or step >= len(target):
                raise ValueError(f"there is no item {step} to change")
            target = target[step]
        else:
            if target.get(step) is None:
                target[step] = [] if isinstance(following, int) else {}
            target = target[step]
    if isinstance(path[-1], int) and (not isinstance(target, list) or path[-1] > len(target)):
        raise ValueError(f"there is no item {path[-1]} to change (or to add after the last)")
    if isinstance(path[-1], int) and path[-1] == len(target):
        target.append(value)  # one past the last item adds an item
    else:
        target[path[-1]] = value


def case_cohort(policy: Policy, case: Case, file: Path) -> Any:
    """The validated cohort a case decides (its facts with its changes applied)."""
    return policy.load_cohort(_cohort(policy, case, file.parent))


def run_case(policy: Policy, case: Case, file: Path, span: Span, cohort: Any = None) -> CaseResult:
    """Evaluate one case (or its `cohort`, already built) and compare with what it expects."""
    try:
        facts = cohort if cohort is not None else _cohort(policy, case, file.parent)
        policy = policy.with_parameters(case.parameters) if case.parameters else policy
        result = policy.evaluate(facts, as_of=case.as_of, stage=case.stage, outside_period=case.outside_period)
    except EngineError as error:
        return CaseResult(file, case.name, span, (f"evaluation failed: {error}",))
    return CaseResult(file=file, name=case.name, span=span, failures=tuple(compare(case, result)), result=result)


def compare(case: Case, result: Any) -> list[str]:
    """What differs between a case's expectations and a result."""
    failures: list[str] = []
    for want in case.expect:
        decision = result.decisions.get(want.id)
        if decision is None:
            failures.append(f"`{want.id}` is not in the facts")
            continue
        if decision.outcome != want.outcome:
            failures.append(f"`{want.id}`: expected `{want.outcome}`, got `{decision.outcome}`")
        decisive = [r for r in decision.reasons if r.role == "decisive"]
        for rule in want.reasons:
            if rule not in {r.rule for r in decisive}:
                failures.append(
                    f"`{want.id}`: rule `{rule}` is not among the decisive reasons "
                    f"({', '.join(r.rule for r in decisive) or 'none'})"
                )
        for text in want.messages:
            if not any(text in r.message for r in decisive):
                failures.append(f"`{want.id}`: no decisive reason mentions `{text}`")
        got = {g.id: g.quantity for g in getattr(decision, "grants", ())}
        if want.grants is not None and got != want.grants:
            failures.append(f"`{want.id}`: expected grants {want.grants}, got {got}")
        failures += _placement_failures(want, decision)
    if case.summary is not None and result.summary is not None:
        for key in ("filled", "open", "pending"):
            wanted, got = getattr(case.summary, key), getattr(result.summary, key)
            if wanted is not None and wanted != got:
                failures.append(f"summary: expected {key} = {wanted}, got {got}")
    return failures


def _placement_failures(want: Expectation, decision: Any) -> list[str]:
    """A rank, a rank range or the missing facts expected of a decision, and what it has instead."""
    failures = []
    place = decision.placement
    rank = place.rank if place else None
    span = place.rank_range if place else None
    if want.rank is not None and rank != want.rank:
        failures.append(f"`{want.id}`: expected rank {want.rank}, got {rank if rank is not None else span}")
    if want.rank_range is not None and span != tuple(want.rank_range):
        got = f"{span[0]} to {span[1]}" if span else f"rank {rank}"
        failures.append(f"`{want.id}`: expected a rank from {want.rank_range[0]} to {want.rank_range[1]}, got {got}")
    if want.missing is not None and sorted(want.missing) != sorted(decision.missing):
        failures.append(f"`{want.id}`: expected missing {sorted(want.missing)}, got {list(decision.missing)}")
    return failures


def run_file(policy: Policy, path: Path) -> list[CaseResult]:
    """Run every case of a case file."""
    cases, source = load_cases(path)
    return [run_case(policy, case, path, source.span(("cases", i))) for i, case in enumerate(cases.cases)]
