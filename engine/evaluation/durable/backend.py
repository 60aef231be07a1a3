"""The durable_rules (Rete) backend: the same compiled policy, decided by durable_rules.

The only module that knows how conditions look to durable_rules; `engine.evaluation.durable._host` is the
only one that touches the library itself. Lowering keeps to the subset that measured reliable
(see shared/notes/durable-rules.md):

- one durable ruleset per stage, phase (before or after the ranking) and set of parameter values
  in force, built on first use and cached: it holds the rules of the names that phase settles
  (the stage's own, when the evaluation passes only those), the stage's pool and tracks before
  the ranking, its outcome rows after it, and nothing of other stages;
- a rule, pool, track or row reads its subject's fields, computed in Python: values, per-item
  quantifiers, comparisons of two facts, anything that is not a comparison with a constant; the
  comparisons with constants (parameters are constants of the ruleset) are Rete tests. A rule
  another one of the same ruleset reads is inlined into it; one an earlier phase settled is a
  field. No conclusion is chained as a fact: each durable rule tests one subject fact. A condition
  that grows too wide with what it reads inlined (over `MAX_CONJUNCTIONS` alternatives) starts a
  next ruleset of the phase, which reads the rules before it as fields (one more session);
- conditions are put in negation normal form, then in disjunctive normal form: one durable rule
  per conjunction, each an explicit `$and`; no engine-side negation (`not` is pushed into the
  comparisons: `>=` ↔ `<`, `==` ↔ `$neq`) and no `$or` inside arrays;
- each is lowered once, on one side: rules, pool and tracks on the side that does not hold (a
  requirement most subjects meet fires only for the few that miss it), outcome rows on the side
  that holds (the exceptions before the last row); a condition that reads no fact (`when: true`)
  is decided once, when the ruleset is built. Where Python knows every field a condition reads is
  present, that is enough: the side fired, or the other one holds. Where some field is missing
  (absent from the fact, so no test on it matches), the other side may hold too, or neither: it
  is lowered as well, behind a gate field that Python sets only for such a subject; if neither
  side fires, the condition is undetermined, as in the compiled evaluator;
- a comparison whose operand is missing but whose bounds (from the fact model) settle it is
  decided by the compiled evaluator's interval reasoning, which Rete cannot do: for a subject
  with such a comparison, what Rete leaves undetermined is taken from the same closures;
- ranking and allocation (places, capacity, reserved tracks) are the shared reduce step in Python,
  and grant quantities are computed in Python like values;
- one fact may match at most 64 conditions (error 303, measured): the subject's fields are
  asserted as several "part" facts, each tested by at most `PART_SIZE` conditions.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.core.errors import BackendError, BackendUnavailable, EvaluationError
from engine.evaluation.compiled import CompiledPolicy, CompiledStage, Params, settle
from engine.evaluation.compiler import Fn, Missing, Scope, Undetermined
from engine.evaluation.durable._host import DurableEngineError, DurableRuleset, Firing, available
from engine.language.expr import Binary, BoolOp, Compare, Const, IsNone, Name, Node, Unary, render, walk

__all__ = ["DurableBackend", "MAX_CONJUNCTIONS"]

MAX_CONJUNCTIONS = 64
PART_SIZE = 60  # stack places per subject part fact (durable_rules fails above 64; see `_Lowering._part`)
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


Conjunction = frozenset[_Cmp]


@dataclass(frozen=True)
class _Item:
    """A condition decided by the ruleset: a rule, the pool, a track's `when` or an outcome row."""

    name: str  # the rule's name, "pool", "track:ID" or "row:N"
    fn: Fn  # the same condition's closure (for what Rete leaves undetermined)
    side: bool  # the side lowered for every subject
    fields: frozenset[str]  # every field it reads (through the rules it inlines)
    gate: str  # the field that lets its other side fire (set only where a field is missing)
    constant: bool | None = None  # decided when the ruleset is built: it reads no fact


