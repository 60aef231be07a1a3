"""The code-generating evaluator (the default backend, `generated`): one Python function per stage and phase.

For each stage and phase (the pool and tracks before the ranking, the outcome rows after it, or
everything at once for a subject decided outside a cohort) the checked expressions of the
definitions that phase settles are written out as the text of one Python function, compiled once
with `compile()` and run with `exec` in a namespace that holds only this module's helpers and the
policy's closures. Nothing else is ever executed: the text is built from checked IR nodes only,
and no name of the package becomes a variable (definitions are read and written under string
keys of `scope.known`, parameters under string keys of `scope.params`, a subject's fields and a
record's fields are attribute names, `_S.lead`, `_f2.kind`, and every variable of the generated
text starts with `_`: locals are numbered, `_1`, `_d2`..., constants are literals or numbered
namespace entries, helpers are `_` names), while the language refuses names that start with `_`:
nothing can collide.

Semantics are the closures' (`engine.evaluation.compiler`, the reference evaluator, backend
`python`), by construction: each definition's generated code is the fast path for the common
case, every fact it reads present and every value ordinary. The subject's fields are read once at
the start (and parameters that item loops use, `_Stop` when none is in force: the loop stops the
fast path there and the closure raises the error), `and`/`or` are Python's short-circuit with
`bool` results, comparisons, arithmetic (rounded to `PLACES`, checked finite; without a call where
that is provably `round`, see the note above `_SCALE`), calls and comprehensions are inline. Within
one definition each fact path is read once where it is known read: an `x.a.b is None` test keeps
the value of each step (None once a step is), a later read of `x.a.b` uses it, and where such a
test has shown a path present (`x.a is not None and x.a.b ...`, a comprehension's condition, a
conditional's branch) it is not checked again. The moment anything is not ordinary (a missing
fact, an undetermined definition, an ordering that the bounds of a missing fact might decide, a
Python error that becomes a located `EvaluationError`, a number that is not finite) the fast path
stops and that one definition is settled by its closure, which gives the three-valued answer, the
missing paths, the bounds-decided comparison (`Scope.by_bounds`) or the located error exactly as
the reference does. `x is None` over a fact path is decided inline without stopping. A temporary
that only the next line tests is tested in place (`_tested_in_place`: `if _9 is None: ...`).

`stage_programs(policy, stage_id)` gives a stage's two functions, each with its text
(`Program.source`, which `policy compile` prints).
"""

from __future__ import annotations

import keyword
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.evaluation.compiled import CompiledPolicy, CompiledStage, definition_of, settle
from engine.evaluation.compiler import _FUNCTIONS, Missing, Scope, _extreme, _finite, no_row
from engine.evaluation.uncertain import PLACES
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
from engine.language.ir import OutcomeRow, Scale

__all__ = ["GeneratedBackend", "Program", "generate", "stage_programs", "PHASES"]

PHASES = ("pool", "rows")  # before the ranking (pool, tracks), after it (outcome rows)


class _Stop(Exception):
    """The fast path met something not ordinary: the definition is settled by its closure instead."""


def _number(value: Any) -> Any:
    """An arithmetic result as the closures give it: floats rounded to PLACES, never a number that is not finite."""
    if isinstance(value, float):
        value = round(value, PLACES)
    if not _finite(value):
        raise _Stop
    return value


def _checked(value: Any) -> Any:
    """A call's or sign's result: never a number that is not finite."""
    if not _finite(value):
        raise _Stop
    return value


def _lookup(found: Any, keys: tuple[Any, ...]) -> Any:
    """A table's value for `keys`, or a scale's result for an amount (as `compiler._lookup`)."""
    if isinstance(found, Scale):
        return _number(found.apply(keys[0]))
    present, value, _ = found.lookup(keys)
    if not present:
        raise _Stop(no_row("", keys))
    return value


def _ranked(values: tuple[Any, ...]) -> tuple[Any, ...] | Missing:
    """Ranking keys as `evaluate._keys` gives them: the values, or what the missing ones need together."""
    gaps = [v for v in values if isinstance(v, Missing)]
    return Missing(frozenset().union(*(g.paths for g in gaps))) if gaps else values


def _least_or_most(pick: Callable[..., Any]) -> Callable[[list[Any]], Any]:
    one = _extreme(pick)

    def choose(values: list[Any]) -> Any:
        if not values:
            raise _Stop
        return one(values)

    return choose


