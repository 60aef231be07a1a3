"""The durable_rules (Rete) backend: the same compiled policy, decided by durable_rules.

The only module that knows how conditions look to durable_rules; `engine.evaluation.durable._host` is the
only one that touches the library itself. Lowering keeps to the subset that measured reliable
(see shared/notes/durable-rules.md):

- conditions are put in negation normal form and then in disjunctive normal form: one durable
  rule per conjunction, each an explicit `$and`; no engine-side negation (`not` is pushed into
  the comparisons: `>=` ↔ `<`, `==` ↔ `$neq`) and no `$or` inside arrays;
- every rule is lowered twice, once for "holds" and once for "does not hold"; when one fires,
  its action asserts a conclusion fact that other rules join on (chaining). Missing data makes
  a field absent, so neither fires: the rule stays undetermined, as in the compiled evaluator;
- values, per-item quantifiers and anything else that is not a single-field comparison are
  computed in Python and asserted as fields of the subject fact; parameters are constants of
  the ruleset, so a ruleset is built per set of parameter values in force (and cached);
- the stage's pool, its tracks' `when` and its outcome rows are lowered the same way as
  pseudo-rules; ranking and allocation (places, capacity, reserved tracks) are the shared reduce
  step in Python, and grant quantities are computed in Python like values;
- a comparison whose operand is missing but whose bounds (from the fact model) settle it is
  decided by the compiled evaluator's interval reasoning, which Rete cannot do: for a subject
  with such a comparison, what Rete leaves undetermined is taken from the same closures;
- one fact may match at most 64 conditions (error 303, measured): the subject's fields are
  asserted as several "part" facts, each tested by at most `PART_SIZE` conditions; a rule that
  joins many conclusions (error 304) joins them in groups of `MAX_JOIN`, each group a rule.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.core.errors import BackendError, BackendUnavailable
from engine.evaluation.compiled import CompiledPolicy, CompiledStage, Params, settle
from engine.evaluation.compiler import Missing, Scope, Undetermined
from engine.evaluation.durable._host import DurableEngineError, DurableRuleset, Firing, available
from engine.language.expr import Binary, BoolOp, Compare, Const, Name, Node, Unary, walk

__all__ = ["DurableBackend", "MAX_CONJUNCTIONS"]

MAX_CONJUNCTIONS = 64
PART_SIZE = 60  # conditions per subject part fact (durable_rules fails above 64 matches per fact)
MAX_JOIN = 8  # conclusions joined by one durable rule; wider joins are built up in groups (error 304 otherwise)
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
_DURABLE_OP = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "!=": "$neq"}
_SCALAR = (bool, int, float, str)


@dataclass(frozen=True)
class _Cmp:
    """A literal: a field computed in Python, compared in Rete with a constant."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class _Ref:
    """A literal: another rule's conclusion (`value` True = it holds)."""

    rule: str
    value: bool


Literal_ = _Cmp | _Ref
Conjunction = frozenset[Literal_]