class _Lowering:
    """Conditions of one stage and phase under one set of parameter values → durable rules + fields."""

    def __init__(self, policy: CompiledPolicy, params: Params, inline: frozenset[str] = frozenset()) -> None:
        self.policy, self.params = policy, params
        self.inline = set(inline)  # rules decided by this ruleset: a reference to one is inlined
        self.fields: dict[str, Node] = {}  # field name -> expression computed in Python
        self.truth: set[str] = set()  # fields tested for being true or false (Python's truthiness)
        self.always: set[str] = set()  # fields never missing (`x is None` is true or false, whatever x is)
        self._names: dict[int, str] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.meaning: dict[str, tuple[str, bool, bool]] = {}  # durable rule -> (item, value, through the gate)
        self.items: list[_Item] = []
        self.parts: list[set[str]] = []  # fields each subject part fact must carry
        self.gated: list[bool] = []  # whether each part carries gated conditions only
        self._used: list[tuple[int, dict[str, int]]] = []  # per part: conditions not gated, and per gate

    def lower(self, name: str, node: Node, fn: Fn | None = None, side: bool = False) -> _Item:
        """Lower `node` as the item `name`: its `side` for every subject, the other behind a gate."""
        fn = fn if fn is not None else self.policy.fn(node)
        gate = f"g{len(self.items)}"
        if self._constant(node):
            item = _Item(name, fn, side, frozenset(), gate, constant=bool(self._const_value(node, scalar=False)))
            self.items.append(item)
            return item
        sides = {value: self._dnf(node, value) for value in (side, not side)}
        reads = frozenset(lit.field for conjunctions in sides.values() for c in conjunctions for lit in c)
        item = _Item(name, fn, side, reads, gate)
        # For every subject: the side lowered, as alternatives of which at most one holds (one firing).
        every, hides = self._first_witness(sides[side], safe=False)
        lowered = [(side, False, every)]
        if hides:  # where a field is missing, that form may hide a witness: the plain one, behind the gate
            lowered.append((side, True, self._first_witness(sides[side], safe=True)[0]))
        lowered.append((not side, True, self._first_witness(sides[not side], safe=True)[0]))
        key = name.replace(":", "__")
        for value, gated, conjunctions in lowered:
            for index, conjunction in enumerate(conjunctions):
                if gated:
                    conjunction = conjunction | {_Cmp(gate, "==", True)}
                rule_name = f"{key}__{'t' if value else 'f'}{'g' if gated else ''}{index}"
                self.rules[rule_name] = {"all": self._conditions(conjunction, gated)}
                self.meaning[rule_name] = (name, value, gated)
        self.items.append(item)
        return item

    def _first_witness(self, conjunctions: list[Conjunction], safe: bool) -> tuple[list[Conjunction], bool]:
        """The alternatives rewritten so that each also requires every earlier one not to hold: on a
        subject whose fields are present, at most one holds, so the side fires once.

        An earlier alternative fails where one of its literals (beyond those of the later one) is
        false; were that literal's field missing, the later alternative would be hidden. `safe`
        negates only fields that are never missing (`x is None`), so no witness is ever hidden;
        otherwise the second result says whether one may be (where a field is missing).
        Too many alternatives: the plain form.
        """
        found: list[Conjunction] = []
        hides = False
        for i, conjunction in enumerate(conjunctions):
            parts: list[list[Conjunction]] = [[conjunction]]
            for earlier in conjunctions[:i]:
                rest = earlier - conjunction
                if not rest:  # the earlier one holds whenever this one does: never the first
                    parts = [[]]
                    break
                if any(lit.field not in self.always for lit in rest):
                    if safe:
                        continue
                    hides = True
                parts.append([frozenset({self._negated(lit)}) for lit in rest])
            try:
                expanded = self._and(parts)
            except _TooWide:
                return conjunctions, False
            found.extend(c for c in expanded if not _contradictory(c))
            if len(found) > MAX_CONJUNCTIONS:
                return conjunctions, False
        return found, hides

    def _negated(self, literal: _Cmp) -> _Cmp:
        if literal.field in self.truth and literal.op == "==" and isinstance(literal.value, bool):
            return _Cmp(literal.field, "==", not literal.value)
        return _Cmp(literal.field, _NEGATE[literal.op], literal.value)

    def _dnf(self, node: Node, want: bool) -> list[Conjunction]:
        if self._constant(node):  # reads no fact: always (one empty conjunction) or never (none)
            return [frozenset()] if bool(self._const_value(node, scalar=False)) is want else []
        if isinstance(node, Unary) and node.op == "not":
            return self._dnf(node.operand, not want)
        if isinstance(node, BoolOp):
            conjunctive = (node.op == "and") == want
            parts = [self._dnf(o, want) for o in node.operands]
            return self._and(parts) if conjunctive else self._or(parts)
        if isinstance(node, Name) and node.name in self.inline:
            return self._dnf(self.policy.ir.rules[node.name].when, want)
        if isinstance(node, Compare) and node.op in _FLIP:
            literal = self._comparison(node, want)
            if literal is not None:
                return [frozenset({literal})]
        if isinstance(node, Compare) and node.op in ("in", "not in") and self._constant(node.right):
            return self._membership(node, want)
        field = self._field(node)
        self.truth.add(field)
        return [frozenset({_Cmp(field, "==", want)})]

    def _and(self, parts: list[list[Conjunction]]) -> list[Conjunction]:
        result: list[Conjunction] = [frozenset()]
        for part in parts:
            result = _minimal(a | b for a in result for b in part)
            if len(result) > MAX_CONJUNCTIONS:
                raise _TooWide(
                    f"a condition expands to more than {MAX_CONJUNCTIONS} alternatives for durable_rules; "
                    "simplify it or use the python backend"
                )
        return result

    def _or(self, parts: list[list[Conjunction]]) -> list[Conjunction]:
        return _minimal(itertools.chain.from_iterable(parts))

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
            field = self._field(node)
            self.truth.add(field)
            return [frozenset({_Cmp(field, "==", want)})]
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
            return self._constant(node.operand)
        if isinstance(node, BoolOp):
            return all(self._constant(o) for o in node.operands)
        if isinstance(node, Compare):
            return self._constant(node.left) and self._constant(node.right)
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
            if isinstance(node, IsNone):
                self.always.add(name)
        return self._names[key]

    def _conditions(self, conjunction: Conjunction, gated: bool = False) -> list[dict[str, Any]]:
        tests: list[dict[str, Any]] = []
        for literal in sorted(conjunction, key=lambda lit: (not lit.field.startswith("g"), repr(lit))):  # gate first
            op = _DURABLE_OP.get(literal.op)
            tests.append({op: {literal.field: literal.value}} if op else {literal.field: literal.value})
        part = {"part": self._part(conjunction, gated)}
        return [{"s": {"$and": [part, *tests]} if tests else part}]

    def _part(self, conjunction: Conjunction, gated: bool) -> int:
        """The part fact that carries the conjunction's fields, within what one fact may match.

        durable_rules walks the conditions a fact matches with a stack of 64 (error 303): each
        condition not behind a gate may take a place, and so may each gate the fact sets, plus the
        conditions behind one gate at a time (measured: 32 + 17 gates + 10 behind one match; 70 fail).
        A part whose conditions are all gated is asserted only for a subject with a missing field.
        """
        gate = next((lit.field for lit in conjunction if lit.field.startswith("g")), None) if gated else None
        index = len(self.parts) - 1
        if index < 0 or _load(self._used[index], gate) > PART_SIZE:
            index = len(self.parts)
            self.parts.append(set())
            self.gated.append(True)
            self._used.append((0, {}))
        ungated, gates = self._used[index]
        if gate is None:
            self._used[index] = (ungated + 1, gates)
            self.gated[index] = False
        else:
            gates[gate] = gates.get(gate, 0) + 1
        self.parts[index].update(lit.field for lit in conjunction)
        return index


