"""Mutation check: change the package one small step at a time and see whether anything notices.

Mutants are made on the checked IR, never on YAML text, so each is a well-typed policy:

- `comparison`: `==`↔`!=`, `<`↔`>=`, `>`↔`<=`, `in`↔`not in`, `is None`↔`is not None`;
- `boundary`: `<`↔`<=`, `>`↔`>=`, and every numeric literal and numeric parameter value ± a small
  step (1 for whole numbers, 1% otherwise; a dated value only if some stage can use it);
- `connective`: `and`↔`or`; `negation`: `not x` → `x`, `True`↔`False`;
- `conclusion`: a rule concludes the opposite (`when` → `not (when)`); `outcome`: an outcome
  row gives another outcome of its stage; `ranking`: a ranking key's order is reversed;
- `allocation`: a stage's `does_not_fit` skip ↔ partial, a track's `unfilled` release ↔ keep_open.

A mutant is killed when a package test fails on it, or else when an invariant fails on the tests'
own cohorts (as `policy check` checks them) or the invariant search finds a counterexample; the
score is killed / total, and the survivors are listed with their locations and, where the engine
can tell, why nothing noticed them. Parameters that only invariants read are not mutated: such a
mutant changes the invariant, not the decisions, and could never be killed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.core.diagnostics import Span
from engine.evaluation.compiled import compile_policy
from engine.language.analysis import decidable_from
from engine.language.expr import (
    Attr,
    Binary,
    BoolOp,
    Call,
    Compare,
    Comprehension,
    Const,
    IfExp,
    IsNone,
    ListLit,
    Node,
    Unary,
    render,
)
from engine.language.ir import PolicyIR, Scale, Stage, Table
from engine.verification.testing import Prepared, run_prepared
from engine.verification.verify import known_violation, search_invariants

if TYPE_CHECKING:
    from engine.embedding.policy import Policy

__all__ = ["Mutant", "MutationReport", "mutants", "mutant_policy", "run_mutants", "invariant_only_parameters"]

_FLIP = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">", "in": "not in", "not in": "in"}
_EDGE = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}
_CHILDREN: dict[type, tuple[str, ...]] = {
    Attr: ("obj",),
    Unary: ("operand",),
    Binary: ("left", "right"),
    BoolOp: ("operands",),
    Compare: ("left", "right"),
    IsNone: ("operand",),
    ListLit: ("items",),
    Call: ("args",),
    Comprehension: ("iterable", "body", "condition"),
    IfExp: ("test", "body", "orelse"),
}
Rebuild = Callable[[Node], Node]


@dataclass(frozen=True)
class Mutant:
    """One small change to the policy, where it is, and what it reads before and after."""

    operator: str
    owner: str  # `rule:x`, `value:y`, `stage:s`, `parameter:p`
    span: Span
    before: str
    after: str
    ir: PolicyIR = field(compare=False, repr=False)

    def describe(self) -> str:
        kind, name = self.owner.split(":", 1)
        return f"{self.operator} in {kind} `{name}`: `{self.before}` → `{self.after}`"


def _in_tuple(node: Node, name: str, items: tuple[Node, ...], i: int, up: Rebuild) -> Rebuild:
    return lambda new: up(dataclasses.replace(node, **{name: items[:i] + (new,) + items[i + 1 :]}))  # type: ignore[arg-type]


def _in_field(node: Node, name: str, up: Rebuild) -> Rebuild:
    return lambda new: up(dataclasses.replace(node, **{name: new}))  # type: ignore[arg-type]


def _sites(node: Node, rebuild: Rebuild) -> Iterator[tuple[Node, Rebuild]]:
    """Every node under `node`, with a function that rebuilds the whole expression around a replacement."""
    yield node, rebuild
    for name in _CHILDREN.get(type(node), ()):
        child = getattr(node, name)
        if isinstance(child, tuple):
            for i, item in enumerate(child):
                yield from _sites(item, _in_tuple(node, name, child, i, rebuild))
        elif child is not None:
            yield from _sites(child, _in_field(node, name, rebuild))


def _step(value: float) -> list[float]:
    if isinstance(value, int):
        return [value - 1, value + 1]
    delta = abs(value) * 0.01 or 0.01
    return [round(value - delta, 6), round(value + delta, 6)]


def _node_changes(node: Node) -> Iterator[tuple[str, Node]]:
    if isinstance(node, Compare):
        yield "comparison", dataclasses.replace(node, op=_FLIP[node.op])
        if node.op in _EDGE:
            yield "boundary", dataclasses.replace(node, op=_EDGE[node.op])
    elif isinstance(node, IsNone):
        yield "comparison", dataclasses.replace(node, negated=not node.negated)
    elif isinstance(node, BoolOp):
        yield "connective", dataclasses.replace(node, op="or" if node.op == "and" else "and")
    elif isinstance(node, Unary) and node.op == "not":
        yield "negation", node.operand
    elif isinstance(node, Const) and isinstance(node.value, bool):
        yield "negation", dataclasses.replace(node, value=not node.value)
    elif isinstance(node, Const) and isinstance(node.value, (int, float)):
        for value in _step(node.value):
            yield "boundary", dataclasses.replace(node, value=value)


def _expression_mutants(expr: Node, owner: str, put: Callable[[Node], PolicyIR]) -> Iterator[Mutant]:
    for node, rebuild in _sites(expr, lambda new: new):
        for operator, changed in _node_changes(node):
            yield Mutant(
                operator=operator,
                owner=owner,
                span=node.span,
                before=render(node),
                after=render(changed),
                ir=put(rebuild(changed)),
            )


def _stage_mutants(ir: PolicyIR, stage: Stage) -> Iterator[Mutant]:
    owner = f"stage:{stage.id}"

    def put(**changes: Any) -> PolicyIR:
        return dataclasses.replace(ir, stages={**ir.stages, stage.id: dataclasses.replace(stage, **changes)})

    yield from _expression_mutants(stage.pool, owner, lambda new: put(pool=new))
    for i, key in enumerate(stage.rank_by):
        flipped = f"{render(key.expr)} ({'ascending' if key.descending else 'descending'})"
        yield Mutant(
            operator="ranking",
            owner=owner,
            span=key.expr.span,
            before=render(key.expr),
            after=flipped,
            ir=put(rank_by=_swap(stage.rank_by, i, dataclasses.replace(key, descending=not key.descending))),
        )
        yield from _expression_mutants(key.expr, owner, _key_put(put, stage, i))
    for i, row in enumerate(stage.outcomes):
        for other in stage.outcome_names:
            if other != row.outcome:
                yield Mutant(
                    operator="outcome",
                    owner=owner,
                    span=row.span,
                    before=f"row {row.index}: {row.outcome}",
                    after=f"row {row.index}: {other}",
                    ir=put(outcomes=_swap(stage.outcomes, i, dataclasses.replace(row, outcome=other))),
                )
        yield from _expression_mutants(row.when, owner, _row_put(put, stage, i))
    yield from _allocation_mutants(stage, owner, put)


def _allocation_mutants(stage: Stage, owner: str, put: Callable[..., PolicyIR]) -> Iterator[Mutant]:
    """`does_not_fit` skip ↔ partial; each track's `unfilled` release ↔ keep_open, and its `when` mutated."""
    capacity = stage.capacity
    if capacity is not None:
        other = "partial" if capacity.does_not_fit == "skip" else "skip"
        yield Mutant(
            operator="allocation",
            owner=owner,
            span=capacity.total.span,
            before=f"does_not_fit: {capacity.does_not_fit}",
            after=f"does_not_fit: {other}",
            ir=put(capacity=dataclasses.replace(capacity, does_not_fit=other)),
        )
    for i, track in enumerate(stage.tracks):
        other = "keep_open" if track.unfilled == "release" else "release"
        yield Mutant(
            operator="allocation",
            owner=owner,
            span=track.span,
            before=f"track {track.id}: unfilled {track.unfilled}",
            after=f"track {track.id}: unfilled {other}",
            ir=put(tracks=_swap(stage.tracks, i, dataclasses.replace(track, unfilled=other))),
        )
        yield from _expression_mutants(track.when, owner, _track_put(put, stage, i))


