"""Compile checked expressions into Python closures: the compiled evaluator's semantics.

Each expression becomes `fn(scope) -> value`. Missing data raises `Undetermined` with the paths
that were missing; `and`/`or`/`any`/`all` follow three-valued (Kleene) logic, so `False and ?` is
False and `True or ?` is True, while `? and True` stays undetermined. `x is None` is always
decided. `all` over an empty list is True, `any` is False. An ordering (`< <= > >=`) whose operand
is missing is decided when every value the fact model allows gives the same answer (interval
bounds, `engine.evaluation.uncertain`): `total >= 70` with the total between 40.6 and 65.6 is
False. Closures hold no shared mutable state: every evaluation has its own `Scope`. Arithmetic
results are rounded to 10 decimal places, so sums of scores compare as a person expects (no
binary floating-point noise).

No expression raises anything but `Undetermined` or a located `EvaluationError`: a number that is
not finite (an overflow, or a fact given as `inf` or `nan`), a missing item of a list, or values
of types the checker could not know (a fact field of several types) stop the evaluation with an
error that names the expression and its file:line:col.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from engine.core.errors import EvaluationError
from engine.evaluation.uncertain import PLACES, UNKNOWN, Bounder, decided_by_bounds
from engine.language.expr import (
    MAX_NUMBER,
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
    Name,
    Node,
    Unary,
    render,
)
from engine.language.ir import Allotment, PolicyIR, Scale, StageInfo
from engine.language.ranges import fact_range

__all__ = ["Undetermined", "Missing", "Scope", "Fn", "compile_expression", "ExpressionCompiler", "no_row"]


class Undetermined(Exception):
    """Raised inside evaluation when a value depends on missing facts."""

    def __init__(self, missing: frozenset[str]) -> None:
        super().__init__(", ".join(sorted(missing)))
        self.missing = missing


@dataclass(frozen=True)
class Missing:
    """The recorded result of a definition that could not be decided."""

    paths: frozenset[str]


class StageState:
    """What a stage tells one subject while it is decided (`stage.rank`, `stage.slots`...): the fields of
    `ir.StageInfo` (which the checker types `stage.*` from) as a plain slotted object, one per subject of
    every cohort (a pydantic model costs several times more to make, and three objects for the collector).
    Nothing writes to one once made: `model_copy(update=...)` makes another, as pydantic's does."""

    __slots__ = (
        "id",
        "in_pool",
        "rank",
        "pool_size",
        "slots",
        "placed",
        "awarded",
        "allotment",
        "capacity",
        "capacity_left",
        "track",
        "reserved",
    )

    def __init__(
        self,
        id: str,
        in_pool: bool | None = None,
        rank: int | None = None,
        pool_size: int | None = None,
        slots: int | None = None,
        placed: bool | None = None,
        awarded: float | None = None,
        allotment: Allotment | None = None,
        capacity: float | None = None,
        capacity_left: float | None = None,
        track: str | None = None,
        reserved: bool | None = None,
    ) -> None:
        self.id, self.in_pool, self.rank, self.pool_size, self.slots = id, in_pool, rank, pool_size, slots
        self.placed, self.awarded, self.allotment, self.capacity = placed, awarded, allotment, capacity
        self.capacity_left, self.track, self.reserved = capacity_left, track, reserved

    def model_dump(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def model_copy(self, update: dict[str, Any] | None = None) -> StageState:
        return StageState(**(self.model_dump() | (update or {})))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StageState | StageInfo):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment] # compared by value, like the pydantic model

    def __reduce__(self) -> tuple[Any, ...]:
        return (StageState, tuple(getattr(self, name) for name in self.__slots__))

    def __repr__(self) -> str:
        return f"StageState({', '.join(f'{k}={v!r}' for k, v in self.model_dump().items())})"


@dataclass(slots=True, init=False)
class Scope:
    """Everything one subject's evaluation reads and records (slotted: one is built per subject; its `__init__`
    written out, as a dataclass's with default factories costs a third more)."""

    subject: BaseModel | None
    context: BaseModel | None
    params: dict[str, Any]
    stage: StageState | StageInfo | None
    known: dict[str, Any]  # value and rule results (or Missing)
    locals: dict[str, Any]
    paths: dict[str, str]  # comprehension variable -> path of its item
    rank_range: tuple[int, int] | None  # `stage.rank` not known (missing facts): the best and worst it can be
    by_bounds: int  # comparisons decided from the bounds of values not known (see `_Compare`)

    def __init__(
        self,
        subject: BaseModel | None,
        context: BaseModel | None,
        params: dict[str, Any],
        stage: StageState | StageInfo | None = None,
        known: dict[str, Any] | None = None,
    ) -> None:
        self.subject = subject
        self.context = context
        self.params = params
        self.stage = stage
        self.known = {} if known is None else known
        self.locals = {}
        self.paths = {}
        self.rank_range = None
        self.by_bounds = 0