def _load(used: tuple[int, dict[str, int]], gate: str | None) -> int:
    """The stack places a part fact may take (see `_Lowering._part`) with one more condition (behind `gate`)."""
    ungated, gates = used
    counts = dict(gates)
    if gate is None:
        ungated += 1
    else:
        counts[gate] = counts.get(gate, 0) + 1
    return ungated + len(counts) + max(counts.values(), default=0)


class _TooWide(BackendError):
    """A condition expands to more than MAX_CONJUNCTIONS alternatives."""


def _contradictory(conjunction: Conjunction) -> bool:
    """Whether two literals of it can never hold together (one negates the other, or two values for one field)."""
    seen: dict[str, list[_Cmp]] = {}
    for literal in conjunction:
        for other in seen.setdefault(literal.field, []):
            if other.op == _NEGATE[literal.op] and other.value == literal.value:
                return True
            if other.op == literal.op == "==" and other.value != literal.value:
                return True
        seen[literal.field].append(literal)
    return False


def _minimal(conjunctions: Iterable[Conjunction]) -> list[Conjunction]:
    """The alternatives without repeats and without any that another, smaller one implies (absorption)."""
    found = list(dict.fromkeys(conjunctions))
    if len(found) > 1:
        found = [c for c in found if not any(o < c for o in found)]
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BackendError(f"durable_rules cannot compare `{value}`: it is not a finite number")
        if abs(value) >= 1e16:  # durable_rules reads no `e+` exponent; a float this large is a whole number
            return int(value)
    return value.isoformat() if isinstance(value, dt.date) else value


