"""Type inference for expressions, and the uses (names, fact paths) each expression depends on.

Names resolve, in order, to: a comprehension variable, `context`, `stage`, a parameter, a value, a
rule, or a field of the subject fact model. Unknown names and fields get a "did you mean"
suggestion; comparisons of unlike types, and text compared with a value a field can never take,
are errors.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.core.diagnostics import Diagnostic, Span
from engine.language.expr import (
    FUNCTIONS,
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
from engine.language.types import (
    ANY,
    BOOL,
    DATE,
    NEVER,
    NONE,
    NUM,
    STR,
    Choice,
    ListTy,
    ModelTy,
    Ty,
    compatible,
    describe,
    of_value,
    unify,
)

__all__ = ["Use", "Resolver", "TypeChecker", "Lookup", "suggest"]


@dataclass(frozen=True)
class Use:
    """One use of a definition or a fact in an expression: kind, name or path, where."""

    kind: str  # parameter | value | rule | fact | context | stage
    name: str
    span: Span = field(compare=False, hash=False)


@dataclass(frozen=True)
class Lookup:
    """A table or scale parameter as a function: what its keys are, on each date, and where its rows are."""

    kind: str  # table | scale
    arity: int
    result: Ty
    dated: tuple[tuple[str, frozenset[tuple[Any, ...]], bool], ...] = ()  # (from when, row keys, has `otherwise`)
    span: Span = field(default=Span(""), compare=False)
    row_spans: dict[tuple[Any, ...], Span] = field(default_factory=dict, compare=False)

    def keys_at(self, position: int) -> set[Any]:
        return {keys[position] for _, rows, _ in self.dated for keys in rows if len(keys) > position}


@dataclass
class Resolver:
    """What the checker knows about names: their kinds and types."""

    kinds: dict[str, str]  # name -> parameter | value | rule | context | stage | fact
    type_of: Callable[[str, str], Ty]  # (kind, name) -> type
    lookups: dict[str, Lookup] = field(default_factory=dict)  # table and scale parameters, used as `name(key)`


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """`did you mean ...?` text for the closest candidate, if one is close."""
    found = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean `{found[0]}`?" if found else None


class TypeChecker:
    """Infers the type of one expression; collects diagnostics and uses as it goes."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.diagnostics: list[Diagnostic] = []
        self.uses: list[Use] = []
        self.scope: dict[str, tuple[Ty, str]] = {}  # comprehension variable -> (type, path of items)

    def error(self, code: str, message: str, span: Span, help: str | None = None) -> Ty:
        self.diagnostics.append(Diagnostic(code, message, span, help))
        return ANY

    def expect(self, node: Node, wanted: Ty, what: str) -> Ty:
        ty = self.infer(node)
        if ty != ANY and not compatible(ty, wanted):
            self.error("type-mismatch", f"{what} must be {describe(wanted)}, but this is {describe(ty)}", node.span)
        return ty

    def infer(self, node: Node) -> Ty:
        method = getattr(self, f"_{type(node).__name__}")
        return method(node)  # type: ignore[no-any-return]

    def _Const(self, node: Const) -> Ty:
        return of_value(node.value)

    def _Name(self, node: Name) -> Ty:
        if node.name in self.scope:
            return self.scope[node.name][0]
        kind = self.resolver.kinds.get(node.name)
        if kind is None:
            names = list(self.resolver.kinds) + list(self.scope)
            return self.error("unknown-name", f"unknown name `{node.name}`", node.span, suggest(node.name, names))
        self.uses.append(Use(kind, node.name, node.span))
        lookup = self.resolver.lookups.get(node.name)
        if lookup is not None:
            what = "the key" if lookup.kind == "table" else "the amount"
            return self.error(
                "bad-call",
                f"`{node.name}` is a {lookup.kind}: use it with {what}, e.g. `{node.name}(...)`",
                node.span,
            )
        return self.resolver.type_of(kind, node.name)

    def _Attr(self, node: Attr) -> Ty:
        steps: list[Attr] = []
        root: Node = node
        while isinstance(root, Attr):
            steps.insert(0, root)
            root = root.obj
        chain = [step.attr for step in steps]
        if not isinstance(root, Name):
            return self._walk(self.infer(root), steps, "(expression)")
        if root.name in self.scope:
            ty, prefix = self.scope[root.name]
            result = self._walk(ty, steps, root.name)
            if prefix:
                self.uses.append(Use("fact", ".".join([prefix] + chain), node.span))
            return result
        kind = self.resolver.kinds.get(root.name)
        if kind not in ("fact", "context", "stage"):
            return self._walk(self._Name(root), steps, root.name)
        result = self._walk(self.resolver.type_of(kind, root.name), steps, root.name)
        self.uses.append(Use(kind, ".".join([root.name] + chain), node.span))
        return result

    def _walk(self, ty: Ty, steps: list[Attr], start: str) -> Ty:
        path = start
        for step in steps:
            attr, span = step.attr, step.attr_span or step.span
            if ty == ANY:
                return ANY
            if isinstance(ty, ListTy):
                return self.error(
                    "not-a-record", f"`{path}` is a list: use `any(...)`, `all(...)` or `count(...)` over it", span
                )
            if not isinstance(ty, ModelTy):
                return self.error("not-a-record", f"`{path}` is {describe(ty)} and has no field `{attr}`", span)
            fields = ty.fields()
            if attr not in fields:
                return self.error(
                    "unknown-field",
                    f"`{ty.cls.__name__}` has no field `{attr}` (in `{path}.{attr}`)",
                    span,
                    suggest(attr, fields),
                )
            ty, path = fields[attr], f"{path}.{attr}"
        return ty

    def _Unary(self, node: Unary) -> Ty:
        if node.op == "not":
            self.expect(node.operand, BOOL, "the operand of `not`")
            return BOOL
        ty = self.expect(node.operand, NUM, f"the operand of `{node.op}`")
        if ty == NONE:
            self.error(
                "type-mismatch", f"the operand of `{node.op}` must be number, but this is none", node.operand.span
            )
        return NUM

    def _Binary(self, node: Binary) -> Ty:
        left, right = self.infer(node.left), self.infer(node.right)
        if node.op == "+" and STR in (_family(left), _family(right)):
            if not compatible(left, right):
                return self.error("type-mismatch", f"cannot add {describe(left)} and {describe(right)}", node.span)
            return STR
        for side, ty in ((node.left, left), (node.right, right)):
            if ty != ANY and ty != NUM:
                self.error("type-mismatch", f"`{node.op}` needs numbers, but this is {describe(ty)}", side.span)
        return NUM

    def _BoolOp(self, node: BoolOp) -> Ty:
        for operand in node.operands:
            self.expect(operand, BOOL, f"each operand of `{node.op}`")
        return BOOL

    def _IsNone(self, node: IsNone) -> Ty:
        self.infer(node.operand)
        return BOOL

    def _Compare(self, node: Compare) -> Ty:
        left, right = self.infer(node.left), self.infer(node.right)
        if node.op in ("in", "not in"):
            return self._membership(node, left, right)
        if NONE in (left, right):
            ordering = node.op in ("<", "<=", ">", ">=")
            message = (
                f"`{node.op}` needs numbers, dates or text, not none"
                if ordering
                else f"`{node.op} None` is never how a missing value is tested"
            )
            self.error(
                "type-mismatch", message, node.span, "use `x is None` or `x is not None` to test for a missing value"
            )
            return BOOL
        if ANY in (left, right):
            return BOOL
        if not compatible(left, right):
            self.error("type-mismatch", f"cannot compare {describe(left)} with {describe(right)}", node.span)
            return BOOL
        if node.op in ("<", "<=", ">", ">=") and _family(left) not in (NUM, DATE, STR):
            self.error("type-mismatch", f"`{node.op}` needs numbers, dates or text, not {describe(left)}", node.span)
        self._choice_literal(left, node.right)
        self._choice_literal(right, node.left)
        return BOOL

    def _membership(self, node: Compare, left: Ty, right: Ty) -> Ty:
        if right == ANY:
            return BOOL
        if isinstance(right, ListTy):
            if not compatible(left, right.item):
                self.error(
                    "type-mismatch", f"cannot look for {describe(left)} in a list of {describe(right.item)}", node.span
                )
            if isinstance(node.right, ListLit):
                for item in node.right.items:
                    self._choice_literal(left, item)
            return BOOL
        if _family(right) == STR and _family(left) == STR:
            return BOOL
        self.error(
            "type-mismatch",
            f"`{node.op}` needs a list or text on its right, but this is {describe(right)}",
            node.right.span,
        )
        return BOOL

    def _choice_literal(self, ty: Ty, other: Node) -> None:
        if (
            isinstance(ty, Choice)
            and isinstance(other, Const)
            and isinstance(other.value, str)
            and other.value not in ty.choices
        ):
            allowed = ", ".join(f"`{c}`" for c in sorted(ty.choices))
            hint = suggest(other.value, ty.choices) or f"allowed values: {allowed}"
            self.error(
                "impossible-value", f"`{other.value}` is never a value here: it is {describe(ty)}", other.span, hint
            )

    def _ListLit(self, node: ListLit) -> Ty:
        item: Ty = NEVER
        for each in node.items:
            ty = self.infer(each)
            common = unify(item, ty)
            if common is None:
                self.error(
                    "type-mismatch",
                    f"the items of a list must have one type: this is {describe(ty)}, "
                    f"the items before it are {describe(item)}",
                    each.span,
                )
                return ListTy(ANY)
            item = common
        return ListTy(item)

    def _IfExp(self, node: IfExp) -> Ty:
        self.expect(node.test, BOOL, "the condition of `if`")
        body, orelse = self.infer(node.body), self.infer(node.orelse)
        common = unify(body, orelse)
        if common is None:
            self.error(
                "type-mismatch", f"both branches must have one type: {describe(body)} and {describe(orelse)}", node.span
            )
            return ANY
        return common

    def _Call(self, node: Call) -> Ty:
        args = [self.infer(a) for a in node.args]
        if node.func not in FUNCTIONS:
            return self._lookup(node, args)
        arity = {"len": (1, 1), "abs": (1, 1), "round": (1, 2), "sum": (1, 1)}.get(node.func, (1, None))
        if not arity[0] <= len(args) <= (arity[1] or len(args)):
            return self._arity(node, arity)
        if node.func == "len":
            if not (isinstance(args[0], ListTy) or _family(args[0]) in (STR, ANY)):
                self.error(
                    "type-mismatch",
                    f"the argument of `len` must be a list or text, but this is {describe(args[0])}",
                    node.args[0].span,
                )
            return NUM
        if node.func in ("abs", "round"):
            return self._numbers(node, args)
        return self._numeric_call(node, args)

    def _lookup(self, node: Call, args: list[Ty]) -> Ty:
        """`table(key)`, `table(key1, key2)`, `scale(amount)`: keys checked against the table's rows."""
        lookup = self.resolver.lookups.get(node.func)
        if lookup is None:
            names = sorted(FUNCTIONS | set(self.resolver.lookups))
            return self.error(
                "bad-call", f"function `{node.func}` is not available", node.span, suggest(node.func, names)
            )
        self.uses.append(Use("parameter", node.func, node.span))
        if len(args) != lookup.arity:
            return self._arity(node, (lookup.arity, lookup.arity))
        if lookup.kind == "scale":
            if args[0] not in (ANY, NUM):
                message = f"the amount of scale `{node.func}` must be number, but this is {describe(args[0])}"
                self.error("type-mismatch", message, node.args[0].span)
            return lookup.result
        for position, (arg, ty) in enumerate(zip(node.args, args, strict=True)):
            self._keys(node.func, lookup, position, arg, ty)
        if all(isinstance(ty, Choice) for ty in args):
            self._coverage(node, lookup, [ty for ty in args if isinstance(ty, Choice)])
        return lookup.result

    def _keys(self, name: str, lookup: Lookup, position: int, arg: Node, ty: Ty) -> None:
        """Each row's key at `position` must be a value `arg` can take."""
        if ty == ANY:
            return
        keys = lookup.keys_at(position)
        family = _family(ty)
        if family not in (STR, NUM) or any(isinstance(k, str) != (family == STR) for k in keys):
            kinds = "text" if all(isinstance(k, str) for k in keys) else "whole numbers"
            message = f"the keys of table `{name}` are {kinds}, but this is {describe(ty)}"
            self.error("type-mismatch", message, arg.span)
            return
        if not isinstance(ty, Choice):
            return
        for key in sorted(k for k in keys if k not in ty.choices):
            span = next((s for ks, s in lookup.row_spans.items() if ks[position:][:1] == (key,)), lookup.span)
            self.diagnostics.append(
                Diagnostic(
                    "impossible-key",
                    f"row `{key}` of table `{name}` can never be used: `{render(arg)}` is {describe(ty)}",
                    span,
                    suggest(key, ty.choices),
                    labels=((arg.span, "the key comes from here"),),
                )
            )

    def _coverage(self, node: Call, lookup: Lookup, args: list[Choice]) -> None:
        """Without `otherwise`, every value the keys can take needs a row, on every date."""
        combos = [()]  # type: list[tuple[str, ...]]
        for ty in args:
            combos = [c + (choice,) for c in combos for choice in sorted(ty.choices)]
        for since, rows, otherwise in lookup.dated:
            missing = [c for c in combos if c not in rows]
            if otherwise or not missing:
                continue
            shown = ", ".join(f"`{', '.join(c)}`" for c in missing[:4]) + (" ..." if len(missing) > 4 else "")
            when = f" (the table in force from {since})" if since else ""
            self.diagnostics.append(
                Diagnostic(
                    "missing-row",
                    f"table `{node.func}` has no row for {shown}{when} and no `otherwise`",
                    node.span,
                    "add the rows, or an `otherwise:` value for every key without one",
                    labels=((lookup.span, "the table"),),
                )
            )
            return

    def _arity(self, node: Call, arity: tuple[int, int | None]) -> Ty:
        low, high = arity
        wanted = f"{low}" if low == high else (f"{low} or {high}" if high else f"at least {low}")
        noun = "argument" if (high or low) == 1 else "arguments"
        return self.error("bad-call", f"`{node.func}` takes {wanted} {noun}, not {len(node.args)}", node.span)

    def _numbers(self, node: Call, args: list[Ty]) -> Ty:
        """`abs(x)`, `round(x)`, `round(x, places)`: numbers; `places` a whole number."""
        for arg, ty in zip(node.args, args, strict=True):
            if ty not in (ANY, NUM):
                self.error(
                    "type-mismatch",
                    f"the arguments of `{node.func}` must be numbers, but this is {describe(ty)}",
                    arg.span,
                )
        places = node.args[1] if len(node.args) == 2 else None
        if isinstance(places, Const) and not (isinstance(places.value, int) and not isinstance(places.value, bool)):
            self.error(
                "type-mismatch",
                f"the number of places of `round` must be a whole number, but this is `{places.value}`",
                places.span,
            )
        return NUM

    def _numeric_call(self, node: Call, args: list[Ty]) -> Ty:
        """`min`, `max` (a list, or several values) and `sum` (a list): numbers, or dates for min and max."""
        if len(args) == 1:
            if not isinstance(args[0], ListTy) and args[0] != ANY:
                several = "" if node.func == "sum" else " or several values"
                return self.error(
                    "type-mismatch",
                    f"`{node.func}` takes a list or a `for` expression{several}, but this is {describe(args[0])}",
                    node.args[0].span,
                )
            items = [(node.args[0], args[0].item if isinstance(args[0], ListTy) else ANY)]
        else:
            items = list(zip(node.args, args, strict=True))
        allowed = (NUM,) if node.func == "sum" else (NUM, DATE)
        words = "numbers" if node.func == "sum" else "numbers or dates"
        found: Ty = NEVER
        for arg, ty in items:
            common = unify(found, ty)
            if ty not in (ANY, NEVER) and _family(ty) not in allowed:
                what = f"a list of {describe(ty)}" if len(args) == 1 else describe(ty)
                return self.error("type-mismatch", f"`{node.func}` needs {words}, but this is {what}", arg.span)
            if common is None:
                message = f"`{node.func}` needs values of one type: this is {describe(ty)}, before it {describe(found)}"
                return self.error("type-mismatch", message, arg.span)
            found = common or found
        return NUM if found in (NEVER, ANY) else found

    def _Comprehension(self, node: Comprehension) -> Ty:
        iterable = self.infer(node.iterable)
        if iterable != ANY and not isinstance(iterable, ListTy):
            self.error("type-mismatch", f"`for` needs a list, but this is {describe(iterable)}", node.iterable.span)
        item = iterable.item if isinstance(iterable, ListTy) and iterable.item != NEVER else ANY
        saved = self.scope.get(node.var)
        self.scope[node.var] = (item, self._items_path(node.iterable))
        try:
            if node.condition is not None:
                self.expect(node.condition, BOOL, "the `if` of a `for` expression")
            if node.kind in ("any", "all", "count"):
                self.expect(node.body, BOOL, f"the expression inside `{node.kind}`")
                return NUM if node.kind == "count" else BOOL
            body = self.infer(node.body)
            if node.kind == "list":
                return ListTy(body)
            if body != ANY and _family(body) not in (NUM, DATE) or (node.kind == "sum" and body == DATE):
                self.error(
                    "type-mismatch", f"`{node.kind}` needs numbers, but this is {describe(body)}", node.body.span
                )
            return body if node.kind != "sum" else NUM
        finally:
            if saved is None:
                del self.scope[node.var]
            else:
                self.scope[node.var] = saved

    def _items_path(self, node: Node) -> str:
        names: list[str] = []
        while isinstance(node, Attr):
            names.insert(0, node.attr)
            node = node.obj
        if isinstance(node, Name):
            if node.name in self.scope:
                prefix = self.scope[node.name][1]
                return ".".join([prefix] + names) + "[]" if prefix else ""
            if self.resolver.kinds.get(node.name) in ("fact", "context"):
                return ".".join([node.name] + names) + "[]"
        return ""


def _family(ty: Ty) -> Ty:
    return STR if isinstance(ty, Choice) else ty
