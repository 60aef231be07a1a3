"""Policy tests: the YAML cases in a package's `tests/` folder, their results, and rule coverage.

A package's cases (`RULES/tests/*.yaml`, format in `engine.verification.casefile`) state, for given facts and
an as-of date, the outcomes (and optionally the reasons) the rules must give. `run_tests` runs
them all and measures coverage: for each rule, whether some decision made it hold and some made
it fail; for each outcome row, whether some decision was decided by it. Cases are prepared once
(`prepare`) so that mutants of the policy can re-run them cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.core.diagnostics import Diagnostic, Span
from engine.core.errors import EngineError
from engine.source.loader import manifest_path
from engine.verification.casecheck import check_case_file
from engine.verification.casefile import Case, CaseResult, case_cohort, load_cases, run_case

if TYPE_CHECKING:
    from engine.embedding.policy import Policy

__all__ = [
    "Prepared",
    "Coverage",
    "TestReport",
    "case_files",
    "prepare",
    "run_prepared",
    "run_tests",
    "seed_subjects",
    "known_cohorts",
]

TESTS_DIR = "tests"


@dataclass(frozen=True)
class Prepared:
    """One case, located, with its cohort validated once (or the problem building it)."""

    file: Path
    case: Case
    span: Span
    cohort: Any = None
    problem: str | None = None


@dataclass
class Coverage:
    """Which rules some decision made hold and fail, and which outcome rows decided."""

    rules: dict[str, set[str]] = field(default_factory=dict)
    rows: set[tuple[str, int]] = field(default_factory=set)

    def add(self, result: Any) -> None:
        for decision in result.decisions.values():
            if decision.row is not None:
                self.rows.add((result.stage, decision.row))
            for name, value in decision.trace.items():
                if isinstance(value, bool) and not name.startswith("row:"):
                    self.rules.setdefault(name, set()).add("held" if value else "failed")

    def missing(self, policy: Policy) -> dict[str, list[str]]:
        """Rule → the results no case gave it (`held`, `failed`), for rules not covered both ways."""
        found = {
            name: [s for s in ("held", "failed") if s not in self.rules.get(name, set())] for name in policy.ir.rules
        }
        return {name: gaps for name, gaps in found.items() if gaps}

    def rows_missing(self, policy: Policy) -> list[tuple[str, int, str]]:
        return [
            (s.id, r.index, r.outcome)
            for s in policy.ir.stages.values()
            for r in s.outcomes
            if (s.id, r.index) not in self.rows
        ]


@dataclass
class TestReport:
    results: list[CaseResult] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)
    coverage: Coverage = field(default_factory=Coverage)

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed


def case_files(policy: Policy) -> list[Path]:
    """The case files of a package: `tests/*.yaml` beside its manifest."""
    return sorted((manifest_path(Path(policy.path)).parent / TESTS_DIR).glob("*.yaml"))


def prepare(policy: Policy, files: list[Path] | None = None) -> tuple[list[Prepared], list[Diagnostic]]:
    """Every case of the package, its cohort built once; unreadable files are diagnostics."""
    prepared: list[Prepared] = []
    problems: list[Diagnostic] = []
    for path in case_files(policy) if files is None else files:
        try:
            cases, source = load_cases(path)
        except EngineError as error:
            problems += getattr(error, "diagnostics", []) or [Diagnostic("bad-case-file", str(error), Span(str(path)))]
            continue
        problems += check_case_file(policy, cases, source, path)  # names the package does not know, located
        for i, case in enumerate(cases.cases):
            span = source.span(("cases", i))
            try:
                prepared.append(Prepared(path, case, span, case_cohort(policy, case, path)))
            except EngineError as error:
                why = "; ".join(d.message for d in getattr(error, "diagnostics", [])) or str(error)
                prepared.append(Prepared(path, case, span, problem=f"facts cannot be used: {why}"))
    return prepared, problems


def run_prepared(policy: Policy, case: Prepared) -> CaseResult:
    """Run one prepared case against `policy` (the package's own, or a mutant of it)."""
    if case.problem is not None:
        return CaseResult(case.file, case.case.name, case.span, (case.problem,))
    return run_case(policy, case.case, case.file, case.span, cohort=case.cohort)


def run_tests(
    policy: Policy, prepared: list[Prepared] | None = None, problems: list[Diagnostic] | None = None
) -> TestReport:
    """Run every case of the package and measure rule coverage."""
    if prepared is None:
        prepared, problems = prepare(policy)
    report = TestReport(problems=list(problems or []))
    for case in prepared:
        result = run_prepared(policy, case)
        report.results.append(result)
        if result.result is not None:
            report.coverage.add(result.result)
    return report


def seed_subjects(policy: Policy, prepared: list[Prepared]) -> list[dict[str, Any]]:
    """The subjects of the package's cases, as plain data without ids: seeds for the search."""
    schema = policy.ir.schema
    seen: dict[str, dict[str, Any]] = {}
    for case in prepared:
        for subject in getattr(case.cohort, schema.subjects_field, None) or []:
            data = subject.model_dump(mode="python", exclude_none=True)
            data.pop(schema.id_field, None)
            seen.setdefault(repr(data), data)
    return list(seen.values())


def known_cohorts(report: TestReport) -> list[tuple[str, Any, dict[str, Any]]]:
    """(stage, as-of date, facts) of every case that ran: cohorts the invariant search checks first."""
    found = []
    for result in report.results:
        decided = result.result
        if decided is None or not decided.decisions:
            continue
        first = next(iter(decided.decisions.values()))
        context, subjects = first.context, [d.subject for d in decided.decisions.values()]
        found.append((decided.stage, decided.as_of, _facts(context, subjects, first.policy)))
    return found


def _facts(context: Any, subjects: list[Any], policy: Any) -> dict[str, Any]:
    schema = policy.ir.schema
    data: dict[str, Any] = {schema.subjects_field: [s.model_dump(mode="python", exclude_none=True) for s in subjects]}
    if schema.context_field is not None and context is not None:
        data = {schema.context_field: context.model_dump(mode="python", exclude_none=True), **data}
    return data
