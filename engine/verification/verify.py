"""Search generated cohorts for counterexamples to a package's invariants (Hypothesis).

`search_invariants(policy)` draws cohorts with `engine.verification.search`, decides each, and checks every
invariant; a violation is shrunk by Hypothesis to a small cohort and returned as a `Violation`
whose `cohort` is a ready-to-use fact file. The search is deterministic: a fixed seed, no example
database, a bounded number of examples. Alongside, it records what it saw (each rule holding or
failing, each outcome row deciding) for the analyses of `engine.language.analysis`.
"""

from __future__ import annotations

import copy
import datetime as dt
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import networkx as nx
from hypothesis import HealthCheck, Phase, Verbosity, given, reject, seed, settings, target
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException
from pydantic import BaseModel

from engine.core.diagnostics import Diagnostic, Span
from engine.core.errors import EvaluationError, FactError
from engine.evaluation.reasons import format_value
from engine.evaluation.result import Result
from engine.explanation.explain import resolve_path
from engine.language.analysis import Observed
from engine.language.ir import Invariant
from engine.verification.holds import Breach, InvariantRunner
from engine.verification.search import Bounds, SearchUnsupported, hints_of
from engine.verification.search_cohorts import cohort_data

if TYPE_CHECKING:
    from engine.embedding.policy import Policy

__all__ = ["Violation", "SearchReport", "search_invariants", "known_violation"]


@dataclass(frozen=True)
class Violation:
    """A shrunk counterexample: the fact file, the stage and date, and what went wrong."""

    invariant: Invariant
    stage: str
    as_of: dt.date
    cohort: dict[str, Any]
    subject: str | None
    message: str


@dataclass
class SearchReport:
    examples: int = 0
    rejected: int = 0
    violations: list[Violation] = field(default_factory=list)
    observed: Observed = field(default_factory=Observed)
    problems: list[Diagnostic] = field(default_factory=list)


class _Found(Exception):
    def __init__(self, violation: Violation) -> None:
        super().__init__(violation.message)
        self.violation = violation


def _witness(policy: Policy, rule: str, subject: Any) -> str:
    """The facts a rule reads (the innermost ones), as they were in one subject."""
    graph = policy.ir.graph
    facts = sorted(
        graph.nodes[n]["name"] for n in nx.ancestors(graph, f"rule:{rule}") if graph.nodes[n].get("kind") == "fact"
    )
    leaves = [f for f in facts if not any(other.startswith(f + ".") or other.startswith(f + "[].") for other in facts)]
    parts = []
    for path in leaves[:5]:
        values = [v for _, v in resolve_path(subject, path)]
        parts.append(
            f"`{path}` = "
            f"{format_value(values[:4]) if path.count('[]') else format_value(values[0] if values else None)}"
        )
    return "; ".join(parts) or "no facts"


def _observe(policy: Policy, result: Result, observed: Observed) -> None:
    for decision in result.decisions.values():
        observed.subjects += 1
        if decision.row is not None:
            key = (result.stage or "", decision.row)
            observed.rows[key] = observed.rows.get(key, 0) + 1
        for rule in policy.ir.rules:
            value = decision.trace.get(rule)
            if isinstance(value, bool):
                status = "held" if value else "failed"
                observed.rule(rule, status, lambda r=rule, s=decision.subject: _witness(policy, r, s))


def _get(data: Any, path: Sequence[str]) -> Any:
    for step in path:
        data = data.get(step) if isinstance(data, dict) else None
    return data


def _path_bounds(model: type[BaseModel], path: Sequence[str]) -> tuple[Any, Bounds]:
    """The annotation and bounds of a numeric fact path (Optional and Annotated unwrapped)."""
    annotation: Any = model
    metadata: list[Any] = []
    for step in path:
        cls = next(
            c for c in (annotation, *typing.get_args(annotation)) if isinstance(c, type) and issubclass(c, BaseModel)
        )
        info = cls.model_fields[step]
        annotation, metadata = info.annotation, list(info.metadata)
    while typing.get_args(annotation):
        args = typing.get_args(annotation)
        metadata += list(args[1:]) if typing.get_origin(annotation) is typing.Annotated else []
        annotation = next(a for a in args if a is not type(None))
    return annotation, Bounds.of(metadata)


