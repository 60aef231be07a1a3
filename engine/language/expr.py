"""The expression language: a small, safe, Python-like syntax parsed with `ast` into our own nodes.

Allowed: literals (numbers, text, `True`/`False`/`None`, lists), names and attribute paths,
arithmetic (`+ - * /`), comparisons (`== != < <= > >= in not in`, `is None`, `is not None`),
`and`/`or`/`not`, `x if c else y`, the functions `len min max sum abs round count any all`,
generator forms `any(p for c in xs if q)` / `all(...)` / `sum(...)` / `count(...)` / `min(...)` /
`max(...)`, list comprehensions `[c for c in xs if p]`, and table and scale parameters called
with their keys (`minimum_by_lead_kind(lead.kind)`). Nothing else parses: no calls into
Python, no subscripts, no lambdas, no dunder names. Every node carries a span that never takes
part in equality. Numbers are finite (a literal beyond `MAX_NUMBER` is refused), and an
expression nests at most `MAX_EXPRESSION_DEPTH` levels, so no later pass (typing, compiling,
evaluating, explaining) recurses anywhere near Python's recursion limit.
"""

from __future__ import annotations

import ast
import functools
import io
import math
import re
import sys
import tokenize
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.core.diagnostics import Diagnostic, Span

__all__ = [
    "Node",
    "Const",
    "Name",
    "Attr",
    "Unary",
    "Binary",
    "BoolOp",
    "Compare",
    "IsNone",
    "ListLit",
    "Call",
    "Comprehension",
    "IfExp",
    "ParseError",
    "parse_expression",
    "FUNCTIONS",
    "AGGREGATES",
    "MAX_EXPRESSION_DEPTH",
    "MAX_NUMBER",
    "depth",
    "walk",
    "children",
    "render",
]

Locator = Callable[[int, int], Span]
MAX_EXPRESSION_DEPTH = 100  # levels of nesting in one expression, and in a definition with what it uses written out
MAX_NUMBER = sys.float_info.max  # the largest number a literal or a computed result may reach
FUNCTIONS = frozenset({"len", "min", "max", "sum", "abs", "round", "count", "any", "all"})
AGGREGATES = frozenset({"any", "all", "sum", "count", "min", "max"})
_BINOPS: dict[type[ast.operator], str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_CMPOPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}