Fn = Callable[[Scope], Any]
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
}


def _exact(value: Any) -> Any:
    """Drop binary floating-point noise: 31.8 + 28.6 + 19.4 is 79.8, as a person computes it."""
    return round(value, PLACES) if isinstance(value, float) else value


def _rounded(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    return lambda a, b: _exact(op(a, b))


_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": _rounded(operator.add),
    "-": _rounded(operator.sub),
    "*": _rounded(operator.mul),
}


class _Refused(ValueError):
    """A value a builtin cannot take; its message is for the policymaker."""


_WHY: tuple[tuple[type[Exception], str], ...] = (
    (_Refused, ""),
    (OverflowError, "a number is too large"),
    (ZeroDivisionError, "division by zero"),
    (TypeError, "its values are not of the types it needs"),
    (AttributeError, "a value has no such field"),
    (ValueError, "a value is out of range"),
)


def _finite(value: Any) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return abs(value) <= MAX_NUMBER  # False for nan, too
    return True


def _guarded(node: Node, fn: Fn, numeric: bool) -> Fn:
    """`fn`, with Python's errors and non-finite numbers turned into an error located at `node`."""

    def run(scope: Scope) -> Any:
        try:
            value = fn(scope)
        except (ArithmeticError, TypeError, ValueError, AttributeError) as error:
            why = next(text or str(error) for kind, text in _WHY if isinstance(error, kind))
            raise EvaluationError(f"{node.span}: cannot evaluate `{render(node)}`: {why}") from None
        if numeric and not _finite(value):
            raise EvaluationError(f"{node.span}: `{render(node)}` does not give a finite number")
        return value

    return run


def _variable(name: str) -> Fn:
    """A comprehension variable; a missing item (`None`) is missing data, named by its path."""

    def get(scope: Scope) -> Any:
        value = scope.locals[name]
        if value is None:
            raise Undetermined(frozenset({scope.paths.get(name, name)}))
        return value

    return get


def _missing(*errors: Undetermined) -> Undetermined:
    return Undetermined(frozenset().union(*(e.missing for e in errors)))