class _Lowering:
    """Conditions of one policy under one set of parameter values → durable rules + field makers."""

    def __init__(self, policy: CompiledPolicy, params: Params) -> None:
        self.policy, self.params = policy, params
        self.fields: dict[str, Node] = {}  # field name -> expression computed in Python
        self._names: dict[int, str] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.meaning: dict[str, tuple[str, bool]] = {}  # durable rule -> (conclusion, value)
        self.parts: list[set[str]] = []  # fields each subject part fact must carry
        self._subject_conditions = 0

    def lower(self, name: str, node: Node) -> None:
        for value in (True, False):
            for index, conjunction in enumerate(self._dnf(node, value)):
                rule_name = f"{name.replace(':', '__')}__{'t' if value else 'f'}{index}"
                self.rules[rule_name] = {"all": self._conditions(conjunction)}
                self.meaning[rule_name] = (name, value)

    def _dnf(self, node: Node, want: bool) -> list[Conjunction]:
        if isinstance(node, Unary) and node.op == "not":
            return self._dnf(node.operand, not want)
        if isinstance(node, BoolOp):
            conjunctive = (node.op == "and") == want
            parts = [self._dnf(o, want) for o in node.operands]
            return self._and(parts) if conjunctive else self._or(parts)
        if isinstance(node, Name) and node.name in self.policy.ir.rules:
            return [frozenset({_Ref(node.name, want)})]
        if isinstance(node, Compare) and node.op in _FLIP:
            literal = self._comparison(node, want)
            if literal is not None:
                return [frozenset({literal})]
        if isinstance(node, Compare) and node.op in ("in", "not in") and self._constant(node.right):
            return self._membership(node, want)
        return [frozenset({_Cmp(self._field(node), "==", want)})]

    def _and(self, parts: list[list[Conjunction]]) -> list[Conjunction]:
        result: list[Conjunction] = [frozenset()]
        for part in parts:
            result = [a | b for a in result for b in part if not _contradicts(a | b)]
            if len(result) > MAX_CONJUNCTIONS:
                raise BackendError(
                    f"a condition expands to more than {MAX_CONJUNCTIONS} alternatives for durable_rules; "
                    "simplify it or use the python backend"
                )
        return result

    def _or(self, parts: list[list[Conjunction]]) -> list[Conjunction]:
        return list(dict.fromkeys(itertools.chain.from_iterable(parts)))

    def _comparison(self, node: Compare, want: bool) -> _Cmp | None:
        op = node.op if want else _NEGATE[node.op]
        if self._constant(node.right) and not self._constant(node.left):
            return _Cmp(self._field(node.left), op, self._const_value(node.right))
        if self._constant(node.left) and not self._constant(node.right):
            return _Cmp(self._field(node.right), _FLIP[op], self._const_value(node.left))
        return None

    def _membership(self, node: Compare, want: bool) -> list[Conjunction]:
        items = self._const_value(node.right, scalar=False)
        if not isinstance(items, list):
            return [frozenset({_Cmp(self._field(node), "==", want)})]
        field = self._field(node.left)
        member = (node.op == "in") == want
        if member:
            return [frozenset({_Cmp(field, "==", _plain(v))}) for v in items]
        return [frozenset(_Cmp(field, "!=", _plain(v)) for v in items)]

    def _constant(self, node: Node) -> bool:
        if isinstance(node, Const):
            return True
        if isinstance(node, Name):
            return node.name in self.policy.ir.parameters
        if isinstance(node, Binary):
            return self._constant(node.left) and self._constant(node.right)
        if isinstance(node, Unary):
            return node.op != "not" and self._constant(node.operand)
        return False

    def _const_value(self, node: Node, scalar: bool = True) -> Any:
        try:
            value = self.policy.fn(node)(Scope(None, None, self.params))
        except Undetermined:
            raise BackendError("a constant of the policy has no value") from None
        if scalar and not isinstance(_plain(value), _SCALAR):
            raise BackendError(f"cannot compare with {value!r} in durable_rules")
        return _plain(value) if scalar else value

    def _field(self, node: Node) -> str:
        key = id(node)
        if key not in self._names:
            name = f"f{len(self._names)}"
            self._names[key] = name
            self.fields[name] = node
        return self._names[key]

    def _grouped(self, conjunction: Conjunction) -> Conjunction:
        """The conjunction with its conclusion joins folded into groups of at most MAX_JOIN."""
        refs = sorted((lit for lit in conjunction if isinstance(lit, _Ref)), key=repr)
        while len(refs) > MAX_JOIN:
            chunk, refs = refs[:MAX_JOIN], refs[MAX_JOIN:]
            group = f"#group{len(self.rules)}"
            self.rules[group.lstrip("#")] = {"all": self._conditions(frozenset(chunk))}
            self.meaning[group.lstrip("#")] = (group, True)
            refs.append(_Ref(group, True))
        return frozenset([*(lit for lit in conjunction if isinstance(lit, _Cmp)), *refs])

    def _conditions(self, conjunction: Conjunction) -> list[dict[str, Any]]:
        conjunction = self._grouped(conjunction)
        tests: list[dict[str, Any]] = []
        conditions: list[dict[str, Any]] = []
        for literal in sorted(conjunction, key=repr):
            if isinstance(literal, _Cmp):
                op = _DURABLE_OP.get(literal.op)
                tests.append({op: {literal.field: literal.value}} if op else {literal.field: literal.value})
            else:
                alias = f"c{len(conditions)}"
                conclusion = {"$and": [{"kind": "conclusion"}, {"rule": literal.rule}, {"value": literal.value}]}
                conditions.append({alias: conclusion})
        if tests or not conditions:  # a test on the subject's fields, or nothing else to wait for
            conditions.insert(0, {"s": {"$and": [{"kind": "subject"}, {"part": self._part(conjunction)}] + tests}})
        return conditions

    def _part(self, conjunction: Conjunction) -> int:
        used = self._subject_conditions
        self._subject_conditions = used + 1
        index = used // PART_SIZE
        while len(self.parts) <= index:
            self.parts.append(set())
        self.parts[index].update(lit.field for lit in conjunction if isinstance(lit, _Cmp))
        return index


def _contradicts(conjunction: Conjunction) -> bool:
    refs = {(lit.rule, lit.value) for lit in conjunction if isinstance(lit, _Ref)}
    return any((rule, not value) in refs for rule, value in refs)


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BackendError(f"durable_rules cannot compare `{value}`: it is not a finite number")
        if abs(value) >= 1e16:  # durable_rules reads no `e+` exponent; a float this large is a whole number
            return int(value)
    return value.isoformat() if isinstance(value, dt.date) else value