# Rounding to PLACES as `round(x, PLACES)` does it, several times faster where provably identical. `round`
# rounds the exact binary value of x half-to-even at PLACES decimals, giving an integer N of units of
# 10**-PLACES, and returns the float nearest to N / 10**PLACES. With y = x * SCALE (SCALE = 10**PLACES,
# exact as a float) and |y| < BOUND = 2**44, y is within ulp(y)/2 <= 2**-10 of the exact product. n =
# (y + MAGIC) - MAGIC, MAGIC = 1.5 * 2**52, is an integer nearest to y, computed in floats (y + MAGIC lies
# in [2**52, 2**53), where floats are the integers, and the subtraction is exact) without a call or an
# int; e = y - n is exact (Sterbenz, for n != 0). When y is further than TIE from a half-integer (1/2 -
# TIE = 2**-6 > 2**-10), rint(exact) = n; n and SCALE are exact floats and IEEE division is correctly
# rounded, so n / SCALE is the float nearest N / 10**PLACES: round's answer. n == 0 (the sign of a
# zero), |y| >= BOUND, a tie or near-tie, nan and infinity go to `round` itself.
_SCALE = float(10**PLACES)
assert _SCALE == 10**PLACES < 2**53
_BOUND = float(2**44)
_TIE = 0.5 - 2**-6
_MAGIC = 1.5 * 2**52

# The only names a generated function sees, besides the policy's own closures (`_D`, `_P1`...).
_HELPERS: dict[str, Any] = {
    "_Stop": _Stop,
    "_M": Missing,
    "_settle": settle,
    "_number": _number,
    "_checked": _checked,
    "_lookup": _lookup,
    "_ranked": _ranked,
    "_round": round,
    "_getattr": getattr,
    "_sum": sum,
    **{f"_fn_{name}": fn for name, fn in _FUNCTIONS.items()},  # every builtin of the language, as the closures call it
    "_least": _least_or_most(min),
    "_most": _least_or_most(max),
    "_HI": MAX_NUMBER,
    "_LO": -MAX_NUMBER,
    "_PLACES": PLACES,
    "_Exception": Exception,
    "_float": float,
    "_int": int,
    "_SCALE": _SCALE,
    "_BOUND": _BOUND,
    "_TIE": _TIE,
    "_MAGIC": _MAGIC,
    "__builtins__": {},  # no builtins: a generated function sees nothing but these names
}
_CALLS = {name: f"_fn_{name}" for name in _FUNCTIONS}  # a call of any other name is a table or scale parameter
_ORDER_OPS = ("<", "<=", ">", ">=")
_PLAIN = (bool, int, float, str, type(None))


def _comment(text: str) -> str:
    """Text safe inside a `#` comment: one line, nothing unprintable."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}" for c in text)


@dataclass
class Program:
    """One generated function: its source text and the compiled function."""

    stage: str
    phase: str
    names: tuple[str, ...]
    source: str
    run: Callable[[Scope], dict[str, Any]] = field(repr=False)


_ASSIGNED = re.compile(r"(\s*)(_\d+) = (.+)")
_TESTED = re.compile(r"(\s*)if (not )?(_\d+): (.+)")
_TEMPORARY = re.compile(r"\b_\d+\b")


def _tested_in_place(lines: list[str], start: int) -> None:
    """In one definition's lines (from `start`): a temporary assigned and then only tested by the next line
    (`_8 = _9 is not None` then `if not _8: ...`) is tested in place (`if _9 is None: ...`), saving a store and
    a load (a stage-1 subject has about twenty). Temporaries are numbered afresh in each definition's block."""
    uses = Counter(_TEMPORARY.findall("\n".join(lines[start:])))
    index = start
    while index < len(lines) - 1:
        assigned = _ASSIGNED.fullmatch(lines[index])
        tested = _TESTED.fullmatch(lines[index + 1]) if assigned else None
        if assigned and tested and tested[1] == assigned[1] and tested[3] == assigned[2] and uses[assigned[2]] == 2:
            indent, expression = assigned[1], assigned[3]
            if " if " not in expression:  # not a conditional expression (kept apart: easier to read)
                lines[index : index + 2] = [
                    f"{indent}if {_negated(expression) if tested[2] else expression}: {tested[4]}"
                ]
                continue
        index += 1


def _negated(expression: str) -> str:
    if expression.endswith(" is not None") and " " not in expression[: -len(" is not None")]:
        return expression[: -len(" is not None")] + " is None"
    if expression.endswith(" is None") and " " not in expression[: -len(" is None")]:
        return expression[: -len(" is None")] + " is not None"
    return f"not ({expression})"