class ExpressionCompiler:
    """Turns nodes into closures; keeps every node's closure for explanations (`fns`)."""

    def __init__(self, ir: PolicyIR) -> None:
        self.ir = ir
        self.fns: dict[int, Fn] = {}
        self.variables: set[str] = set()
        self._ranged: dict[str, bool] = {}

    def compile(self, node: Node) -> Fn:
        fn: Fn = getattr(self, f"_{type(node).__name__}")(node)
        if isinstance(node, _GUARDED) and not (isinstance(node, Unary) and node.op == "not"):
            fn = _guarded(node, fn, numeric=not isinstance(node, (Compare, Attr)))
        self.fns[id(node)] = fn
        return fn

    def _Const(self, node: Const) -> Fn:
        value = node.value
        return lambda scope: value

    def _Name(self, node: Name) -> Fn:
        name = node.name
        if name in self.variables:
            return _variable(name)
        kind = self.ir.kind_of(name)
        if kind == "parameter":
            return lambda scope: scope.params[name]
        if kind in ("value", "rule"):
            return _known(name)
        return _root(name, kind or "fact")

    def _Attr(self, node: Attr) -> Fn:
        obj, attr = self.compile(node.obj), node.attr
        where = self._path_of(node)

        def get(scope: Scope) -> Any:
            value = getattr(obj(scope), attr)
            if value is None:
                raise Undetermined(frozenset({where(scope)}))
            return value

        return get

    def _path_of(self, node: Node) -> Callable[[Scope], str]:
        """How to name the fact path of `node` when it turns out to be missing."""
        names: list[str] = []
        while isinstance(node, Attr):
            names.insert(0, node.attr)
            node = node.obj
        suffix = ".".join(names)
        if isinstance(node, Name) and node.name in self.variables:
            var = node.name
            return lambda scope: f"{scope.paths.get(var, var)}.{suffix}"
        text = render(node) + "." + suffix
        return lambda scope: text

    def _items_path(self, node: Node) -> Callable[[Scope], str]:
        """How to name the list a comprehension walks (`model.components`)."""
        if isinstance(node, Attr):
            return self._path_of(node)
        text = render(node)
        if isinstance(node, Name) and node.name in self.variables:
            return lambda scope: scope.paths.get(text, text)
        return lambda scope: text

    def _Unary(self, node: Unary) -> Fn:
        inner = self.compile(node.operand)
        if node.op == "not":
            return lambda scope: not inner(scope)
        if node.op == "-":
            return lambda scope: -inner(scope)
        return inner

    def _Binary(self, node: Binary) -> Fn:
        left, right = self.compile(node.left), self.compile(node.right)
        if node.op != "/":
            op = _ARITH[node.op]
            return lambda scope: op(left(scope), right(scope))
        text, span = render(node), node.span

        def divide(scope: Scope) -> Any:
            denominator = right(scope)
            if denominator == 0:
                raise EvaluationError(f"{span}: division by zero in `{text}`")
            return _exact(left(scope) / denominator)

        return divide

    def _BoolOp(self, node: BoolOp) -> Fn:
        fns = tuple(self.compile(o) for o in node.operands)
        decisive = node.op == "or"  # the operand value that decides the whole expression

        def kleene(scope: Scope) -> bool:
            pending: list[Undetermined] = []
            for fn in fns:
                try:
                    if bool(fn(scope)) is decisive:
                        return decisive
                except Undetermined as error:
                    pending.append(error)
            if pending:
                raise _missing(*pending)
            return not decisive

        return kleene

    def _Compare(self, node: Compare) -> Fn:
        left, right, op = self.compile(node.left), self.compile(node.right), _COMPARE[node.op]
        if node.op not in ("<", "<=", ">", ">="):  # only an ordering can be settled by bounds
            return lambda scope: op(left(scope), right(scope))

        def compare(scope: Scope) -> Any:
            try:
                return op(left(scope), right(scope))
            except Undetermined as error:
                # an operand is not known: decided anyway if every value it may take (the fact
                # model's bounds) gives the same answer
                if not all(self.ranged(path) for path in error.missing):
                    raise
                decided = decided_by_bounds(Bounder(self.ir, self.value_in(scope)), node)
                if decided is None:
                    raise
                scope.by_bounds += 1
                return decided

        return compare

    def ranged(self, path: str) -> bool:
        """Whether a missing fact is a value the fact model gives a range of (not a whole part, not a list)."""
        found = self._ranged.get(path)
        if found is None:
            steps = path.split(".")
            model = self.ir.schema.subject
            if steps[0] == "context" and self.ir.schema.context_field:
                model, steps = self.ir.schema.cohort, [self.ir.schema.context_field, *steps[1:]]
            found = "[" not in path and fact_range(model, steps) is not None
            self._ranged[path] = found
        return found

    def value_in(self, scope: Scope) -> Callable[[Node], Any]:
        """A node's value in `scope`, or `UNKNOWN` where it depends on missing facts (for `Bounder`)."""

        def value_of(node: Node) -> Any:
            fn = self.fns.get(id(node))
            if fn is None:
                return UNKNOWN
            try:
                return fn(scope)
            except Undetermined:
                return UNKNOWN

        return value_of

    def _IsNone(self, node: IsNone) -> Fn:
        inner, negated = self.compile(node.operand), node.negated

        def is_none(scope: Scope) -> bool:
            try:
                value = inner(scope)
            except Undetermined:
                value = None
            return (value is None) is not negated

        return is_none

    def _ListLit(self, node: ListLit) -> Fn:
        fns = tuple(self.compile(i) for i in node.items)
        return lambda scope: [fn(scope) for fn in fns]

    def _IfExp(self, node: IfExp) -> Fn:
        test, body, orelse = self.compile(node.test), self.compile(node.body), self.compile(node.orelse)
        return lambda scope: body(scope) if test(scope) else orelse(scope)

    def _Call(self, node: Call) -> Fn:
        fns = tuple(self.compile(a) for a in node.args)
        if node.func not in _FUNCTIONS:
            return _lookup(node.func, fns)
        func = _FUNCTIONS[node.func]
        if len(fns) == 1:
            only = fns[0]
            return lambda scope: func(only(scope))
        return lambda scope: func(*(fn(scope) for fn in fns))

    def _Comprehension(self, node: Comprehension) -> Fn:
        iterable = self.compile(node.iterable)
        items_path = self._items_path(node.iterable)
        fresh = node.var not in self.variables
        self.variables.add(node.var)
        body = self.compile(node.body)
        condition = self.compile(node.condition) if node.condition is not None else None
        if fresh:
            self.variables.discard(node.var)
        loop = _Loop(node.var, iterable, items_path, body, condition)
        return _AGGREGATE[node.kind](loop)