class _Compiled:
    """A durable ruleset for one parameter set, with the Python side of its fields."""

    def __init__(self, policy: CompiledPolicy, params: Params) -> None:
        lowering = _Lowering(policy, params)
        for name in policy.ir.order:
            if name in policy.ir.rules:
                lowering.lower(name, policy.ir.rules[name].when)
        for stage_name, stage in policy.stages.items():
            lowering.lower(f"pool:{stage_name}", stage.stage.pool)
            for track in stage.stage.tracks:
                lowering.lower(f"track:{stage_name}:{track.id}", track.when)
            for row, _ in stage.rows:
                lowering.lower(f"row:{stage_name}:{row.index}", row.when)
        self.fields, self.meaning, self.parts = lowering.fields, lowering.meaning, lowering.parts
        self.fns = {name: policy.fn(node) for name, node in self.fields.items()}
        # A field computed in Python that reads a rule's result (`1 if r else 2`, `r if c else s`)
        # needs that result before Rete runs: such policies decide their rules in Python first too.
        self.fields_use_rules = any(
            isinstance(n, Name) and n.name in policy.ir.rules for node in self.fields.values() for n in walk(node)
        )
        try:
            self.ruleset = DurableRuleset(lowering.rules)
        except DurableEngineError as error:
            raise BackendError(f"durable_rules refused this policy: {error}") from None

    def subject_facts(self, scope: Scope) -> list[dict[str, Any]]:
        """The subject as part facts, each with the fields its conditions test."""
        values: dict[str, Any] = {}
        for name, fn in self.fns.items():
            value = settle(fn, scope)
            if isinstance(value, Missing):
                continue  # absent: every comparison on it fails, both ways
            value = _plain(value)
            if not isinstance(value, _SCALAR):
                raise BackendError(
                    f"durable_rules can compare only numbers, text and booleans, not {type(value).__name__}"
                )
            values[name] = value
        return [
            {"kind": "subject", "part": i, **{f: values[f] for f in sorted(fields) if f in values}}
            for i, fields in enumerate(self.parts)
        ]

    def conclusions(self, scope: Scope) -> dict[str, bool]:
        found: dict[str, bool] = {}

        def on_fire(firing: Firing) -> list[dict[str, Any]]:
            name, value = self.meaning[firing.rule]
            previous = found.setdefault(name, value)
            if previous is not value:
                raise BackendError(f"durable_rules concluded both true and false for `{name}`")
            return [{"kind": "conclusion", "rule": name, "value": value}]

        try:
            self.ruleset.run(self.subject_facts(scope), on_fire=on_fire)
        except DurableEngineError as error:
            if isinstance(error.__cause__, BackendError):
                raise error.__cause__ from None
            raise BackendError(f"durable_rules failed: {error}") from None
        return found


class DurableBackend:
    """Decides rules, pools and outcome rows on durable_rules; values are computed in Python."""

    name = "durable"

    def __init__(self, policy: CompiledPolicy) -> None:
        ok, reason = available()
        if not ok:
            raise BackendUnavailable(f"the durable backend is not available here ({reason}); use --backend python")
        self.policy = policy
        self._rulesets: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _compiled(self, params: Params) -> _Compiled:
        key = json.dumps(sorted(params.items()), default=str)
        with self._lock:
            if key not in self._rulesets:
                self._rulesets[key] = _Compiled(self.policy, params)
            return self._rulesets[key]

    def close(self) -> None:
        """Free every durable ruleset this backend registered."""
        with self._lock:
            for compiled in self._rulesets.values():
                compiled.ruleset.close()
            self._rulesets.clear()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # a finalizer must not raise (at exit, module globals may be gone)
            pass

    def run(
        self, policy: CompiledPolicy, scope: Scope, names: Sequence[str], stage: CompiledStage | None, rows: bool
    ) -> dict[str, Any]:
        compiled = self._compiled(scope.params)  # type: ignore[arg-type]
        # one ruleset holds every stage's rules: each phase settles all of the policy's (a stage's
        # own `names` are among them), so that a field computed in Python finds every rule it reads
        names = policy.phase1 if not rows else policy.ir.order if scope.stage is None else policy.phase2
        for name in names:
            if name in policy.ir.values or (compiled.fields_use_rules and name in policy.ir.rules):
                scope.known[name] = settle(policy.defs[name], scope)
        found = compiled.conclusions(scope)
        for name in names:
            if name in policy.ir.rules:
                scope.known[name] = self._value(found, name, policy.defs[name], scope)
        if stage is None:
            return {}
        sid = stage.stage.id
        if not rows:
            answers = {"pool": self._value(found, f"pool:{sid}", stage.pool, scope)}
            for track, when, _ in stage.tracks:
                answers[f"track:{track.id}"] = self._value(found, f"track:{sid}:{track.id}", when, scope)
            return answers
        return {f"row:{row.index}": self._value(found, f"row:{sid}:{row.index}", fn, scope) for row, fn in stage.rows}

    @staticmethod
    def _value(found: dict[str, bool], name: str, fn: Any, scope: Scope) -> Any:
        if name in found:
            return found[name]
        python = settle(fn, scope)  # Rete cannot say what is missing; the same closure can
        if scope.by_bounds and not isinstance(python, Missing):
            # this subject has comparisons decided from the bounds of values not known (Python's
            # interval reasoning): Rete only sees the facts given, so what depends on them is Python's
            return python
        if not isinstance(python, Missing):
            raise BackendError(
                f"durable_rules left `{name}` undetermined where the compiled evaluator decides it ({python!r})"
            )
        return python