class _Compiled:
    """The durable rulesets of one stage and phase under one parameter set: one, unless a condition
    grows too wide with the rules it reads inlined; then it starts a next ruleset (a level) that
    reads the rules of the levels before as fields, decided by them first (one more session)."""

    def __init__(
        self,
        policy: CompiledPolicy,
        params: Params,
        names: Sequence[str],
        stage: CompiledStage | None,
        rows: bool,
    ) -> None:
        self.rules = tuple(n for n in names if n in policy.ir.rules)
        self.values = tuple(n for n in names if n in policy.ir.values)
        conditions: list[tuple[str, Node, Fn, bool]] = [
            (name, policy.ir.rules[name].when, policy.defs[name], False) for name in self.rules
        ]
        if stage is not None and not rows:
            conditions.append(("pool", stage.stage.pool, stage.pool, False))
            conditions += [(f"track:{track.id}", track.when, when, False) for track, when, _ in stage.tracks]
        elif stage is not None:
            conditions += [(f"row:{row.index}", row.when, fn, True) for row, fn in stage.rows]
        lowerings = [_Lowering(policy, params)]
        for name, node, fn, side in conditions:
            try:
                lowerings[-1].lower(name, node, fn, side)
            except _TooWide:
                if not lowerings[-1].items:
                    raise
                lowerings.append(_Lowering(policy, params))  # what it reads is decided before
                lowerings[-1].lower(name, node, fn, side)
            if name in policy.ir.rules:
                lowerings[-1].inline.add(name)
        self.levels: list[_Level] = []
        try:
            for lowering in lowerings:
                self.levels.append(_Level(policy, lowering))
        except BackendError:
            self.close()
            raise
        self.items = tuple(item for level in self.levels for item in level.items)
        self.answers = tuple(item.name for item in self.items if item.name not in policy.ir.rules)
        # A value, or a field computed in Python, that reads a rule its own ruleset decides (`1 if r else 2`)
        # needs that rule's result before Rete runs: then the rules are decided in Python first too.
        decided = frozenset(self.rules)
        self.python_first = any(level.reads_own_rules for level in self.levels) or any(
            isinstance(n, Name) and n.name in decided for v in self.values for n in walk(policy.ir.values[v].expr)
        )

    def close(self) -> None:
        for level in self.levels:
            level.close()

    def decide(self, scope: Scope) -> dict[str, Any]:
        """Every condition's value, level by level (each writes the rules it decides into `scope.known`)."""
        if len(self.levels) == 1:
            return self.levels[0].decide(scope)
        answers: dict[str, Any] = {}
        for level in self.levels:
            answers.update(level.decide(scope))
        return answers