class _Probe:
    """One Hypothesis test: draw a cohort, decide it, check every active invariant."""

    def __init__(
        self,
        policy: Policy,
        invariants: tuple[Invariant, ...],
        report: SearchReport,
        observe: bool,
        seeds: Sequence[dict[str, Any]],
    ) -> None:
        self.policy, self.report, self.observe = policy, report, observe
        self.runner = InvariantRunner(policy, invariants)
        stages = sorted({s for i in invariants for s in i.stages} or policy.ir.stages)
        self.hints = hints_of(policy.ir)
        self.cohorts = cohort_data(policy.ir, self.hints, stages, seeds=seeds)
        self.schema = policy.ir.schema

    def decide(self, data: dict[str, Any], stage: str, as_of: dt.date) -> Result | None:
        try:
            return self.policy.evaluate(self.policy.load_cohort(data), as_of=as_of, stage=stage)
        except (FactError, EvaluationError):
            return None

    tick: Callable[[], None] | None = None  # called once per cohort drawn (a progress display)

    def __call__(self, draw: st.DataObject) -> None:
        if self.tick is not None:
            self.tick()
        stage, as_of, data = draw.draw(self.cohorts)
        result = self.decide(data, stage, as_of)
        if result is None:
            self.report.rejected += 1
            reject()
        self.report.examples += 1
        self.steer(result)
        self.examine(stage, as_of, data, result, draw)

    def examine(
        self, stage: str, as_of: dt.date, data: dict[str, Any], result: Result, draw: st.DataObject | None
    ) -> None:
        """Check every active invariant on one decided cohort (`draw` None: no metamorphic draws)."""
        if self.observe:
            _observe(self.policy, result, self.report.observed)
        people = len(data[self.schema.subjects_field])
        for found in self.runner.subject_and_cohort(result, people):
            self.fail(found, stage, as_of, data)
        for invariant in self.runner.of_kind(stage, "monotonic"):
            if draw is not None:
                self.monotonic(invariant, draw, stage, as_of, data, result)
        for invariant in self.runner.of_kind(stage, "permutation"):
            order = draw.draw(st.permutations(range(people))) if draw is not None else list(reversed(range(people)))
            moved = dict(data, **{self.schema.subjects_field: [data[self.schema.subjects_field][i] for i in order]})
            again = self.decide(moved, stage, as_of)
            breach = self.runner.permutation(invariant, result, again) if again is not None else None
            if breach is not None:
                self.fail(breach, stage, as_of, moved)

    def steer(self, result: Result) -> None:
        """Guide the search towards subjects that pass more rules and reach later outcome rows."""
        rules = self.policy.ir.rules
        held = max((sum(d.trace.get(r) is True for r in rules) for d in result.decisions.values()), default=0)
        row = max((d.row or 0 for d in result.decisions.values()), default=0)
        target(float(held), label="rules held by one subject")
        target(float(row), label=f"outcome row reached at {result.stage}")

    def monotonic(
        self,
        invariant: Invariant,
        draw: st.DataObject,
        stage: str,
        as_of: dt.date,
        data: dict[str, Any],
        result: Result,
    ) -> None:
        people = data[self.schema.subjects_field]
        options = [
            (i, p)
            for i, person in enumerate(people)
            for p in invariant.change
            if isinstance(_get(person, p.split(".")), (int, float))
        ]
        if not options:
            return
        index, path = draw.draw(st.sampled_from(options))
        steps = path.split(".")
        annotation, bounds = _path_bounds(self.schema.subject, steps)
        old = _get(people[index], steps)
        up = invariant.direction == "increase"
        limit = (
            (bounds.le if bounds.le is not None else bounds.lt)
            if up
            else (bounds.ge if bounds.ge is not None else bounds.gt)
        )
        reach = max([10.0] + [2 * abs(c) for c in self.hints.numbers])  # unbounded: as far as the policy's own numbers
        limit = limit if limit is not None else old + (reach if up else -reach)
        if (limit <= old) if up else (limit >= old):
            return
        low, high = (old, limit) if up else (limit, old)
        near = sorted({x for c in self.hints.numbers for x in (c - 0.01, c, c + 0.01) if low <= x <= high})
        drawn = (
            st.integers(int(low), int(high)) if annotation is int else st.floats(low, high).map(lambda v: round(v, 2))
        )
        new = draw.draw(st.one_of(drawn, st.sampled_from(near)) if near else drawn)
        if new == old or not bounds.admits(float(new)) or (new < old if up else new > old):
            return
        changed = copy.deepcopy(data)
        target = changed[self.schema.subjects_field][index]
        for step in steps[:-1]:
            target = target[step]
        target[steps[-1]] = annotation(new) if annotation in (int, float) else new
        after = self.decide(changed, stage, as_of)
        subject = str(people[index].get(self.schema.id_field))
        verb = "raising" if up else "lowering"
        breach = (
            self.runner.monotonic(
                invariant, result, after, subject, f"{verb} `{path}` of `{subject}` from {old} to {new}"
            )
            if after
            else None
        )
        if breach is not None:
            self.fail(breach, stage, as_of, changed)

    def fail(self, breach: Breach, stage: str, as_of: dt.date, data: dict[str, Any]) -> None:
        raise _Found(
            Violation(
                invariant=breach.invariant,
                stage=stage,
                as_of=as_of,
                cohort=data,
                subject=breach.subject,
                message=breach.message,
            )
        )