@dataclass(frozen=True)
class _Loop:
    """Iterates a comprehension, binding the variable and its path for each item."""

    var: str
    iterable: Fn
    items_path: Callable[[Scope], str]
    body: Fn
    condition: Fn | None

    def results(self, scope: Scope) -> list[Any]:
        """Body result per kept item; an undetermined item yields its `Undetermined`."""
        items, base = self.iterable(scope), self.items_path(scope)
        saved = (scope.locals.get(self.var), scope.paths.get(self.var))
        results: list[Any] = []
        try:
            for index, item in enumerate(items):
                scope.locals[self.var], scope.paths[self.var] = item, f"{base}[{index}]"
                results.append(self._one(scope))
        finally:
            scope.locals[self.var], scope.paths[self.var] = saved  # type: ignore[assignment]
        return results

    def _one(self, scope: Scope) -> Any:
        try:
            if self.condition is not None and not self.condition(scope):
                return _SKIP
            return self.body(scope)
        except Undetermined as error:
            return error


_SKIP = object()


def _decided(results: list[Any]) -> list[Any]:
    pending = [r for r in results if isinstance(r, Undetermined)]
    if pending:
        raise _missing(*pending)
    return [r for r in results if r is not _SKIP]


def _quantifier(decisive: bool) -> Callable[[_Loop], Fn]:
    def build(loop: _Loop) -> Fn:
        def run(scope: Scope) -> bool:
            results = [r for r in loop.results(scope) if r is not _SKIP]
            if any(r is not None and not isinstance(r, Undetermined) and bool(r) is decisive for r in results):
                return decisive
            _decided(results)
            return not decisive

        return run

    return build


def _collect(combine: Callable[[list[Any]], Any]) -> Callable[[_Loop], Fn]:
    return lambda loop: lambda scope: combine(_decided(loop.results(scope)))


def _extreme(pick: Callable[..., Any]) -> Callable[[list[Any]], Any]:
    def choose(values: list[Any]) -> Any:
        if not values:
            raise Undetermined(frozenset({"(no items to take the minimum or maximum of)"}))
        return pick(values)

    return choose


_AGGREGATE: dict[str, Callable[[_Loop], Fn]] = {
    "any": _quantifier(True),
    "all": _quantifier(False),
    "list": _collect(list),
    "count": _collect(lambda values: sum(1 for v in values if v)),
    "sum": _collect(lambda values: _exact(sum(values))),
    "min": _collect(_extreme(min)),
    "max": _collect(_extreme(max)),
}


def _many(pick: Callable[..., Any]) -> Callable[..., Any]:
    one = _extreme(pick)
    return lambda *args: one(list(args[0])) if len(args) == 1 else pick(args)


def _round(value: Any, places: Any = None) -> Any:
    if places is None:
        return round(value)
    if isinstance(places, bool) or not isinstance(places, (int, float)) or places != int(places):
        raise _Refused(f"the number of places must be a whole number, got {places!r}")
    return round(value, int(places))


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "min": _many(min),
    "max": _many(max),
    "sum": lambda values: _exact(sum(values)),
    "abs": abs,
    "round": _round,
}
_GUARDED = (Unary, Binary, Compare, Call, Comprehension, Attr)


def no_row(name: str, keys: tuple[Any, ...]) -> str:
    """What is missing when a table has no row (and no `otherwise`) for `keys`: named in explanations."""
    return f"{name}({', '.join(str(k) for k in keys)}): the table has no row for it and no `otherwise`"


def _lookup(name: str, fns: tuple[Fn, ...]) -> Fn:
    """A table parameter's value for its keys, or a scale's result for an amount (the ones in force)."""

    def get(scope: Scope) -> Any:
        found = scope.params[name]
        if isinstance(found, Scale):
            return _exact(found.apply(fns[0](scope)))
        keys = tuple(fn(scope) for fn in fns)
        present, value, _ = found.lookup(keys)
        if not present:
            raise Undetermined(frozenset({no_row(name, keys)}))
        return value

    return get


def _known(name: str) -> Fn:
    def get(scope: Scope) -> Any:
        value = scope.known[name]
        if isinstance(value, Missing):
            raise Undetermined(value.paths)
        return value

    return get


def _root(name: str, kind: str) -> Fn:
    def get(scope: Scope) -> Any:
        value: Any
        if kind == "context":
            value = scope.context
        elif kind == "stage":
            value = scope.stage
        else:
            value = getattr(scope.subject, name, None) if scope.subject is not None else None
        if value is None:
            raise Undetermined(frozenset({name}))
        return value

    return get


def compile_expression(ir: PolicyIR, node: Node) -> Fn:
    """Compile one checked expression of `ir`."""
    return ExpressionCompiler(ir).compile(node)