class _Level:
    """One durable ruleset and the Python side of its fields."""

    def __init__(self, policy: CompiledPolicy, lowering: _Lowering) -> None:
        self.items = tuple(lowering.items)
        self.rules_set = frozenset(item.name for item in self.items if item.name in policy.ir.rules)
        self.meaning, self.parts, self.truth = lowering.meaning, lowering.parts, frozenset(lowering.truth)
        parts = zip(self.parts, lowering.gated, strict=True)
        self.layout = tuple((i, tuple(sorted(fields)), gated) for i, (fields, gated) in enumerate(parts))
        tested = set().union(*lowering.parts)
        self.fns = {name: policy.fn(node) for name, node in lowering.fields.items() if name in tested}
        self.nodes = {name: lowering.fields[name] for name in self.fns}
        self.reads_own_rules = any(
            isinstance(n, Name) and n.name in self.rules_set for node in self.nodes.values() for n in walk(node)
        )
        self.ruleset: DurableRuleset | None = None
        if lowering.rules:
            try:
                self.ruleset = DurableRuleset(lowering.rules)
            except DurableEngineError as error:
                raise BackendError(f"durable_rules refused this policy: {error}") from None

    def close(self) -> None:
        if self.ruleset is not None:
            self.ruleset.close()

    def subject_facts(self, scope: Scope) -> tuple[list[dict[str, Any]], set[str]]:
        """The subject as part facts, each with the fields its conditions test; and the fields missing."""
        values: dict[str, Any] = {}
        absent: set[str] = set()
        truth = self.truth
        for name, fn in self.fns.items():
            try:
                value = fn(scope)
            except Undetermined:
                absent.add(name)  # absent from the fact: no test on it matches, on either side
                continue
            if name in truth:
                value = bool(value)
            else:
                if isinstance(value, float) and not math.isfinite(value):
                    node = self.nodes[name]
                    why = "not a finite number (durable_rules cannot compare it)"
                    raise EvaluationError(f"{node.span}: `{render(node)}` is {value}, {why}")
                value = _plain(value)
                if not isinstance(value, _SCALAR):
                    raise BackendError(
                        f"durable_rules can compare only numbers, text and booleans, not {type(value).__name__}"
                    )
            values[name] = value
        if absent:  # open the other side of every condition that reads a missing field
            for item in self.items:
                if item.fields & absent:
                    values[item.gate] = True
        facts = [
            {"part": i, **{f: values[f] for f in fields if f in values}}
            for i, fields, gated in self.layout
            if absent or not gated
        ]
        return facts, absent

    def decide(self, scope: Scope) -> dict[str, Any]:
        """Every item's value: True, False, or what the compiled evaluator makes of what Rete leaves open."""
        facts, absent = self.subject_facts(scope)
        found: dict[str, bool] = {}

        def on_fire(firing: Firing) -> None:
            name, value, _ = self.meaning[firing.rule]
            if found.setdefault(name, value) is not value:
                raise BackendError(f"durable_rules concluded both true and false for `{name}`")

        if self.ruleset is not None:
            try:
                self.ruleset.run(facts, on_fire=on_fire, matched=False)
            except DurableEngineError as error:
                if isinstance(error.__cause__, BackendError):
                    raise error.__cause__ from None
                raise BackendError(f"durable_rules failed: {error}") from None
        answers: dict[str, Any] = {}
        known, rules = scope.known, self.rules_set
        for item in self.items:  # in dependency order: what a closure reads below is settled first
            if item.constant is not None:
                value: Any = item.constant
            elif item.name in found:
                value = found[item.name]
            elif not (absent and item.fields & absent):
                value = not item.side  # every field present: the side not lowered holds
            else:
                value = _undetermined(item, scope)
            answers[item.name] = value
            if item.name in rules:
                known[item.name] = value
        return answers