def _track_put(put: Callable[..., PolicyIR], stage: Stage, i: int) -> Callable[[Node], PolicyIR]:
    return lambda new: put(tracks=_swap(stage.tracks, i, dataclasses.replace(stage.tracks[i], when=new)))


def _swap(items: tuple[Any, ...], i: int, new: Any) -> tuple[Any, ...]:
    return items[:i] + (new,) + items[i + 1 :]


def _key_put(put: Callable[..., PolicyIR], stage: Stage, i: int) -> Callable[[Node], PolicyIR]:
    return lambda new: put(rank_by=_swap(stage.rank_by, i, dataclasses.replace(stage.rank_by[i], expr=new)))


def _row_put(put: Callable[..., PolicyIR], stage: Stage, i: int) -> Callable[[Node], PolicyIR]:
    return lambda new: put(outcomes=_swap(stage.outcomes, i, dataclasses.replace(stage.outcomes[i], when=new)))


def _usable(ir: PolicyIR, values: tuple[tuple[Any, Any], ...], index: int) -> bool:
    """Whether a dated value is ever in force on a day some stage can be decided."""
    ends = [d for d, _ in values[index + 1 :] if d is not None]
    starts = [decidable_from(ir, s) for s in ir.stages]
    return not ends or any(start is None or min(ends) > start for start in starts)


