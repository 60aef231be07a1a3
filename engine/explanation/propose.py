"""Proposing changes of facts that would flip a condition: the search behind "why not".

A condition is walked with the values of one decision: `and`/`or`/`not` combine the plans of
their operands; a rule or value is followed into its definition; a comparison with a constant
gives the value a numeric fact needs (within the fact model's bounds; several facts when one is
not enough), or the choice a text fact needs; a list that must be empty, or a test every item
must pass, gives what must change in each item; `stage.rank <= stage.slots` gives the ranking key
that would take the last place. Facts the subject cannot change are never proposed. Plans are
only proposals: `engine.explanation.whynot` keeps those that evaluating the changed facts confirms.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.evaluation.compiled import settle
from engine.evaluation.compiler import Missing, Scope
from engine.evaluation.evaluate import PythonBackend, scope_of
from engine.evaluation.reasons import format_value, is_rank
from engine.language.expr import (
    Attr,
    BoolOp,
    Call,
    Compare,
    Comprehension,
    Const,
    ListLit,
    Name,
    Node,
    Unary,
    children,
    render,
)
from engine.language.factpaths import bounds, field_info, get_path, set_path
from engine.language.ir import Table
from engine.language.types import Choice, from_annotation

if TYPE_CHECKING:
    from engine.embedding.policy import Policy
    from engine.evaluation.result import Decision

__all__ = ["Edit", "Plan", "Proposer", "MAX_PLANS", "product", "union", "jointly"]

_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "==", "in": "not in", "not in": "in"}
MAX_PLANS = 40


@dataclass(frozen=True)
class Edit:
    path: str  # subject-relative, e.g. `model.components[1].weights.origin`
    value: Any
    structural: bool = False  # a choice that may need the record around it rebuilt


Plan = tuple[Edit, ...]


def product(parts: list[list[Plan]]) -> list[Plan]:
    result: list[Plan] = [()]
    for part in parts:
        result = [a + b for a, b in itertools.product(result, part)][:MAX_PLANS]
    return result


def jointly(parts: list[list[Plan]]) -> list[Plan]:
    """Plans making every part hold at once. A part with no plan of its own (a fact it cannot
    change, a form the proposer cannot invert) is hoped settled by the other parts' edits: one
    edit often settles several conditions (weights trained by the team also drop their upstream).
    Nothing is lost by hoping: every plan is verified by evaluating again before it is suggested."""
    if not any(plan for part in parts for plan in part):
        return []
    return product([part if part else [()] for part in parts])


def union(parts: list[list[Plan]]) -> list[Plan]:
    return list(dict.fromkeys(itertools.chain.from_iterable(parts)))[:MAX_PLANS]


class Proposer:
    """Walks a condition with this decision's values and proposes plans that would flip it."""

    def __init__(
        self, policy: Policy, decision: Decision, cutoffs: dict[str, tuple[str, tuple[Any, ...]] | None]
    ) -> None:
        self.policy, self.decision, self.cutoffs = policy, decision, cutoffs
        self.compiled = policy.compiled
        self.ir = policy.ir
        self.model = self.ir.schema.subject
        self.scope = scope_of(policy.compiled, decision)
        self.data = decision.subject.model_dump()
        self.needs: list[str] = []  # the gaps found on the way, in numbers

    def value(self, node: Node) -> Any:
        if isinstance(node, Name) and node.name in self.scope.known and node.name not in self.scope.locals:
            return self.scope.known[node.name]
        return settle(self.compiled.fn(node), self.scope)

    def repair(self, node: Node, want: bool) -> list[Plan]:
        """Alternative plans making `node` evaluate to `want`; [()] if it already does, [] if none."""
        current = self.value(node)
        if not isinstance(current, Missing) and bool(current) is want:
            return [()]
        if isinstance(node, Unary) and node.op == "not":
            return self.repair(node.operand, not want)
        if isinstance(node, BoolOp):
            parts = [self.repair(o, want) for o in node.operands]
            return jointly(parts) if (node.op == "and") is want else union(parts)
        if isinstance(node, Name) and node.name not in self.scope.locals:
            definition = self.ir.rules.get(node.name) or self.ir.values.get(node.name)
            if definition is not None:
                return self.repair(definition.when if node.name in self.ir.rules else definition.expr, want)  # type: ignore[union-attr]
        if isinstance(node, (Name, Attr)):
            path = self.path(node)
            return [(Edit(path, want),)] if path and self.changeable(path) and not isinstance(current, Missing) else []
        if isinstance(node, Compare):
            return self.compare(node, node.op if want else _NEGATE[node.op])
        if isinstance(node, Comprehension) and node.kind in ("any", "all"):
            return self.quantifier(node, want)
        return []

    def path(self, node: Node) -> str | None:
        names: list[str] = []
        while isinstance(node, Attr):
            names.insert(0, node.attr)
            node = node.obj
        if not isinstance(node, Name):
            return None
        if node.name in self.scope.locals:
            return ".".join([self.scope.paths[node.name]] + names)
        return ".".join([node.name] + names) if self.ir.kind_of(node.name) == "fact" else None

    def changeable(self, path: str) -> bool:
        return field_info(self.model, path)[0]

    def compare(self, node: Compare, op: str) -> list[Plan]:
        label = self.label(node.left)
        left, right = self.inline(node.left), node.right
        if _is_rank(node):
            return self.rank(node, op)
        if not self.constant(right) and self.constant(left):
            label = self.label(node.right)
            left, right, op = self.inline(right), left, {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        if not self.constant(right):
            return []
        target = self.value(right)
        if isinstance(target, Missing) and isinstance(right, Call) and self.lookup(right):
            return self.other_keys(left, op, right)  # no row for this key: another key's row may meet it
        if isinstance(target, Missing):
            return []
        if isinstance(left, Call) and left.func == "len" and isinstance(self.inline(left.args[0]), Comprehension):
            return self.emptied(self.inline(left.args[0]), op, target)  # type: ignore[arg-type]
        if op in ("in", "not in") or isinstance(target, str):
            return self.choice(left, op, target)
        if (
            isinstance(target, (int, float))
            and not isinstance(target, bool)
            and isinstance(right, Call)
            and self.lookup(right)
        ):
            why = f" ({self.row_text(right)})"  # the threshold of this subject's row: another key has another
            return self.numeric(left, op, target, label, why) + self.other_keys(left, op, right)
        if isinstance(target, (int, float)) and not isinstance(target, bool):
            return self.numeric(left, op, target, label)
        return []

    def lookup(self, node: Node) -> bool:
        """A table or scale parameter called with its key: a threshold that depends on the subject's key."""
        return isinstance(node, Call) and node.func in self.ir.parameters

    def row_text(self, call: Call) -> str:
        keys = [self.value(a) for a in call.args]
        shown = ", ".join(format_value(k) for k in keys)
        kind = "bracket" if self.ir.parameters[call.func].shape == "scale" else "row"
        return f"`{call.func}({shown})`, the {kind} for `{', '.join(render(a) for a in call.args)}` = {shown}"

    def other_keys(self, left: Node, op: str, call: Call) -> list[Plan]:
        """Another key the subject could have, whose row meets the comparison (`size` 3: a higher cap)."""
        table = self.scope.params.get(call.func) if isinstance(self.scope.params, dict) else None
        current = self.value(left)
        if not isinstance(table, Table) or len(call.args) != 1 or isinstance(current, Missing):
            return []
        path = self.path(self.inline(call.args[0]))
        if path is None or not self.changeable(path):
            return []
        mine = self.value(call.args[0])
        fits = [k[0] for k, v in table.rows if k[0] != mine and _numeric(v) and _holds(current, op, v)]
        if isinstance(mine, (int, float)):
            fits.sort(key=lambda k: abs(k - mine) if isinstance(k, (int, float)) else math.inf)
        return [(Edit(path, k, structural=isinstance(k, str)),) for k in fits[:3]]

    def label(self, node: Node) -> str:
        if isinstance(node, Name) and node.name in self.ir.values:
            return f"{self.ir.values[node.name].title} (`{node.name}`)"
        return f"`{render(node)}`"

    def inline(self, node: Node) -> Node:
        while isinstance(node, Name) and node.name in self.ir.values and node.name not in self.scope.locals:
            node = self.ir.values[node.name].expr
        return node

    def constant(self, node: Node) -> bool:
        if isinstance(node, (Const, ListLit)) or self.lookup(node):
            return True
        return isinstance(node, Name) and self.ir.kind_of(node.name) == "parameter"

    def choice(self, left: Node, op: str, target: Any) -> list[Plan]:
        path = self.path(left)
        if path is None or not self.changeable(path):
            return []
        annotation = field_info(self.model, path)[1]
        ty = from_annotation(annotation)
        choices = sorted(ty.choices) if isinstance(ty, Choice) else []
        wanted: list[Any]
        if op == "==":
            wanted = [target]
        elif op == "in":
            wanted = list(target)
        elif op in ("!=", "not in"):
            excluded = [target] if op == "!=" else list(target)
            wanted = [c for c in choices if c not in excluded]
        else:
            return []
        return [(Edit(path, v, structural=True),) for v in wanted]

    def numeric(self, expression: Node, op: str, target: float, label: str, why: str = "") -> list[Plan]:
        current = self.value(expression)
        if isinstance(current, Missing) or op == "!=":
            return []
        if _holds(current, op, target):
            return [()]
        gap = round(_needed(current, op, target, _granularity(current)) - current, 4)
        strict = "at least " if op in (">", "<") else ""
        need = (
            f"{label} is {format_value(current)}; it needs "
            f"{'≥' if op == '>=' else '≤' if op == '<=' else op} {format_value(target)}{why}: "
            f"{strict}{'+' if gap >= 0 else ''}{format_value(gap)}"
        )
        self.needs.append(need)
        plans: list[Plan] = []
        headroom: list[tuple[str, float, float]] = []
        for path in self.numeric_leaves(expression):
            slope = self.slope(expression, path)
            if not slope:
                continue
            low, high, integer = bounds(self.model, path)
            before = get_path(self.data, path)
            step = 1 if integer else _granularity(before)
            needed = _needed(current, op, target, step)
            after = _round_towards(before + (needed - current) / slope, step, up=(needed - current) / slope > 0)
            if (low is None or after >= low) and (high is None or after <= high):
                plans.append((Edit(path, int(after) if integer else after),))
            limit = high if slope * ((needed - current) or 1) > 0 else low
            if limit is not None:
                headroom.append((path, before, limit))
        if not plans and headroom:
            plans += self.spread(expression, op, target, headroom)
        return plans

    def spread(self, expression: Node, op: str, target: float, headroom: list[tuple[str, float, float]]) -> list[Plan]:
        """When no single fact can close the gap, raise (or lower) several, largest room first."""
        edits: list[Edit] = []
        gap = _needed(self.value(expression), op, target, 0.1) - self.value(expression)
        for path, before, limit in sorted(
            headroom, key=lambda h: -abs(h[2] - h[1]) * abs(self.slope(expression, h[0]))
        ):
            slope = self.slope(expression, path)
            room = (limit - before) * slope
            use = room if abs(room) < abs(gap) else gap
            after = _round_towards(before + use / slope, _granularity(before), up=use / slope > 0)
            after = min(after, limit) if limit >= before else max(after, limit)
            edits.append(Edit(path, after))
            gap -= (after - before) * slope
            if abs(gap) < 1e-9 or (gap < 0) != (use < 0):
                return [tuple(edits)]
        return []

    def numeric_leaves(self, node: Node) -> list[str]:
        found: list[str] = []
        for inner in _walk_inline(self, node):
            path = self.path(inner) if isinstance(inner, (Attr, Name)) else None
            value = get_path(self.data, path) if path else None
            if path and isinstance(value, (int, float)) and not isinstance(value, bool) and self.changeable(path):
                found.append(path)
        return list(dict.fromkeys(found))

    def slope(self, expression: Node, path: str) -> float:
        base = self.value(expression)
        shifted = _evaluate_with(self, expression, {path: get_path(self.data, path) + 1})
        return 0.0 if isinstance(shifted, Missing) or isinstance(base, Missing) else float(shifted - base)

    def emptied(self, node: Comprehension, op: str, target: Any) -> list[Plan]:
        if not ((op == "==" and target == 0) or (op == "<" and target == 1) or (op == "<=" and target == 0)):
            return []
        per_item = []
        for _, _ in self.items(node):
            kept = self.repair(node.condition, False) if node.condition is not None else []
            per_item.append(kept)
        return product(per_item)

    def quantifier(self, node: Comprehension, want: bool) -> list[Plan]:
        per_item = []
        for _, _ in self.items(node):
            condition = node.condition
            if node.kind == "all":
                holds = [self.repair(node.body, True)] + (
                    [self.repair(condition, False)] if condition is not None else []
                )
                per_item.append(
                    union(holds)
                    if want
                    else product([self.repair(condition, True) if condition else [()], self.repair(node.body, False)])
                )
            else:
                parts = [self.repair(node.body, want)] + (
                    [self.repair(condition, True)] if condition is not None and want else []
                )
                per_item.append(
                    product(parts)
                    if want
                    else union(parts + ([self.repair(condition, False)] if condition is not None else []))
                )
        conjunctive = (node.kind == "all") is want
        return product(per_item) if conjunctive else union(per_item)

    def items(self, node: Comprehension) -> Iterator[tuple[int, Any]]:
        items = self.value(node.iterable)
        base = self.path(node.iterable)
        if isinstance(items, Missing) or base is None:
            return
        for index, item in enumerate(items):
            with self.bound(node.var, item, f"{base}[{index}]"):
                yield index, item

    @contextlib.contextmanager
    def bound(self, var: str, item: Any, path: str) -> Iterator[None]:
        saved = (self.scope.locals.get(var), self.scope.paths.get(var))
        self.scope.locals[var], self.scope.paths[var] = item, path
        try:
            yield
        finally:
            if saved[0] is None:
                self.scope.locals.pop(var, None)
                self.scope.paths.pop(var, None)
            else:
                self.scope.locals[var], self.scope.paths[var] = saved  # type: ignore[assignment]

    def rank(self, node: Compare, op: str) -> list[Plan]:
        stage = self.ir.stages[self.decision.stage or ""]
        if (
            op not in ("<=", "<")
            or not stage.rank_by
            or (self.decision.placement and self.decision.placement.slots == 0)
        ):
            return []  # no place to take
        pool = self.repair(stage.pool, True)
        cutoff = self.cutoffs.get(stage.id)
        if cutoff is None:
            return pool
        holder, keys = cutoff
        slots = self.decision.placement.slots if self.decision.placement else "?"
        why = f" to take the last of {slots} place(s), held by `{holder}`"
        keys_ = stage.rank_by
        first = keys_[0]
        beat = ">" if first.descending else "<"
        plans = self.numeric(self.inline(first.expr), beat, keys[0], self.label(first.expr), why)
        # or: equal the holder on the first keys and win on a tie-break (cheaper when it already wins there)
        for i in range(1, min(len(keys_), len(keys))):
            tie = f" to tie with `{holder}` on it"
            equal = [
                self.numeric(self.inline(k.expr), ">=" if k.descending else "<=", keys[j], self.label(k.expr), tie)
                for j, k in enumerate(keys_[:i])
            ]
            later = keys_[i]
            win = self.numeric(
                self.inline(later.expr),
                ">" if later.descending else "<",
                keys[i],
                self.label(later.expr),
                f" to win the tie-break against `{holder}`",
            )
            plans += product([*equal, win])
        return product([pool, plans])


def _walk_inline(proposer: Proposer, node: Node) -> Iterator[Node]:
    node = proposer.inline(node)
    yield node
    if isinstance(node, Comprehension):
        return
    for child in children(node):
        yield from _walk_inline(proposer, child)


def _is_rank(node: Compare) -> bool:
    return is_rank(node.left)


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _holds(current: float, op: str, target: float) -> bool:
    return {
        ">=": current >= target,
        ">": current > target,
        "<=": current <= target,
        "<": current < target,
        "==": current == target,
    }.get(op, False)


def _granularity(value: float) -> float:
    exponent = Decimal(str(value)).as_tuple().exponent
    places = min(max(-exponent if isinstance(exponent, int) else 1, 1), 2)
    return float(10**-places)


def _needed(current: float, op: str, target: float, step: float) -> float:
    if op == ">":
        return target + step
    if op == "<":
        return target - step
    return target


def _round_towards(value: float, step: float, up: bool) -> float:
    scaled = value / step
    rounded = math.ceil(scaled - 1e-9) if up else math.floor(scaled + 1e-9)
    return round(rounded * step, 4)


def _evaluate_with(proposer: Proposer, node: Node, changes: dict[str, Any]) -> Any:
    data = copy.deepcopy(proposer.data)
    for path, value in changes.items():
        set_path(data, path, value)
    try:
        subject = proposer.model.model_validate(data)
    except ValueError:
        return Missing(frozenset())
    scope = Scope(subject, proposer.scope.context, proposer.scope.params, proposer.scope.stage)
    PythonBackend().run(proposer.compiled, scope, proposer.compiled.phase1, None, rows=False)
    return settle(proposer.compiled.fn(node), scope)