@dataclass(frozen=True)
class _Base:
    """What every node has: where it is written (never part of equality)."""

    span: Span = field(compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class Const(_Base):
    """A literal: a number, text, `True`, `False` or `None` (a boolean field of a file is one too)."""

    value: Any = None


@dataclass(frozen=True)
class Name(_Base):
    """A bare name: a fact, parameter, value, rule, `stage`, `context` or a comprehension's variable."""

    name: str = ""


@dataclass(frozen=True)
class Attr(_Base):
    """`obj.attr`: a field of a fact, of `stage` or of `context`."""

    obj: Node = None  # type: ignore[assignment]
    attr: str = ""
    attr_span: Span | None = field(default=None, compare=False, hash=False, repr=False)  # where the name after `.` is


@dataclass(frozen=True)
class Unary(_Base):
    """`not x`, `-x` or `+x`."""

    op: str = "not"  # "not", "-", "+"
    operand: Node = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Binary(_Base):
    """Arithmetic: `left op right` with `+`, `-`, `*` or `/`."""

    op: str = "+"
    left: Node = None  # type: ignore[assignment]
    right: Node = None  # type: ignore[assignment]


@dataclass(frozen=True)
class BoolOp(_Base):
    """`a and b and ...` or `a or b or ...` (three-valued)."""

    op: str = "and"
    operands: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Compare(_Base):
    """One comparison `left op right` (a chain `a < b < c` is lowered to several joined by `and`)."""

    op: str = "=="
    left: Node = None  # type: ignore[assignment]
    right: Node = None  # type: ignore[assignment]


@dataclass(frozen=True)
class IsNone(_Base):
    """`x is None` (or, `negated`, `x is not None`): whether a fact is missing."""

    operand: Node = None  # type: ignore[assignment]
    negated: bool = False


@dataclass(frozen=True)
class ListLit(_Base):
    """A list written out: `[a, b, c]`."""

    items: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Call(_Base):
    """A builtin function (`len`, `min`, `max`, `round`...) or a table or scale parameter, called."""

    func: str = ""
    args: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Comprehension(_Base):
    """`[body for var in iterable if condition]`, or an aggregate over one (`any`, `all`, `sum`, `count`...)."""

    kind: str = "list"  # "list" or one of AGGREGATES
    var: str = ""
    iterable: Node = None  # type: ignore[assignment]
    body: Node = None  # type: ignore[assignment]
    condition: Node | None = None


@dataclass(frozen=True)
class IfExp(_Base):
    """`body if test else orelse`."""

    test: Node = None  # type: ignore[assignment]
    body: Node = None  # type: ignore[assignment]
    orelse: Node = None  # type: ignore[assignment]


Node = Const | Name | Attr | Unary | Binary | BoolOp | Compare | IsNone | ListLit | Call | Comprehension | IfExp


class ParseError(Exception):
    """An expression is not in the language; carries one diagnostic."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        self.diagnostic = diagnostic
        super().__init__(diagnostic.render())


class _Lowering:
    """Python `ast` → our nodes, rejecting everything outside the language."""

    def __init__(self, locate: Locator, callables: frozenset[str] = frozenset(), text: str = "") -> None:
        self.locate = locate
        self.callables = callables  # table and scale parameters, called like functions
        self.text = text  # what Python's parser was given (the source in parentheses)

    def span(self, node: ast.AST) -> Span:
        line = getattr(node, "lineno", 1) - 1
        col = getattr(node, "col_offset", 0)
        return self.locate(line, col - 1 if line == 0 else col)  # the `(` added around the source

    def fail(self, node: ast.AST, message: str, help: str | None = None) -> ParseError:
        return ParseError(Diagnostic("invalid-expression", message, self.span(node), help))

    def lower(self, node: ast.AST) -> Node:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise self.fail(node, f"`{ast.unparse(node)}` is not allowed in a rule expression", _HELP)
        return method(node)  # type: ignore[no-any-return]

    def _Constant(self, node: ast.Constant) -> Node:
        if not isinstance(node.value, (int, float, str, bool, type(None))):
            raise self.fail(node, f"literal `{ast.unparse(node)}` is not allowed")
        if isinstance(node.value, (int, float)) and not _finite(node.value):
            raise self.fail(node, "number is too large", f"numbers are at most {MAX_NUMBER:.4g} in size")
        if isinstance(node.value, str):
            self._one_text(node)
        return Const(self.span(node), node.value)

    def _one_text(self, node: ast.Constant) -> None:
        """Refuse texts written side by side (`['north' 'south']`, a comma forgotten in a list): Python's parser
        joins them into one (`'northsouth'`) without a word."""
        written = ast.get_source_segment(self.text, node) or ""
        if len(written) >= 2 and written[0] == written[-1] in "'\"" and written[1:-1] == node.value:
            return  # one literal without escapes (the usual text): nothing to tokenize
        try:
            strings = [t for t in tokenize.generate_tokens(io.StringIO(written).readline) if t.type == tokenize.STRING]
        except (tokenize.TokenError, SyntaxError):  # pragma: no cover - the text parsed already
            return
        if len(strings) < 2:
            return
        row, col = strings[1].start
        second = ast.Constant(0, lineno=node.lineno + row - 1, col_offset=col + (node.col_offset if row == 1 else 0))
        raise self.fail(
            second,
            f"two texts side by side, `{strings[0].string} {strings[1].string}`, would be read as one: {node.value!r}",
            "put a comma between the items of a list, or write the text as one",
        )

    def _Name(self, node: ast.Name) -> Node:
        if node.id.startswith("_"):
            raise self.fail(node, f"name `{node.id}` is not allowed: names cannot start with `_`")
        return Name(self.span(node), node.id)

    def _Attribute(self, node: ast.Attribute) -> Node:
        if node.attr.startswith("_"):
            raise self.fail(node, f"attribute `{node.attr}` is not allowed: names cannot start with `_`")
        end = ast.Constant(
            0, lineno=node.end_lineno or node.lineno, col_offset=(node.end_col_offset or 0) - len(node.attr)
        )
        return Attr(self.span(node), self.lower(node.value), node.attr, self.span(end))

    def _UnaryOp(self, node: ast.UnaryOp) -> Node:
        ops = {ast.Not: "not", ast.USub: "-", ast.UAdd: "+"}
        op = ops.get(type(node.op))
        if op is None:
            raise self.fail(node, f"operator in `{ast.unparse(node)}` is not allowed")
        operand = self.lower(node.operand)
        if op == "-" and isinstance(operand, Const) and isinstance(operand.value, (int, float)):
            return Const(self.span(node), -operand.value)
        return Unary(self.span(node), op, operand)

    def _BinOp(self, node: ast.BinOp) -> Node:
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise self.fail(node, f"operator in `{ast.unparse(node)}` is not allowed", "use + - * /")
        return Binary(self.span(node), op, self.lower(node.left), self.lower(node.right))

    def _BoolOp(self, node: ast.BoolOp) -> Node:
        op = "and" if isinstance(node.op, ast.And) else "or"
        return BoolOp(self.span(node), op, tuple(self.lower(v) for v in node.values))

    def _Compare(self, node: ast.Compare) -> Node:
        parts: list[Node] = []
        left = self.lower(node.left)
        for op_node, right_ast in zip(node.ops, node.comparators, strict=True):
            right = self.lower(right_ast)
            parts.append(self._comparison(node, op_node, left, right, right_ast))
            left = right
        return parts[0] if len(parts) == 1 else BoolOp(self.span(node), "and", tuple(parts))

    def _comparison(self, node: ast.Compare, op: ast.cmpop, left: Node, right: Node, right_ast: ast.AST) -> Node:
        if isinstance(op, (ast.Is, ast.IsNot)):
            if not (isinstance(right, Const) and right.value is None):
                raise self.fail(node, "`is` only compares with `None`", "use `==` to compare values")
            return IsNone(self.span(node), left, isinstance(op, ast.IsNot))
        symbol = _CMPOPS.get(type(op))
        if symbol is None:
            raise self.fail(node, f"comparison in `{ast.unparse(node)}` is not allowed")
        return Compare(self.span(node), symbol, left, right)

    def _IfExp(self, node: ast.IfExp) -> Node:
        return IfExp(self.span(node), self.lower(node.test), self.lower(node.body), self.lower(node.orelse))

    def _List(self, node: ast.List) -> Node:
        return ListLit(self.span(node), tuple(self.lower(e) for e in node.elts))

    _Tuple = _List

    def _Call(self, node: ast.Call) -> Node:
        if not isinstance(node.func, ast.Name):
            self.lower(node.func)  # what is called is refused at its own place (e.g. a lambda)
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS | self.callables:
            name = ast.unparse(node.func)
            available = ", ".join(sorted(FUNCTIONS)) + "".join(f"; {n} (a parameter)" for n in sorted(self.callables))
            raise self.fail(node, f"function `{name}` is not available", f"available: {available}")
        if node.keywords:
            raise self.fail(node, f"`{node.func.id}` takes no keyword arguments")
        func = node.func.id
        if func not in FUNCTIONS:
            if any(isinstance(a, (ast.GeneratorExp, ast.Starred)) for a in node.args):
                raise self.fail(node, f"`{func}` takes its keys (or amount) as plain arguments")
            return Call(self.span(node), func, tuple(self.lower(a) for a in node.args))
        if len(node.args) == 1 and isinstance(node.args[0], ast.GeneratorExp):
            if func not in AGGREGATES:
                raise self.fail(node, f"`{func}` cannot take a `for` expression")
            return self._comprehension(node.args[0], func, self.span(node))
        if func in ("any", "all", "count"):
            raise self.fail(node, f"`{func}` takes a `for` expression, e.g. `{func}(c.x for c in xs)`")
        return Call(self.span(node), func, tuple(self.lower(a) for a in node.args))

    def _ListComp(self, node: ast.ListComp) -> Node:
        return self._comprehension(node, "list", self.span(node))

    def _comprehension(self, node: ast.GeneratorExp | ast.ListComp, kind: str, span: Span) -> Node:
        if len(node.generators) != 1:
            raise self.fail(node, "only one `for` is allowed in a comprehension")
        gen = node.generators[0]
        if not isinstance(gen.target, ast.Name) or gen.is_async:
            raise self.fail(node, "the `for` variable must be a single name")
        if len(gen.ifs) > 1:
            raise self.fail(node, "use one `if` with `and` instead of several")
        condition = self.lower(gen.ifs[0]) if gen.ifs else None
        var = self._Name(gen.target)
        assert isinstance(var, Name)
        return Comprehension(
            span=span,
            kind=kind,
            var=var.name,
            iterable=self.lower(gen.iter),
            body=self.lower(node.elt),
            condition=condition,
        )


_HELP = "expressions use names, attribute paths, literals, arithmetic, comparisons, and/or/not and a few functions"


def parse_expression(
    text: str | bool, origin: Span, locate: Locator | None = None, callables: frozenset[str] = frozenset()
) -> Node:
    """Parse `text` (a rule's `when`, a value's `expr`...) into nodes with spans.

    `locate(line, column)` maps a 0-based position in `text` to the file; by default positions
    are taken as offsets from `origin` on its line. `callables` are the table and scale parameters,
    called like functions (`minimum_by_lead_kind(lead.kind)`).
    """
    if locate is None:
        locate = lambda line, col: origin.shifted(0, col) if line == 0 else origin.shifted(line, col + 1)  # noqa: E731
    if isinstance(text, bool):
        return Const(origin, text)
    source = text.strip()
    if not source:
        raise ParseError(Diagnostic("invalid-expression", "expression is empty", origin))
    _parser_warnings_are_errors()
    try:
        wrapped = f"({source}\n)"  # parentheses allow several lines
        tree = ast.parse(wrapped, _EXPRESSIONS, mode="eval")
    except SyntaxError as error:
        raise ParseError(_syntax_error(source, error, locate)) from None
    except (RecursionError, MemoryError):  # Python's own parser gives up on very deep nesting
        raise ParseError(_too_deep(locate(0, 0))) from None
    lowering = _Lowering(locate, callables, wrapped)
    too_deep = _deeper_than(tree.body, MAX_EXPRESSION_DEPTH)
    if too_deep is not None:
        raise ParseError(_too_deep(lowering.span(too_deep)))
    node = lowering.lower(tree.body)
    inner = _nested_deeper(node, MAX_EXPRESSION_DEPTH)
    if inner is not None:
        raise ParseError(_too_deep(inner.span))
    return node


_EXPRESSIONS = "<rule expression>"  # the file name Python's parser is given: what it warns of is told apart by it
_STRICT = tuple(
    ("error", None, category, re.compile(re.escape(_EXPRESSIONS) + r"\Z"), 0)
    for category in (SyntaxWarning, DeprecationWarning)
)


def _parser_warnings_are_errors() -> None:
    """What Python's parser only warns of in an expression (`70and x`: a number run into a word; `"\\d"`: an
    escape Python does not know) is an error of the expression, located as any other: the parser raises it as
    a `SyntaxError` where a warnings filter says so. The filters match the expressions' own file name only, so
    nothing else the process parses is affected. They are put first where they are not there already: a
    `warnings.catch_warnings` block restores the filters it found (one around an import of the engine would
    drop them), and a filter put before them (pytest shows every `DeprecationWarning`) would win; a per-call
    `catch_warnings` here would change the filters of every thread while it lasts."""
    filters = warnings.filters
    for strict in _STRICT:
        if filters[:2].count(strict) != 1:
            warnings.filterwarnings("error", category=strict[2], module=strict[3].pattern)


def _syntax_error(source: str, error: SyntaxError, locate: Locator) -> Diagnostic:
    lines = source.split("\n")
    line = min(max((error.lineno or 1) - 1, 0), len(lines) - 1)
    col = max((error.offset or 1) - (2 if line == 0 else 1), 0)
    if (error.lineno or 1) > len(lines):  # the error is at the end of the text
        col = len(lines[line])
    span = locate(line, col)
    detail = "" if error.msg == "invalid syntax" else f": {error.msg}"
    return Diagnostic("invalid-expression", f"invalid syntax in `{source}`{detail}", span)


def _too_deep(span: Span) -> Diagnostic:
    return Diagnostic(
        "too-deep",
        f"expression nests more than {MAX_EXPRESSION_DEPTH} levels deep",
        span,
        "split it into named values or rules",
    )


def _deeper_than(tree: ast.AST, limit: int) -> ast.AST | None:
    """The first (in the text) expression of `tree` nested more than `limit` deep, found without recursion."""
    found: list[ast.AST] = []
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, level = stack.pop()
        if level > limit:
            found.append(node)
            continue
        stack.extend((c, level + isinstance(c, ast.expr)) for c in ast.iter_child_nodes(node))
    return min(found, key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)), default=None)


def _nested_deeper(node: Node, limit: int) -> Node | None:
    """The first node below `node` nested more than `limit` levels deep (a chained comparison adds one)."""
    found: list[Node] = []
    stack = [(node, 1)]
    while stack:
        current, level = stack.pop()
        if level > limit:
            found.append(current)
            continue
        stack.extend((child, level + 1) for child in children(current))
    return min(found, key=lambda n: n.span, default=None)


def _finite(value: float) -> bool:
    return abs(value) <= MAX_NUMBER and not (isinstance(value, float) and math.isnan(value))


def depth(node: Node) -> int:
    """How many levels `node` nests (a leaf is 1), found without recursion."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children(current))
    return deepest