def invariant_only_parameters(ir: PolicyIR) -> list[str]:
    """Parameters no rule, value or stage reads (only invariants, if anything): a mutant of one tests the invariant."""
    graph = ir.graph
    return [n for n in ir.parameters if f"parameter:{n}" not in graph or not any(graph.successors(f"parameter:{n}"))]


def _parameter_mutants(ir: PolicyIR) -> Iterator[Mutant]:
    skipped = set(invariant_only_parameters(ir))
    for name, parameter in ir.parameters.items():
        if name in skipped:
            continue
        for i, (since, value) in enumerate(parameter.values):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not _usable(ir, parameter.values, i):
                continue
            for changed in _step(value):
                values = parameter.values[:i] + ((since, changed),) + parameter.values[i + 1 :]
                new_ir = dataclasses.replace(
                    ir, parameters={**ir.parameters, name: dataclasses.replace(parameter, values=values)}
                )
                when = f" (from {since})" if since else ""
                yield Mutant(
                    operator="boundary",
                    owner=f"parameter:{name}",
                    span=parameter.span,
                    before=f"{value}{when}",
                    after=f"{changed}{when}",
                    ir=new_ir,
                )


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _table_changes(table: Table) -> Iterator[tuple[str, str, Table, Span | None]]:
    """(which row, before, after, where) for each row of `table` (and its `otherwise`) moved one step each way."""
    for r, (keys, value) in enumerate(table.rows):
        span = table.spans[r] if r < len(table.spans) else None
        for changed in _step(value) if _numeric(value) else []:
            rows = _swap(table.rows, r, (keys, changed))
            yield f"row {', '.join(str(k) for k in keys)}", f"{value}", dataclasses.replace(table, rows=rows), span
    if table.has_otherwise and _numeric(table.otherwise):
        for changed in _step(table.otherwise):
            yield "otherwise", f"{table.otherwise}", dataclasses.replace(table, otherwise=changed), None


def _scale_changes(scale: Scale) -> Iterator[tuple[str, str, Scale, Span | None]]:
    """Each bracket's threshold and rate moved one step each way (thresholds kept ascending)."""
    for b, (threshold, rate) in enumerate(scale.brackets):
        span = scale.spans[b] if b < len(scale.spans) else None
        for changed in _step(threshold) if b or rate else []:  # a first bracket at rate 0 changes nothing
            lower = scale.brackets[b - 1][0] if b else None
            upper = scale.brackets[b + 1][0] if b + 1 < len(scale.brackets) else None
            if (lower is None or changed > lower) and (upper is None or changed < upper):
                brackets = _swap(scale.brackets, b, (changed, rate))
                yield f"bracket {b + 1} threshold", f"{threshold}", dataclasses.replace(scale, brackets=brackets), span
        for changed in _step(rate):
            brackets = _swap(scale.brackets, b, (threshold, changed))
            yield f"bracket {b + 1} rate", f"{rate}", dataclasses.replace(scale, brackets=brackets), span


def _row_mutants(ir: PolicyIR) -> Iterator[Mutant]:
    """Each row of a table and each bracket of a scale, one step up and one down (on dates in force)."""
    for name, parameter in ir.parameters.items():
        for i, (since, value) in enumerate(parameter.values):
            if not isinstance(value, (Table, Scale)) or not _usable(ir, parameter.values, i):
                continue
            changes: Iterator[tuple[str, str, Any, Span | None]] = (
                _table_changes(value) if isinstance(value, Table) else _scale_changes(value)
            )
            for where, before, changed, span in changes:
                values = _swap(parameter.values, i, (since, changed))
                after = _changed_text(where, changed)
                when = f" (from {since})" if since else ""
                yield Mutant(
                    operator="boundary",
                    owner=f"parameter:{name}",
                    span=span or parameter.span,
                    before=f"{where}: {before}{when}",
                    after=f"{where}: {after}{when}",
                    ir=dataclasses.replace(
                        ir, parameters={**ir.parameters, name: dataclasses.replace(parameter, values=values)}
                    ),
                )


def _changed_text(where: str, changed: Table | Scale) -> str:
    if isinstance(changed, Scale):
        b = int(where.split()[1]) - 1
        return str(changed.brackets[b][0 if where.endswith("threshold") else 1])
    if where == "otherwise":
        return str(changed.otherwise)
    keys = where[len("row ") :]
    return next(str(v) for k, v in changed.rows if ", ".join(str(x) for x in k) == keys)


def mutants(ir: PolicyIR) -> list[Mutant]:
    """Every mutant of the package, in a stable order."""
    found = list(_parameter_mutants(ir))
    found += list(_row_mutants(ir))
    for name, value in ir.values.items():
        found += _expression_mutants(value.expr, f"value:{name}", _value_put(ir, name))
    for name, rule in ir.rules.items():
        put = _rule_put(ir, name)
        found.append(
            Mutant(
                operator="conclusion",
                owner=f"rule:{name}",
                span=rule.span,
                before=render(rule.when),
                after=f"not ({render(rule.when)})",
                ir=put(Unary(rule.when.span, "not", rule.when)),
            )
        )
        found += _expression_mutants(rule.when, f"rule:{name}", put)
    for stage in ir.stages.values():
        found += _stage_mutants(ir, stage)
    return found