def _undetermined(item: _Item, scope: Scope) -> Any:
    """What Rete leaves open for a subject with missing fields: Missing, as the compiled evaluator says."""
    python = settle(item.fn, scope)  # Rete cannot say what is missing; the same closure can
    if scope.by_bounds and not isinstance(python, Missing):
        # this subject has comparisons decided from the bounds of values not known (Python's
        # interval reasoning): Rete only sees the facts given, so what depends on them is Python's
        return python
    if not isinstance(python, Missing):
        raise BackendError(
            f"durable_rules left `{item.name}` undetermined where the compiled evaluator decides it ({python!r})"
        )
    return python


class DurableBackend:
    """Decides rules, pools and outcome rows on durable_rules; values are computed in Python."""

    name = "durable"

    def __init__(self, policy: CompiledPolicy) -> None:
        ok, reason = available()
        if not ok:
            raise BackendUnavailable(f"the durable backend is not available here ({reason}); use --backend python")
        self.policy = policy
        self._rulesets: dict[tuple[str, str | None, bool, tuple[str, ...]], _Compiled] = {}
        self._recent: dict[tuple[int, int, int, bool], tuple[Any, Any, Any, _Compiled]] = {}
        self._lock = threading.Lock()

    def _compiled(self, params: Params, names: Sequence[str], stage: CompiledStage | None, rows: bool) -> _Compiled:
        """The ruleset for this stage, phase and parameter set (found by identity first: one per call is costly)."""
        quick = (id(params), id(names), id(stage), rows)
        seen = self._recent.get(quick)
        if seen is not None and seen[0] is params and seen[1] is names and seen[2] is stage:
            return seen[3]
        key = (
            json.dumps(sorted(params.items()), default=str),
            stage.stage.id if stage is not None else None,
            rows,
            tuple(names),
        )
        with self._lock:
            if key not in self._rulesets:
                self._rulesets[key] = _Compiled(self.policy, params, names, stage, rows)
            compiled = self._rulesets[key]
            if len(self._recent) > 64:
                self._recent.clear()
            self._recent[quick] = (params, names, stage, compiled)
        return compiled

    def close(self) -> None:
        """Free every durable ruleset this backend registered."""
        with self._lock:
            for compiled in self._rulesets.values():
                compiled.close()
            self._rulesets.clear()
            self._recent.clear()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # a finalizer must not raise (at exit, module globals may be gone)
            pass

    def prepare(self, policy: CompiledPolicy, params: Params, groups: Sequence[Sequence[str]]) -> None:
        """Build now the rulesets that settle each group of names later (a decision's trace read for
        what its stage did not need): a condition too wide for durable_rules fails the evaluation."""
        for names in groups:
            self._compiled(params, names, None, False)

    def run(
        self, policy: CompiledPolicy, scope: Scope, names: Sequence[str], stage: CompiledStage | None, rows: bool
    ) -> dict[str, Any]:
        compiled = self._compiled(scope.params, names, stage, rows)  # type: ignore[arg-type]
        known = scope.known
        if compiled.python_first:
            for name in names:
                known[name] = settle(policy.defs[name], scope)
        else:
            for name in compiled.values:
                known[name] = settle(policy.defs[name], scope)
        answers = compiled.decide(scope)  # fills scope.known with the rules it decides
        if stage is None:
            return {}
        return {name: answers[name] for name in compiled.answers}
