"""The compiled policy: every expression of a checked policy compiled once, and the parameters on a date.

Shared by every backend and by the reasons a decision gives; `compile_policy` is the compile pass.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

from engine.core.errors import EvaluationError
from engine.evaluation.compiler import ExpressionCompiler, Fn, Missing, Scope, Undetermined
from engine.evaluation.result import PolicyIdentity
from engine.language.expr import Name, Node, walk
from engine.language.ir import OutcomeRow, PolicyIR, Stage, Track

__all__ = ["CompiledPolicy", "CompiledStage", "Params", "compile_policy", "settle", "stage_needs"]


class Params(dict[str, Any]):
    """Parameter values in force on one date; using one with no value in force is an error."""

    def __init__(self, values: dict[str, Any], since: dict[str, dt.date | None], absent: dict[str, str]) -> None:
        super().__init__(values)
        self.since = since
        self.absent = absent
        self._used: dict[str, tuple[Any, dt.date | None]] | None = None

    def used(self) -> dict[str, tuple[Any, dt.date | None]]:
        """Each parameter in force with the date it took effect: what a traced decision records (one
        mapping shared by every decision of an evaluation; nobody writes to it)."""
        if self._used is None:
            self._used = {name: (value, self.since.get(name)) for name, value in self.items()}
        return self._used

    def __missing__(self, name: str) -> Any:
        raise EvaluationError(self.absent.get(name, f"unknown parameter `{name}`"))


@dataclass(frozen=True)
class CompiledStage:
    stage: Stage
    pool: Fn
    keys: tuple[Fn, ...]
    slots: Fn | None
    rows: tuple[tuple[OutcomeRow, Fn], ...]
    capacity: Fn | None = None  # the stage's capacity (parameters, context)
    takes: Fn | None = None  # what one subject asks for
    tracks: tuple[tuple[Track, Fn, Fn], ...] = ()  # each track with its `when` and `reserved`
    phase1: tuple[str, ...] = ()  # the values and rules this stage needs before its ranking, in dependency order
    phase2: tuple[str, ...] = ()  # ... and after it (those that read `stage.*`)
    others: frozenset[str] = frozenset()  # the values and rules it does not need (settled if a trace is read for them)
    rest1: tuple[str, ...] = ()  # `others` in dependency order, as a trace settles them: what does not read `stage.*`
    rest2: tuple[str, ...] = ()  # ... then what does
    choices: tuple[tuple[str, OutcomeRow], ...] = ()  # each row's key among a backend's answers (`row:N`), and the row
    facts_after: bool = True  # phase 2 or the outcome rows read the subject's facts (not only the values before)


@dataclass(frozen=True)
class CompiledPolicy:
    """A checked policy with every expression compiled to a closure."""

    ir: PolicyIR
    compiler: ExpressionCompiler
    defs: dict[str, Fn]
    phase1: tuple[str, ...]
    phase2: tuple[str, ...]
    stages: dict[str, CompiledStage]
    # functions the `generated` backend wrote for this policy, by (stage, phase, names): made on first use
    programs: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    dated: dict[dt.date, Params] = field(default_factory=dict, compare=False, repr=False)  # `parameters_on`, by date

    @functools.cached_property
    def identity(self) -> PolicyIdentity:
        """Name, version, digest and what-if overrides: what every result of this policy names (made once)."""
        ir = self.ir
        return PolicyIdentity(name=ir.name, version=ir.version, digest=ir.digest, overrides=ir.overrides)

    def fn(self, node: Any) -> Fn:
        """The closure compiled for an expression node of this policy."""
        return self.compiler.fns[id(node)]

    def parameters_on(self, as_of: dt.date) -> Params:
        """The parameters in force on `as_of` (made once per date and shared: nobody writes to them)."""
        found = self.dated.get(as_of)
        if found is None:
            if len(self.dated) >= 64:
                self.dated.clear()
            found = self.dated[as_of] = self._parameters_on(as_of)
        return found

    def _parameters_on(self, as_of: dt.date) -> Params:
        values, since, absent = {}, {}, {}
        for name, parameter in self.ir.parameters.items():
            try:
                values[name], since[name] = parameter.value_on(as_of)
            except EvaluationError as error:
                absent[name] = str(error)
        return Params(values, since, absent)


def compile_policy(ir: PolicyIR) -> CompiledPolicy:
    """Compile every expression of `ir` (values, rules, messages, stages)."""
    compiler = ExpressionCompiler(ir)
    defs = {name: compiler.compile(v.expr) for name, v in ir.values.items()}
    for name, rule in ir.rules.items():
        defs[name] = compiler.compile(rule.when)
        for template in (rule.held, rule.failed):
            every = (template, *(t for _, t in template.translations)) if template else ()
            for part in (p for t in every for p in t.parts):  # a message in each language it is given in
                if not isinstance(part, str):
                    compiler.compile(part)
    stages = {}
    for name, stage in ir.stages.items():
        keys = tuple(compiler.compile(k.expr) for k in stage.rank_by)
        slots = compiler.compile(stage.slots) if stage.slots is not None else None
        rows = tuple((row, compiler.compile(row.when)) for row in stage.outcomes)
        for grant in (g for row in stage.outcomes for g in row.grants if g.quantity is not None):
            compiler.compile(grant.quantity)  # type: ignore[arg-type]
        capacity = stage.capacity
        needs = stage_needs(ir, stage)
        tracks = tuple((t, compiler.compile(t.when), compiler.compile(t.reserved)) for t in stage.tracks)
        stages[name] = CompiledStage(
            stage=stage,
            pool=compiler.compile(stage.pool),
            keys=keys,
            slots=slots,
            rows=rows,
            capacity=compiler.compile(capacity.total) if capacity else None,
            takes=compiler.compile(capacity.takes) if capacity else None,
            tracks=tracks,
            phase1=tuple(n for n in ir.order if n in needs and n not in ir.stage_dependent),
            phase2=tuple(n for n in ir.order if n in needs and n in ir.stage_dependent),
            others=frozenset(ir.order) - needs,
            rest1=tuple(n for n in ir.order if n not in needs and n not in ir.stage_dependent),
            rest2=tuple(n for n in ir.order if n not in needs and n in ir.stage_dependent),
            choices=tuple((f"row:{row.index}", row) for row, _ in rows),
            facts_after=_reads_facts(
                ir,
                [
                    *(definition_of(ir, n) for n in ir.order if n in needs and n in ir.stage_dependent),
                    *(row.when for row in stage.outcomes),
                ],
            ),
        )
    phase1 = tuple(n for n in ir.order if n not in ir.stage_dependent)
    phase2 = tuple(n for n in ir.order if n in ir.stage_dependent)
    return CompiledPolicy(ir=ir, compiler=compiler, defs=defs, phase1=phase1, phase2=phase2, stages=stages)


def definition_of(ir: PolicyIR, name: str) -> Node:
    """The expression a value or rule is defined by."""
    return ir.values[name].expr if name in ir.values else ir.rules[name].when


def _reads_facts(ir: PolicyIR, nodes: list[Node]) -> bool:
    """Whether any of `nodes` reads a fact of the subject: a name that is no parameter, value, rule, `stage` or
    `context` (a comprehension's variable counts as one, whatever it ranges over: the answer errs towards yes)."""
    plain = ("parameter", "value", "rule", "stage", "context")
    return any(isinstance(n, Name) and ir.kind_of(n.name) not in plain for node in nodes for n in walk(node))


def stage_needs(ir: PolicyIR, stage: Stage) -> frozenset[str]:
    """The values and rules a stage reads: through its pool, ranking keys, slots, capacity, tracks, outcome
    rows and grants, the messages of the rules among them (reasons render them), and what those read."""
    roots: list[Node | None] = [stage.pool, stage.slots, *(k.expr for k in stage.rank_by)]
    if stage.capacity is not None:
        roots += [stage.capacity.total, stage.capacity.takes]
    roots += [node for track in stage.tracks for node in (track.when, track.reserved)]
    roots += [row.when for row in stage.outcomes]
    roots += [grant.quantity for row in stage.outcomes for grant in row.grants]
    found: set[str] = set()
    todo = [node for node in roots if node is not None]
    while todo:
        for node in walk(todo.pop()):
            if not isinstance(node, Name) or node.name in found:
                continue
            if node.name in ir.values:
                found.add(node.name)
                todo.append(ir.values[node.name].expr)
            elif node.name in ir.rules:
                found.add(node.name)
                rule = ir.rules[node.name]
                todo.append(rule.when)
                for template in (rule.held, rule.failed):
                    every = (template, *(t for _, t in template.translations)) if template else ()
                    todo += [part for t in every for part in t.parts if not isinstance(part, str)]
    return frozenset(found)


def settle(fn: Fn, scope: Scope) -> Any:
    """Evaluate `fn`; missing data becomes a `Missing` value instead of an exception."""
    try:
        return fn(scope)
    except Undetermined as error:
        return Missing(error.missing)