class _Writer:
    """Writes the body of one function from checked nodes."""

    def __init__(self, policy: CompiledPolicy) -> None:
        self.policy = policy
        self.ir = policy.ir
        self.lines: list[str] = []
        self.depth = 1
        self.count = 0  # temporaries: numbered afresh in each block (they die with it)
        self.kept = 0  # names that live through the function: definitions, hoisted facts, constants
        self.stops: list[str] = ["break"]  # how the innermost loop leaves the fast path (`settle` sets the outermost)
        self.target = ""  # the local of the definition being written
        self.lenient = 0  # > 0: inside what the closures decide despite missing data (and/or, bounds, is None)
        self.gaps: dict[str, str] = {}  # missing path -> the constant `Missing` naming it
        # what this point of the block has already read: `_f2` (checked, present), `_f2.kind` (-> its local, present),
        # `K:name`, `P:name`; `R:_v4.weights.upstream` (a fact path read once, its local maybe None) and `C:_7` (the
        # path a local holds); a branch starts from a copy and its own reads are dropped after it
        self.seen: dict[str, str] = {}
        self.bools: set[str] = set()  # locals of this definition that hold a bool: no `True if x else False`
        # a bool local and its value -> the fact path locals known present then: `_6 = _7 is not None` gives
        # (_6, True) -> [_7]; `not`, `and` (all true) and `or` (all false) pass them on
        self.tests: dict[tuple[str, bool], list[str]] = {}
        self.namespace: dict[str, Any] = dict(_HELPERS)
        self.facts: dict[str, str] = {}  # subject field -> hoisted local
        self.params: dict[str, str] = {}  # parameter read in an item loop -> hoisted local (`_Stop` if none in force)
        self.defined: dict[str, str] = {}  # value or rule settled in this function -> its local
        self.variables: list[tuple[str, str]] = []  # comprehension variable -> local, innermost last
        self.uses_context = self.uses_stage = False

    def fresh(self, prefix: str = "_") -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def unique(self, prefix: str) -> str:
        self.kept += 1
        return f"{prefix}{self.kept}"

    def stop(self) -> str:
        """The statement that leaves the fast path (a `break` out of the block's loop, through any item loop)."""
        return self.stops[-1]

    def missing(self, gap: str) -> str:
        """What missing data does here: where nothing could still decide the definition anyway (no and/or,
        bounds or `is None` around it, no item loop), the closures would raise at this very read, so the
        definition is `gap` (a `Missing`) at once; elsewhere the closure settles it."""
        if self.lenient or len(self.stops) > 1:
            return self.stop()
        return f"{self.target} = {gap}; break"

    def gap(self, path: str) -> str:
        """The namespace constant `Missing({path})` (immutable, shared by every subject)."""
        if path not in self.gaps:
            self.gaps[path] = self.unique("_g")
            self.namespace[self.gaps[path]] = Missing(frozenset({path}))
        return self.gaps[path]

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def constant(self, value: Any) -> str:
        if type(value) in _PLAIN and _finite(value):
            return repr(value)
        name = self.unique("_k")
        self.namespace[name] = value
        return name

    # -- expressions: each emits statements and returns the text of a local or a literal --

    def expr(self, node: Node) -> str:
        return getattr(self, f"_{type(node).__name__}")(node)  # type: ignore[no-any-return]

    def _Const(self, node: Const) -> str:
        return self.constant(node.value)

    def _variable(self, name: str) -> str | None:
        for var, local in reversed(self.variables):
            if var == name:
                return local
        return None

    def _raw(self, node: Name) -> str:
        """A name's value as read, before the check for missing data (a definition may be `Missing`)."""
        name = node.name
        local = self._variable(name)
        if local is not None:
            return local
        kind = self.ir.kind_of(name)
        target = self.fresh()
        if kind == "parameter" and len(self.stops) > 1:  # in an item loop: read once per run, checked here
            if f"P:{name}" in self.seen:
                return self.seen[f"P:{name}"]
            if name not in self.params:
                self.params[name] = self.unique("_p")
            local = self.params[name]
            self.emit(f"if {local} is _Stop: {self.stop()}")  # not in force: the closure raises its error
            self.seen[f"P:{name}"] = local
            return local
        elif kind == "parameter":
            self.emit(f"{target} = _P[{name!r}]")
        elif kind in ("value", "rule"):
            return self.defined.get(name) or self._known(name, target)
        elif kind == "context":
            self.uses_context = True
            return "_X"
        elif kind == "stage":
            self.uses_stage = True
            return "_T"
        elif name in self.ir.schema.subject.model_fields:
            if name not in self.facts:
                self.facts[name] = self.unique("_f")
            return self.facts[name]
        else:  # a computed field (read when used, as the closures do), or a name the model lacks
            self.emit(f"{target} = _getattr(_S, {name!r}, None)")
        return target

    def _known(self, name: str, target: str) -> str:
        if f"K:{name}" in self.seen:
            return self.seen[f"K:{name}"]
        self.emit(f"{target} = _K[{name!r}]")
        self.seen[f"K:{name}"] = target
        return target

    def _Name(self, node: Name) -> str:
        value = self._raw(node)
        kind = None if self._variable(node.name) is not None else self.ir.kind_of(node.name)
        if kind == "parameter" or value in self.seen:
            return value
        self.seen[value] = value
        if kind in ("value", "rule"):
            self.emit(f"if {value}.__class__ is _M: {self.missing(value)}")
        elif kind is None:  # a comprehension variable
            self.emit(f"if {value} is None: {self.stop()}")
        elif kind != "parameter":
            path = node.name if kind not in ("context", "stage") else kind
            self.emit(f"if {value} is None: {self.missing(self.gap(path))}")
        return value

    def _get(self, obj: str, attr: str) -> str:
        if attr.isidentifier() and not keyword.iskeyword(attr):
            return f"{obj}.{attr}"
        return f"_getattr({obj}, {attr!r})"

    def _rooted(self, local: str) -> str | None:
        """The fact path a local holds, as `R:` keys name it: a comprehension variable, a hoisted fact, the
        context or stage is its own root; an attribute read from one of those has its `C:` entry."""
        if local in self.facts.values() or local in ("_X", "_T") or any(v == local for _, v in self.variables):
            return local
        return self.seen.get(f"C:{local}")

    def _read(self, obj: str, attr: str, present: bool) -> str:
        """The local holding `obj.attr` (None when `obj` is, unless `present`): read once per path and point of the
        block, whether an `is None` test or a read that needs the value asked for it first."""
        chain = self._rooted(obj)
        chain = f"{chain}.{attr}" if chain is not None else None
        if chain is not None and f"R:{chain}" in self.seen:
            return self.seen[f"R:{chain}"]
        target = self.fresh()
        if present:
            self.emit(f"{target} = {self._get(obj, attr)}")
        else:
            self.emit(f"{target} = None if {obj} is None else {self._get(obj, attr)}")
        if chain is not None:
            self.seen[f"R:{chain}"] = target
            self.seen[f"C:{target}"] = chain
            self.seen[f"U:{target}"], self.seen[f"A:{target}"] = obj, attr
        return target

    def _present(self, local: str) -> None:
        """`local` (a fact path read once) is known not None here: so is each step of its path, as if read present."""
        while f"U:{local}" in self.seen:
            parent, attr = self.seen[f"U:{local}"], self.seen[f"A:{local}"]
            self.seen[f"{parent}.{attr}"] = local
            local = parent
        if self._rooted(local) == local:
            self.seen[local] = local  # the root itself, as `_Name` records a checked one

    def guard(self, test: str, holds: bool) -> None:
        """What is known where the local `test` is true (`holds`) or false: `x is not None` true makes x present."""
        for local in self.tests.get((test, holds), ()):
            self._present(local)

    def _Attr(self, node: Attr) -> str:
        obj = self.expr(node.obj)
        if f"{obj}.{node.attr}" in self.seen:  # read and found present before, on this path
            return self.seen[f"{obj}.{node.attr}"]
        target = self._read(obj, node.attr, present=True)
        self.seen[f"{obj}.{node.attr}"] = target
        path = self._path(node)
        if path is not None and self._variable(path[0].name) is not None:
            self.emit(f"if {target} is None: {self.stop()}")
        else:  # named as `compiler.ExpressionCompiler._path_of` names it
            root: Node = node
            attrs: list[str] = []
            while isinstance(root, Attr):
                attrs.insert(0, root.attr)
                root = root.obj
            self.emit(f"if {target} is None: {self.missing(self.gap(render(root) + '.' + '.'.join(attrs)))}")
        return target

    def _sign(self, target: str) -> None:
        """The finiteness check of a guarded numeric result (`compiler._guarded`)."""
        self.emit(f"if {target}.__class__ is _float or {target}.__class__ is _int:")
        self.emit(f"    if not _LO <= {target} <= _HI: {self.stop()}")
        self.emit(f"else: {target} = _checked({target})")

    def _arith(self, target: str) -> None:
        """Rounding and finiteness of an arithmetic result (`compiler._exact` and `_guarded`): `round(x, PLACES)`
        computed as `rint(x * 10**PLACES) / 10**PLACES` where that is provably the same float (see above `_SCALE`)."""
        y, n, e = self.fresh(), self.fresh(), self.fresh()
        self.emit(f"if {target}.__class__ is _float:")
        self.emit(f"    {y} = {target} * _SCALE")
        self.emit(f"    {n} = ({y} + _MAGIC) - _MAGIC")
        self.emit(f"    {e} = {y} - {n}")
        t, b = repr(_TIE), repr(_BOUND)  # literals, compared one by one: cheaper than names in a chain
        self.emit(f"    if {n} and {e} < {t} and {e} > -{t} and {y} < {b} and {y} > -{b}: {target} = {n} / _SCALE")
        self.emit("    else:")
        self.emit(f"        {target} = _round({target}, _PLACES)")
        self.emit(f"        if not _LO <= {target} <= _HI: {self.stop()}")
        self.emit(f"else: {target} = _number({target})")

    def _Unary(self, node: Unary) -> str:
        inner = self.expr(node.operand)
        target = self.fresh()
        if node.op == "not":
            self.emit(f"{target} = not {inner}")
            self.bools.add(target)
            for holds in (True, False):
                if (inner, not holds) in self.tests:
                    self.tests[(target, holds)] = self.tests[(inner, not holds)]
            return target
        self.emit(f"{target} = -{inner}" if node.op == "-" else f"{target} = {inner}")
        self._sign(target)
        return target

    def _Binary(self, node: Binary) -> str:
        if node.op == "/":  # the closures compute the denominator first
            right = self.expr(node.right)
            self.emit(f"if {right} == 0: {self.stop()}")
            left = self.expr(node.left)
        else:
            left = self.expr(node.left)
            right = self.expr(node.right)
        target = self.fresh()
        self.emit(f"{target} = {left} {node.op} {right}")
        self._arith(target)
        return target

    def _BoolOp(self, node: BoolOp) -> str:
        target = self.fresh()
        decisive = node.op == "or"
        opened = 0
        self.lenient += 1
        outer: dict[str, str] = {}
        implied: list[str] = []  # known present when the result is the one no operand decided (and: true, or: false)
        for position, operand in enumerate(node.operands):
            value = self.expr(operand)
            implied += self.tests.get((value, not decisive), [])
            if position == 0:
                outer = dict(self.seen)  # the first operand always runs; the others may not
            self.guard(value, holds=not decisive)  # the next operands run only when this one is not decisive
            if position == len(node.operands) - 1:
                self.emit(f"{target} = {value}" if value in self.bools else f"{target} = True if {value} else False")
                break
            self.emit(f"if {'' if decisive else 'not '}{value}: {target} = {decisive}")
            self.emit("else:")
            self.depth += 1
            opened += 1
        self.depth -= opened
        self.lenient -= 1
        self.seen = outer
        self.bools.add(target)
        if implied:
            self.tests[(target, not decisive)] = implied
        return target

    def _Compare(self, node: Compare) -> str:
        ordering = node.op in _ORDER_OPS  # the bounds of a missing operand may decide it
        self.lenient += ordering
        left = self.expr(node.left)
        right = self._listed(node.right) if node.op in ("in", "not in") else self.expr(node.right)
        self.lenient -= ordering
        target = self.fresh()
        self.emit(f"{target} = {left} {node.op} {right}")
        self.bools.add(target)  # the language's values (numbers, text, dates, lists, records) compare to a bool
        return target

    def _listed(self, node: Node) -> str:
        """The right side of `in`: a list of literals is one constant tuple (same membership)."""
        if isinstance(node, ListLit) and all(isinstance(i, Const) and type(i.value) in _PLAIN for i in node.items):
            name = self.unique("_k")
            self.namespace[name] = tuple(i.value for i in node.items)  # type: ignore[union-attr]
            return name
        return self.expr(node)

    def _path(self, node: Node) -> tuple[Name, list[str]] | None:
        attrs: list[str] = []
        while isinstance(node, Attr):
            attrs.insert(0, node.attr)
            node = node.obj
        return (node, attrs) if isinstance(node, Name) else None

    def _IsNone(self, node: IsNone) -> str:
        target = self.fresh()
        path = self._path(node.operand)
        test = "is not None" if node.negated else "is None"
        if path is None:  # not a fact path: missing data stops the fast path
            self.lenient += 1
            inner = self.expr(node.operand)
            self.lenient -= 1
            self.emit(f"{target} = {inner} {test}")
            self.bools.add(target)
            return target
        root, attrs = path
        value = self._raw(root)
        self.bools.add(target)
        if self._rooted(value) == value:  # each step read once, shared with the reads that need it present
            present = value in self.seen
            for attr in attrs:
                known = self.seen.get(f"{value}.{attr}") if present else None
                value = known or self._read(value, attr, present)
                present = known is not None
            self.emit(f"{target} = {value} {test}")
            self.tests[(target, node.negated)] = [value]
            return target
        self.emit(f"{target} = {value}")
        if self._variable(root.name) is None and self.ir.kind_of(root.name) in ("value", "rule"):
            self.emit(f"if {target}.__class__ is _M: {target} = None")
        for attr in attrs:
            self.emit(f"if {target} is not None: {target} = {self._get(target, attr)}")
        self.emit(f"{target} = {target} {test}")
        return target

    def _ListLit(self, node: ListLit) -> str:
        items = [self.expr(i) for i in node.items]
        target = self.fresh()
        self.emit(f"{target} = [{', '.join(items)}]")
        return target

    def _IfExp(self, node: IfExp) -> str:
        test = self.expr(node.test)
        target = self.fresh()
        outer = dict(self.seen)
        self.emit(f"if {test}:")
        self.depth += 1
        self.guard(test, holds=True)
        self.emit(f"{target} = {self.expr(node.body)}")
        self.depth -= 1
        self.seen = dict(outer)
        self.emit("else:")
        self.depth += 1
        self.guard(test, holds=False)
        self.emit(f"{target} = {self.expr(node.orelse)}")
        self.depth -= 1
        self.seen = outer
        return target

    def _Call(self, node: Call) -> str:
        lookup = node.func not in _CALLS  # a table or scale: the closure reads the parameter first
        self.lenient += lookup
        args = [self.expr(a) for a in node.args]
        self.lenient -= lookup
        target = self.fresh()
        if node.func in _CALLS:
            self.emit(f"{target} = {_CALLS[node.func]}({', '.join(args)})")
        else:  # a table or scale parameter
            keys = f"({', '.join(args)},)" if args else "()"
            self.emit(f"{target} = _lookup(_P[{node.func!r}], {keys})")
        if node.func != "len":  # a length is a whole number far below the largest one
            self._sign(target)
        return target

    def _Comprehension(self, node: Comprehension) -> str:
        items = self.expr(node.iterable)
        target, var = self.fresh(), self.fresh("_v")
        kind = node.kind
        start = {"any": "False", "all": "True", "count": "0"}.get(kind, "[]")
        stopped = self.fresh("_s")
        self.emit(f"{target}, {stopped} = {start}, False")
        self.emit(f"for {var} in {items}:")
        outer = dict(self.seen)
        self.depth += 1
        self.variables.append((node.var, var))
        self.stops.append(f"{stopped} = True; break")
        if node.condition is not None:
            condition = self.expr(node.condition)
            self.emit(f"if not {condition}: continue")
            self.guard(condition, holds=True)
        body = self.expr(node.body)
        self.variables.pop()
        self.stops.pop()
        if kind in ("any", "all"):
            self.bools.add(target)
        if kind == "any":
            self.emit(f"if {body}: {target} = True")
        elif kind == "all":
            self.emit(f"if {body} is not None and not {body}: {target} = False")
        elif kind == "count":
            self.emit(f"if {body}: {target} += 1")
        else:
            self.emit(f"{target}.append({body})")
        self.depth -= 1
        self.seen = outer
        self.emit(f"if {stopped}: {self.stop()}")
        if kind == "sum":
            self.emit(f"{target} = _sum({target})")
            self._arith(target)
        elif kind in ("min", "max"):
            self.emit(f"{target} = {'_least' if kind == 'min' else '_most'}({target})")
            self._sign(target)
        return target  # a count is a whole number far below the largest one

    # -- one definition, pool, track or row: the fast path, with its closure as the way out --

    def settle(self, label: str, node: Node, target: str, closure: str) -> None:
        self.emit(f"# {_comment(label)}: {_comment(render(node))}")
        if isinstance(node, Name) and node.name in self.defined:  # a definition settled above, Missing or not
            self.emit(f"{target} = {self.defined[node.name]}")
            return
        if isinstance(node, Const) and type(node.value) in _PLAIN and _finite(node.value):  # `when: true`
            self.emit(f"{target} = {node.value!r}")
            return
        self.count, self.target, self.seen, self.bools, self.tests = 0, target, {}, set(), {}
        self.stops = [f"{target} = _Stop; break"]  # every way out assigns the target: none made beforehand
        start = len(self.lines)
        self.emit("try:")
        self.emit(f"    while True:  # one pass; `{target} = _Stop; break` leaves the fast path")
        self.depth += 2
        self.emit(f"{target} = {self.expr(node)}")
        self.emit("break")
        self.depth -= 2
        self.emit("except _Exception:  # settled by the closure below, outside the handler: no chained traceback")
        self.emit(f"    {target} = _Stop")
        self.emit(f"if {target} is _Stop: {target} = _settle({closure}, _scope)")
        _tested_in_place(self.lines, start)

    def preamble(self) -> list[str]:
        """The function's first lines: the scope's parts, the subject's fields it reads (directly; should one be
        absent, all of them again as `getattr(subject, name, None)`) and the parameters its item loops read."""
        lines = ["_K = _scope.known", "_P = _scope.params", "_S = _scope.subject"]
        if self.facts:
            lines.append("try:")
            lines += [f"    {local} = {self._get('_S', name)}" for name, local in self.facts.items()]
            lines.append("except _Exception:  # a subject without one of them: each read as None where absent")
            lines += [f"    {local} = _getattr(_S, {name!r}, None)" for name, local in self.facts.items()]
        lines += [f"{local} = _P.get({name!r}, _Stop)" for name, local in self.params.items()]
        lines += ["_X = _scope.context"] if self.uses_context else []
        lines += ["_T = _scope.stage"] if self.uses_stage else []
        return ["    " + line for line in lines]