def _run(probe: _Probe, examples: int, seed_value: int) -> Violation | None:
    @seed(seed_value)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
        print_blob=False,
        phases=(Phase.explicit, Phase.generate, Phase.target, Phase.shrink),
    )
    @given(st.data())
    def search(draw: st.DataObject) -> None:
        probe(draw)

    try:
        search()
    except _Found as found:
        return found.violation
    return None


def _known_cohorts(probe: _Probe, known: Sequence[tuple[str, dt.date, dict[str, Any]]]) -> Violation | None:
    """Check the invariants on cohorts given as they are (the package's own test facts)."""
    for stage, as_of, data in known:
        result = probe.decide(data, stage, as_of)
        try:
            if result is not None:
                probe.examine(stage, as_of, data, result, None)
        except _Found as found:
            return found.violation
    return None


def known_violation(policy: Policy, known: Sequence[tuple[str, dt.date, dict[str, Any]]]) -> Violation | None:
    """The first invariant the cohorts `known` (stage, as-of date, facts) break under `policy`, as `check` finds it."""
    if not known or not policy.ir.invariants:
        return None
    return _known_cohorts(_Probe(policy, tuple(policy.ir.invariants), SearchReport(), False, ()), known)


def search_invariants(
    policy: Policy,
    examples: int = 100,
    seed_value: int = 0,
    seeds: Sequence[dict[str, Any]] = (),
    invariants: Sequence[Invariant] | None = None,
    observe: bool = True,
    known: Sequence[tuple[str, dt.date, dict[str, Any]]] = (),
    tick: Callable[[], None] | None = None,
) -> SearchReport:
    """Search for a counterexample to every invariant; each violation found is shrunk and reported.

    `seeds` are subjects the search starts from (with a few facts drawn anew) besides subjects
    drawn from nothing; `known` cohorts (stage, as-of date, facts) are then checked as they are.
    `tick`, if given, is called once per cohort drawn (a progress display).
    """
    report = SearchReport()
    active = tuple(policy.ir.invariants if invariants is None else invariants)
    span = Span(str(policy.path))
    while True:
        try:
            probe = _Probe(policy, active, report, observe, seeds)
            probe.tick = tick
            violation = _run(probe, examples, seed_value)
        except SearchUnsupported as error:
            report.problems.append(
                Diagnostic("search-unsupported", f"cannot generate facts to search with: {error}", span)
            )
            violation = None
        except HypothesisException as error:
            report.problems.append(
                Diagnostic(
                    "search-failed",
                    f"the search could not run: {type(error).__name__.lower()}",
                    span,
                    "check that valid fact files can be made for every stage",
                )
            )
            violation = None
        if violation is None:
            break
        report.violations.append(violation)
        active, observe = tuple(i for i in active if i.id != violation.invariant.id), False
        if not active:
            return report
    while active and known:  # what the search missed, the package's own test facts may show
        violation = _known_cohorts(_Probe(policy, active, SearchReport(), False, seeds), known)
        if violation is None:
            break
        report.violations.append(violation)
        active = tuple(i for i in active if i.id != violation.invariant.id)
    return report