def walk(node: Node) -> list[Node]:
    """`node` and every node below it, parents first."""
    found: list[Node] = [node]
    for child in children(node):
        found.extend(walk(child))
    return found


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Attr):
        return (node.obj,)
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, (Binary, Compare)):
        return (node.left, node.right)
    if isinstance(node, BoolOp):
        return node.operands
    if isinstance(node, IsNone):
        return (node.operand,)
    if isinstance(node, (ListLit,)):
        return node.items
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Comprehension):
        rest = (node.condition,) if node.condition is not None else ()
        return (node.iterable, node.body) + rest
    if isinstance(node, IfExp):
        return (node.test, node.body, node.orelse)
    return ()


def render(node: Node) -> str:
    """The expression as text (normalised), for explanations.

    The same expression (equal nodes: spans aside) is written once and remembered: an explanation
    shows the formula of every definition it reaches, and writing one costs more than hashing it.
    """
    try:
        return _rendered(node)
    except TypeError:  # a node holding an unhashable constant
        return ast.unparse(_to_ast(node))


@functools.lru_cache(maxsize=4096)
def _rendered(node: Node) -> str:
    return ast.unparse(_to_ast(node))


def _to_ast(node: Node) -> ast.expr:  # noqa: C901 - one case per node type
    if isinstance(node, Const):
        return ast.Constant(node.value)
    if isinstance(node, Name):
        return ast.Name(node.name)
    if isinstance(node, Attr):
        return ast.Attribute(_to_ast(node.obj), node.attr)
    if isinstance(node, Unary):
        unary: ast.unaryop = {"not": ast.Not(), "-": ast.USub(), "+": ast.UAdd()}[node.op]
        return ast.UnaryOp(unary, _to_ast(node.operand))
    if isinstance(node, Binary):
        binary: ast.operator = {v: k for k, v in _BINOPS.items()}[node.op]()
        return ast.BinOp(_to_ast(node.left), binary, _to_ast(node.right))
    if isinstance(node, BoolOp):
        return ast.BoolOp(ast.And() if node.op == "and" else ast.Or(), [_to_ast(o) for o in node.operands])
    if isinstance(node, Compare):
        comparison: ast.cmpop = {v: k for k, v in _CMPOPS.items()}[node.op]()
        return ast.Compare(_to_ast(node.left), [comparison], [_to_ast(node.right)])
    if isinstance(node, IsNone):
        test: ast.cmpop = ast.IsNot() if node.negated else ast.Is()
        return ast.Compare(_to_ast(node.operand), [test], [ast.Constant(None)])
    if isinstance(node, ListLit):
        return ast.List([_to_ast(i) for i in node.items])
    if isinstance(node, Call):
        return ast.Call(ast.Name(node.func), [_to_ast(a) for a in node.args], [])
    if isinstance(node, Comprehension):
        gen = ast.comprehension(ast.Name(node.var), _to_ast(node.iterable), [], 0)
        if node.condition is not None:
            gen.ifs = [_to_ast(node.condition)]
        if node.kind == "list":
            return ast.ListComp(_to_ast(node.body), [gen])
        return ast.Call(ast.Name(node.kind), [ast.GeneratorExp(_to_ast(node.body), [gen])], [])
    assert isinstance(node, IfExp)
    return ast.IfExp(_to_ast(node.test), _to_ast(node.body), _to_ast(node.orelse))