def generate(policy: CompiledPolicy, stage: CompiledStage | None, names: Sequence[str], phase: str) -> Program:
    """The generated function that settles `names` and then the stage's pool and tracks (`pool`), or its
    outcome rows (`rows`, `subject`), for one subject's `scope`."""
    writer = _Writer(policy)
    writer.namespace["_D"] = policy.defs
    for name in names:
        local = writer.unique("_d")
        kind = "value" if name in policy.ir.values else "rule"
        writer.settle(f"{kind} {name!r}", definition_of(policy.ir, name), local, f"_D[{name!r}]")
        writer.emit(f"_K[{name!r}] = {local}")
        writer.defined[name] = local
    answers: list[tuple[str, str]] = []
    if stage is not None and phase == "pool":
        writer.namespace["_POOL"] = stage.pool
        writer.settle("pool", stage.stage.pool, "_pool", "_POOL")
        answers.append(("pool", "_pool"))
        for index, (track, when, _) in enumerate(stage.tracks):
            writer.namespace[f"_TRACK{index}"] = when
            local = writer.unique("_t")
            writer.settle(f"track {track.id!r}", track.when, local, f"_TRACK{index}")
            answers.append((f"track:{track.id}", local))
        if stage.keys:  # the ranking keys, as `evaluate._keys` settles them, for a subject the pool may hold
            writer.emit("_keys = None")
            writer.emit("if _pool is not False:")
            writer.depth += 1
            locals_ = []
            for index, (key, fn) in enumerate(zip(stage.stage.rank_by, stage.keys, strict=True)):
                writer.namespace[f"_KEY{index}"] = fn
                local = writer.unique("_y")
                writer.settle(f"ranking key {index + 1}", key.expr, local, f"_KEY{index}")
                locals_.append(local)
            keys = f"({', '.join(locals_)},)"
            writer.emit(f"if {' or '.join(f'{k}.__class__ is _M' for k in locals_)}: _keys = _ranked({keys})")
            writer.emit(f"else: _keys = {keys}")
            writer.depth -= 1
            answers.append(("keys", "_keys"))
    elif stage is not None:
        for index, (row, fn) in enumerate(stage.rows):
            writer.namespace[f"_ROW{index}"] = fn
            local = writer.unique("_r")
            writer.settle(f"row {row.index} ({row.outcome})", row.when, local, f"_ROW{index}")
            answers.append((f"row:{row.index}", local))
    body = writer.lines
    preamble = writer.preamble()
    result = ", ".join(f"{key!r}: {local}" for key, local in answers)
    title = f"stage {stage.stage.id!r}" if stage is not None else "no stage"
    source = "\n".join(
        [
            f"# generated from the checked expressions of {_comment(repr(policy.ir.name))}: {_comment(title)}, "
            f"phase {phase!r}",
            "def _run(_scope):",
            *preamble,
            *body,
            f"    return {{{result}}}",
            "",
        ]
    )
    namespace = dict(writer.namespace)
    code = compile(source, f"<generated {policy.ir.name}:{stage.stage.id if stage else '-'}:{phase}>", "exec")
    exec(code, namespace)  # noqa: S102 - only the text written above, from checked nodes, in a namespace of helpers
    return Program(
        stage=stage.stage.id if stage is not None else "",
        phase=phase,
        names=tuple(names),
        source=source,
        run=namespace["_run"],
    )


