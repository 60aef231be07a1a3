"""Ranking under uncertainty: how far can a missing fact move a subject in the ranking?

A ranking key that cannot be computed (a missing fact) still ranges over what the fact model
allows: a user score bounded `0 ≤ user ≤ 25` gives a total between the total without it and 25
points more. Each key becomes an `Interval` by interval arithmetic over the key's expression
(definitions written out, known values taken as they are, a missing fact as its bounds, its
choices or `False..True`); what cannot be bounded (a fact without bounds, a list, a text) is
`Interval.anything()`. Comparing intervals says whether one subject is surely, possibly or never
ranked before another, so each subject's rank becomes `best..worst`, and the subjects whose
facts would settle it are known by name.

Sound, not always tight: a rank interval always holds the rank every completion of the missing
facts would give (the keys of one subject are treated as independent, which can only widen it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.core.errors import EvaluationError
from engine.language.expr import Attr, Binary, Call, Compare, IfExp, Name, Node, Unary
from engine.language.ir import PolicyIR
from engine.language.ranges import fact_range

__all__ = ["Interval", "Bounder", "UNKNOWN", "PLACES", "surely_before", "possibly_before", "decided_by_bounds"]

PLACES = 10  # arithmetic results are rounded to this many decimal places (the compiler's and the bounds')
UNKNOWN = object()  # what `value_of` returns for a node whose value depends on missing facts


@dataclass(frozen=True)
class Interval:
    """The values a ranking key may take: `low..high` (numbers may be ±inf); `low is None`: anything."""

    low: Any
    high: Any

    @staticmethod
    def point(value: Any) -> Interval:
        return Interval(value, value)

    @staticmethod
    def anything() -> Interval:
        return Interval(None, None)

    @property
    def known(self) -> bool:
        return self.low is not None and self.low == self.high and _number_or_other(self.low)

    @property
    def bounded(self) -> bool:
        return self.low is not None and self.low != -math.inf and self.high != math.inf

    def describe(self) -> str:
        """`between 56.4 and 81.4`, `at least 10`, `any value`."""
        if self.low is None or (self.low == -math.inf and self.high == math.inf):
            return "any value"
        if self.known:
            return _num(self.low)
        if self.low == -math.inf:
            return f"at most {_num(self.high)}"
        if self.high == math.inf:
            return f"at least {_num(self.low)}"
        return f"between {_num(self.low)} and {_num(self.high)}"


def _number_or_other(value: Any) -> bool:
    return not (isinstance(value, float) and math.isinf(value))


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _exact(value: float) -> float:
    return round(value, PLACES) if math.isfinite(value) else value


def _numeric(a: Interval) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a.low, a.high))


class Bounder:
    """Interval arithmetic over an expression, in the state of one evaluation.

    `value_of(node)` gives a node's value as the evaluator computes it, or `UNKNOWN` when it
    depends on missing facts; those nodes are bounded from what they are made of.
    """

    def __init__(self, ir: PolicyIR, value_of: Callable[[Node], Any]) -> None:
        self.ir, self.value_of = ir, value_of
        self.unbounded: set[str] = set()  # facts that had to be taken as anything

    def of(self, node: Node, depth: int = 0) -> Interval:
        try:
            value = self.value_of(node)
        except EvaluationError:
            return Interval.anything()
        if value is not UNKNOWN:
            return Interval.point(value)
        if depth > 200:
            return Interval.anything()
        handler = getattr(self, f"_{type(node).__name__}", None)
        return handler(node, depth + 1) if handler is not None else Interval.anything()

    def _Name(self, node: Name, depth: int) -> Interval:
        kind = self.ir.kind_of(node.name)
        if kind == "value":
            return self.of(self.ir.values[node.name].expr, depth)
        if kind == "fact":
            return self._fact((node.name,))
        return Interval.anything()

    def _Attr(self, node: Attr, depth: int) -> Interval:
        path: list[str] = []
        current: Node = node
        while isinstance(current, Attr):
            path.insert(0, current.attr)
            current = current.obj
        if not isinstance(current, Name):
            return Interval.anything()
        kind = self.ir.kind_of(current.name)
        if kind == "fact":
            return self._fact((current.name, *path))
        context = self.ir.schema.context_field
        if kind == "context" and context is not None:
            return self._fact(tuple(path), model=self.ir.schema.cohort, prefix=(context,))
        return Interval.anything()

    def _fact(self, path: tuple[str, ...], model: Any = None, prefix: tuple[str, ...] = ()) -> Interval:
        found = fact_range(model or self.ir.schema.subject, (*prefix, *path))
        if found is None or not found.bounded:
            self.unbounded.add(".".join(path) if not prefix else "context." + ".".join(path))
            return Interval.anything() if found is None else Interval(found.low, found.high)
        return Interval(found.low, found.high)

    def _Unary(self, node: Unary, depth: int) -> Interval:
        inner = self.of(node.operand, depth)
        if node.op == "+" or not _numeric(inner):
            return inner if node.op == "+" else Interval.anything()
        return Interval(-inner.high, -inner.low)

    def _Binary(self, node: Binary, depth: int) -> Interval:
        a, b = self.of(node.left, depth), self.of(node.right, depth)
        if not (_numeric(a) and _numeric(b)):
            return Interval.anything()
        if node.op == "+":
            return Interval(_exact(a.low + b.low), _exact(a.high + b.high))
        if node.op == "-":
            return Interval(_exact(a.low - b.high), _exact(a.high - b.low))
        if node.op == "*":
            return _hull([x * y for x in (a.low, a.high) for y in (b.low, b.high)])
        if b.low <= 0 <= b.high:
            return Interval(-math.inf, math.inf)
        return _hull([x / y for x in (a.low, a.high) for y in (b.low, b.high)])

    def _IfExp(self, node: IfExp, depth: int) -> Interval:
        test = self.of(node.test, depth)
        if test.known:
            return self.of(node.body if test.low else node.orelse, depth)
        body, orelse = self.of(node.body, depth), self.of(node.orelse, depth)
        if body.low is None or orelse.low is None:
            return Interval.anything()
        try:
            return Interval(min(body.low, orelse.low), max(body.high, orelse.high))
        except TypeError:
            return Interval.anything()

    def _Call(self, node: Call, depth: int) -> Interval:
        args = [self.of(a, depth) for a in node.args]
        if not args or not all(_numeric(a) for a in args):
            return Interval.anything()
        if node.func == "abs" and len(args) == 1:
            a = args[0]
            if a.low >= 0:
                return a
            if a.high <= 0:
                return Interval(-a.high, -a.low)
            return Interval(0, max(-a.low, a.high))
        if node.func in ("min", "max") and len(args) > 1:
            pick = min if node.func == "min" else max
            return Interval(pick(a.low for a in args), pick(a.high for a in args))
        if node.func == "round" and len(args) == 1:
            a = args[0]
            return Interval(_rounded(a.low, math.floor), _rounded(a.high, math.ceil))
        return Interval.anything()


def _rounded(value: float, direction: Any) -> float:
    return value if math.isinf(value) else float(direction(value))


def _hull(values: list[float]) -> Interval:
    if any(math.isnan(v) for v in values):
        return Interval(-math.inf, math.inf)
    return Interval(_exact(min(values)), _exact(max(values)))


def decided_by_bounds(bounder: Bounder, node: Compare) -> bool | None:
    """A comparison whose operands are not all known, decided from their bounds when every value they
    may take gives the same answer (`total_score >= 70` with the total between 40 and 65 is False);
    None when the bounds do not settle it."""
    if node.op not in ("<", "<=", ">", ">=", "==", "!="):
        return None
    a, b = bounder.of(node.left), bounder.of(node.right)
    if not (_numeric(a) and _numeric(b)):
        return None
    low, high = _order(node.op, a, b)
    if low:
        return True
    if high:
        return False
    return None


def _order(op: str, a: Interval, b: Interval) -> tuple[bool, bool]:
    """(surely true, surely false) of `a op b` over every value of the two intervals."""
    if op == "<":
        return a.high < b.low, a.low >= b.high
    if op == "<=":
        return a.high <= b.low, a.low > b.high
    if op == ">":
        return a.low > b.high, a.high <= b.low
    if op == ">=":
        return a.low >= b.high, a.high < b.low
    disjoint = a.high < b.low or b.high < a.low
    same = a.known and b.known and a.low == b.low
    return (same, disjoint) if op == "==" else (disjoint, same)


# --- comparing subjects whose keys are intervals --------------------------------------------------


def _before(a: Interval, b: Interval, descending: bool, surely: bool) -> bool:
    """Whether a value of `a` is (surely / possibly) ranked strictly before a value of `b` on one key."""
    if a.low is None or b.low is None:
        return not surely
    try:
        if descending:
            return a.low > b.high if surely else a.high > b.low
        return a.high < b.low if surely else a.low < b.high
    except TypeError:
        return not surely


def _same(a: Interval, b: Interval, surely: bool) -> bool:
    if a.low is None or b.low is None:
        return not surely
    if surely:
        return a.known and b.known and a.low == b.low
    try:
        return bool(a.low <= b.high and b.low <= a.high)
    except TypeError:
        return True


def surely_before(a: Sequence[Interval], b: Sequence[Interval], descending: Sequence[bool]) -> bool:
    """Whether every completion ranks `a` strictly before `b` (lexicographically over the keys)."""
    for x, y, desc in zip(a, b, descending, strict=True):
        if _before(x, y, desc, surely=True):
            return True
        if not _same(x, y, surely=True):
            return False
    return False


def possibly_before(a: Sequence[Interval], b: Sequence[Interval], descending: Sequence[bool]) -> bool:
    """Whether some completion ranks `a` strictly before `b` (lexicographically over the keys)."""
    for x, y, desc in zip(a, b, descending, strict=True):
        if _before(x, y, desc, surely=False):
            return True
        if not _same(x, y, surely=False):
            return False
    return False
