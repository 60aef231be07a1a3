"""Policy test files checked like rule files: names a case uses that the package does not know.

Before a case runs, each name it writes is checked against the package and its facts: the
outcome names and rule ids it expects (against the stage it decides), its stage, the parameters
it sets, the grant ids, the subject ids it expects or changes (against its fact file) and the fact
paths it changes (against the fact model). Each problem is a diagnostic at the line and column
of the name in the test file, with a "did you mean" where a known name is close.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from engine.core.diagnostics import Diagnostic
from engine.core.errors import EngineError
from engine.language.invariants import UNDETERMINED_OUTCOME
from engine.source.yamlsource import SourceMap
from engine.verification.casefile import Case, CaseFile, steps_of

if TYPE_CHECKING:
    from engine.embedding.policy import Policy

__all__ = ["check_case_file"]


def _hint(name: str, known: Iterable[str], what: str) -> str:
    names = sorted(set(known))
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return f"did you mean `{close[0]}`?"
    shown = ", ".join(f"`{n}`" for n in names[:12]) + (", ..." if len(names) > 12 else "")
    return f"the {what} are {shown}" if names else f"there are no {what}"


def _model_of(annotation: Any) -> Any:
    while True:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if typing.get_origin(annotation) in (None, typing.Literal) or not args:
            return annotation
        annotation = args[0]


def _path_problem(model: type[BaseModel], path: str) -> tuple[str, str] | None:
    """Why `path` is not a fact path of `model` (and a hint), or None."""
    try:
        steps = steps_of(path)
    except ValueError as error:
        return str(error), "write a fact path such as `scores.expert` or `members[0].name` (quoted in YAML)"
    current: Any = model
    walked: list[str] = []
    for step in steps:
        if isinstance(step, int):
            continue
        inner = _model_of(current)
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return f"`{'.'.join(walked)}` has no fields, so `{path}` is not a fact path", ""
        if step not in inner.model_fields:
            where = f"`{inner.__name__}`"
            return f"{where} has no field `{step}` (in `{path}`)", _hint(step, inner.model_fields, "fields")
        walked.append(step)
        current = inner.model_fields[step].annotation
    return None


class _Checker:
    def __init__(self, policy: Policy, source: SourceMap, path: Path) -> None:
        self.policy, self.source, self.path = policy, source, path
        self.found: list[Diagnostic] = []

    def error(self, code: str, message: str, where: tuple[str | int, ...], help: str, key: bool = False) -> None:
        self.found.append(Diagnostic(code, message, self.source.span(where, key=key), help or None))

    def facts(self, case: Case) -> tuple[set[str] | None, str | None]:
        """The subject ids of the case's facts and the stage its context names (None: cannot be read here)."""
        schema = self.policy.ir.schema
        try:
            if case.cohort is not None:
                cohort = self.policy.load_cohort(case.cohort)
            elif case.facts is not None:
                cohort = self.policy.load_cohort(self.path.parent / case.facts)
            else:
                return None, None
        except (EngineError, OSError):  # reported when the case runs
            return None, None
        context = getattr(cohort, schema.context_field) if schema.context_field else None
        stage = getattr(context, schema.stage_field, None) if context is not None and schema.stage_field else None
        ids = {str(getattr(s, schema.id_field)) for s in getattr(cohort, schema.subjects_field)}
        return ids, (str(stage) if stage is not None else None)

    def stage(self, case: Case, at: tuple[str | int, ...], written: str | None) -> str | None:
        ir = self.policy.ir
        if case.stage is not None:
            if case.stage not in ir.stages:
                hint = _hint(case.stage, ir.stages, "stages")
                self.error("unknown-stage", f"unknown stage `{case.stage}`", at + ("stage",), hint)
                return None
            return case.stage
        if written in ir.stages:
            return written
        return next(iter(ir.stages)) if len(ir.stages) == 1 else None

    def case(self, index: int, case: Case) -> None:
        ir, at = self.policy.ir, ("cases", index)
        ids, written = self.facts(case)
        stage = self.stage(case, at, written)
        outcomes = (
            {r.outcome for r in ir.stages[stage].outcomes}
            if stage is not None
            else {r.outcome for s in ir.stages.values() for r in s.outcomes}
        ) | {UNDETERMINED_OUTCOME}
        grants = {g.id for s in ir.stages.values() for r in s.outcomes for g in r.grants}
        for name in case.parameters:
            if name not in ir.parameters:
                self.error(
                    "unknown-parameter",
                    f"`set` names an unknown parameter `{name}`",
                    at + ("set", name),
                    _hint(name, ir.parameters, "parameters"),
                    key=True,
                )
        for subject, changes in case.changes.items():
            if ids is not None and subject not in ids:
                self.error(
                    "unknown-subject",
                    f"`changes` names `{subject}`, which is not in the facts",
                    at + ("changes", subject),
                    _hint(subject, ids, "subject ids"),
                    key=True,
                )
            for path in changes:
                problem = _path_problem(ir.schema.subject, path)
                if problem is not None:
                    self.error("unknown-fact-path", problem[0], at + ("changes", subject, path), problem[1], key=True)
        for j, want in enumerate(case.expect):
            where = at + ("expect", j)
            if ids is not None and want.id not in ids:
                self.error(
                    "unknown-subject",
                    f"`{want.id}` is not in the facts",
                    where + ("id",),
                    _hint(want.id, ids, "subject ids"),
                )
            if want.outcome not in outcomes:
                of = f" of stage `{stage}`" if stage is not None else ""
                self.error(
                    "unknown-outcome",
                    f"unknown outcome `{want.outcome}`{of}",
                    where + ("outcome",),
                    _hint(want.outcome, outcomes, "outcomes"),
                )
            for k, rule in enumerate(want.reasons):
                if rule not in ir.rules:
                    self.error(
                        "unknown-rule",
                        f"unknown rule `{rule}` among the expected reasons",
                        where + ("reasons", k),
                        _hint(rule, ir.rules, "rules"),
                    )
            for grant in want.grants or {}:
                if grant not in grants:
                    self.error(
                        "unknown-grant",
                        f"unknown grant `{grant}`",
                        where + ("grants", grant),
                        _hint(grant, grants, "grants"),
                        key=True,
                    )


def check_case_file(policy: Policy, cases: CaseFile, source: SourceMap, path: Path) -> list[Diagnostic]:
    """Every name the case file uses that the package or the case's facts do not know, located."""
    checker = _Checker(policy, source, path)
    for index, case in enumerate(cases.cases):
        checker.case(index, case)
    return checker.found