def generate_quantities(policy: CompiledPolicy, row: OutcomeRow) -> Callable[[Scope], tuple[Any, ...]]:
    """The function that computes the quantities of an outcome row's grants (None where a grant has none)."""
    writer = _Writer(policy)
    results = []
    for index, grant in enumerate(row.grants):
        if grant.quantity is None:
            results.append("None")
            continue
        writer.namespace[f"_Q{index}"] = policy.fn(grant.quantity)
        local = writer.unique("_q")
        writer.settle(f"grant {grant.id!r}", grant.quantity, local, f"_Q{index}")
        results.append(local)
    source = "\n".join(
        [
            "def _run(_scope):",
            *writer.preamble(),
            *writer.lines,
            f"    return ({', '.join(results)},)",
            "",
        ]
    )
    namespace = dict(writer.namespace)
    exec(compile(source, f"<generated {policy.ir.name}:grants of row {row.index}>", "exec"), namespace)  # noqa: S102
    return namespace["_run"]  # type: ignore[no-any-return]


class GeneratedBackend:
    """The default evaluator: one generated, compiled Python function per stage and phase (see the module doc)."""

    name = "generated"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runners: dict[bool, tuple[Any, ...]] = {}  # the last `runner` of each phase, and for what

    def program(self, policy: CompiledPolicy, stage: CompiledStage | None, names: Sequence[str], phase: str) -> Program:
        """The function for this stage, phase and names: generated on first use, then kept with the policy."""
        key = (stage.stage.id if stage is not None else None, phase, tuple(names))
        programs = policy.programs
        found = programs.get(key)
        if found is None:
            with self._lock:
                found = programs.get(key)
                if found is None:
                    found = programs[key] = generate(policy, stage, names, phase)
        return found

    def quantities(self, policy: CompiledPolicy, row: OutcomeRow, scope: Scope) -> tuple[Any, ...]:
        """The quantities of the deciding row's grants, by a generated function (one per row, made on first use)."""
        key = ("grants", id(row))
        found = policy.programs.get(key)
        if found is None or found[0] is not row:
            found = policy.programs[key] = (row, generate_quantities(policy, row))
        return found[1](scope)  # type: ignore[no-any-return]

    def runner(
        self, policy: CompiledPolicy, names: Sequence[str], stage: CompiledStage | None, rows: bool
    ) -> Callable[[Scope], dict[str, Any]]:
        """`run` for these names and this stage, as the generated function of one scope (a cohort's loop)."""
        last = self._runners.get(rows)  # a cohort runs the same two functions: found by identity, no key hashed
        if last is not None and last[0] is names and last[1] is stage and last[2] is policy:
            return last[3]  # type: ignore[no-any-return]
        run = self.program(policy, stage, names, "rows" if rows else "pool").run
        self._runners[rows] = (names, stage, policy, run)
        return run

    def run(
        self, policy: CompiledPolicy, scope: Scope, names: Sequence[str], stage: CompiledStage | None, rows: bool
    ) -> dict[str, Any]:
        return self.runner(policy, names, stage, rows)(scope)


def stage_programs(policy: CompiledPolicy, stage_id: str) -> tuple[Program, Program]:
    """The two functions a cohort evaluation of `stage_id` runs per subject: before the ranking, after it."""
    stage = policy.stages[stage_id]
    backend = GeneratedBackend()
    return (
        backend.program(policy, stage, stage.phase1, "pool"),
        backend.program(policy, stage, stage.phase2, "rows"),
    )