def _value_put(ir: PolicyIR, name: str) -> Callable[[Node], PolicyIR]:
    return lambda new: dataclasses.replace(
        ir, values={**ir.values, name: dataclasses.replace(ir.values[name], expr=new)}
    )


def _rule_put(ir: PolicyIR, name: str) -> Callable[[Node], PolicyIR]:
    return lambda new: dataclasses.replace(ir, rules={**ir.rules, name: dataclasses.replace(ir.rules[name], when=new)})


def mutant_policy(policy: Policy, mutant: Mutant) -> Policy:
    """The package with one mutation, compiled like the original."""
    return type(policy)(policy.path, compile_policy(mutant.ir), [])


@dataclass
class MutationReport:
    killed_by_tests: list[tuple[Mutant, str]] = field(default_factory=list)
    killed_by_invariants: list[tuple[Mutant, str]] = field(default_factory=list)
    survived: list[Mutant] = field(default_factory=list)
    why_survived: dict[Mutant, str] = field(default_factory=dict)  # what the engine can tell of each survivor
    not_mutated: list[str] = field(default_factory=list)  # parameters read only by invariants

    @property
    def total(self) -> int:
        return len(self.killed_by_tests) + len(self.killed_by_invariants) + len(self.survived)

    @property
    def score(self) -> float:
        return (self.total - len(self.survived)) / self.total if self.total else 1.0


def _killing_case(policy: Policy, cases: list[Prepared]) -> str | None:
    for case in cases:
        try:
            result = run_prepared(policy, case)
        except Exception as error:  # a mutant may break evaluation itself: that is noticed too
            return f"case `{case.case.name}` crashed: {type(error).__name__}"
        if not result.passed:
            return f"case `{case.case.name}`: {result.failures[0]}"
    return None


def _why_survived(policy: Policy, changed: Policy, cases: list[Prepared]) -> str:
    """Why no test noticed: a case whose decisions change but that expects nothing of them, or none changes."""
    for case in cases:
        if case.problem is not None:
            continue
        try:
            before, after = run_prepared(policy, case).result, run_prepared(changed, case).result
        except Exception:  # noqa: BLE001 - a crash would have killed it; nothing to tell
            continue
        if before is None or after is None:
            continue
        expected = {want.id for want in case.case.expect}
        for subject, decision in after.decisions.items():
            was = before.decisions.get(subject)
            if was is not None and was.outcome != decision.outcome:
                if subject in expected:
                    return f"case `{case.case.name}` expects `{subject}`, whose reasons or grants change unchecked"
                return (
                    f"case `{case.case.name}` decides `{subject}` {was.outcome} → {decision.outcome}, "
                    f"but expects nothing of `{subject}`"
                )
    return "no test case's decisions change: no case reaches this boundary (or the change is equivalent)"


def run_mutants(
    policy: Policy,
    cases: list[Prepared],
    examples: int = 30,
    only: Callable[[Mutant], bool] | None = None,
    seeds: list[dict[str, Any]] | None = None,
    known: Sequence[tuple[str, dt.date, dict[str, Any]]] = (),
    tick: Callable[[int, int], None] | None = None,
) -> MutationReport:
    """Run the package's tests, then the invariants on the tests' own cohorts (`known`, as `check` does) and
    (for survivors, if `examples`) the invariant search, on every mutant; `tick(done, total)` before each."""
    report = MutationReport(not_mutated=invariant_only_parameters(policy.ir))
    chosen = [m for m in mutants(policy.ir) if only is None or only(m)]
    for done, mutant in enumerate(chosen):
        if tick is not None:  # a progress display: (mutants done, mutants in all)
            tick(done, len(chosen))
        changed = mutant_policy(policy, mutant)
        reason = _killing_case(changed, cases)
        if reason is not None:
            report.killed_by_tests.append((mutant, reason))
            continue
        broken = known_violation(changed, known)
        if broken is not None:
            report.killed_by_invariants.append((mutant, f"invariant `{broken.invariant.id}` on a test case's facts"))
            continue
        search = (
            search_invariants(changed, examples=examples, seeds=seeds or (), observe=False)
            if examples and changed.ir.invariants
            else None
        )
        if search is not None and search.violations:
            report.killed_by_invariants.append((mutant, f"invariant `{search.violations[0].invariant.id}`"))
        else:
            report.survived.append(mutant)
            report.why_survived[mutant] = _why_survived(policy, changed, cases)
    return report
