"""Expressions in plain language, for the policy document (`policy doc`).

`Words(ir).condition(node)` reads a condition (`total_score >= minimum_total_score`) as English:
"the total stage-1 score is at least the minimum total score to stay in the programme (70.0 from
15 Jan 2026)"; `Words(ir).term(node)` reads a value. A phrase is a tuple of pieces: plain `Text`
and `Ref`s, links to the definition of a value, rule, parameter or fact, so that the document can
link a rule to what it uses. Values, rules and parameters are named by their titles (a trailing
parenthesis left out: the full title is the link's tooltip); a parameter is followed by its
values with the dates they take effect; a fact path by the fact model's field titles when it
gives them, else by its field names (`panel.votes_for` → "the panel's votes for").

Negation is pushed inwards where it reads better (`not a >= b` → "a is less than b"; De Morgan
for `and`/`or`, which holds in three-valued logic too); a rule used as a condition "holds" or
"fails".
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

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
    Name,
    Node,
    Unary,
    render,
)
from engine.language.ir import PolicyIR

__all__ = [
    "Text",
    "Ref",
    "Piece",
    "Phrase",
    "Words",
    "plain",
    "anchor",
    "humanize",
    "noun",
    "plural",
    "format_date",
    "quantity",
]


@dataclass(frozen=True)
class Text:
    text: str
    style: str = ""  # "", "code", "em" or "strong"


@dataclass(frozen=True)
class Ref:
    """A link to a definition in the document: `anchor` is its id, `title` a tooltip."""

    anchor: str
    text: str
    title: str = ""
    style: str = ""


Piece = Text | Ref
Phrase = tuple[Piece, ...]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_COMPARE = {
    ">=": "is at least",
    ">": "is more than",
    "<=": "is at most",
    "<": "is less than",
    "==": "is",
    "!=": "is not",
    "in": "is one of",
    "not in": "is not one of",
}
_NEGATED = {">=": "<", ">": "<=", "<=": ">", "<": ">=", "==": "!=", "!=": "==", "in": "not in", "not in": "in"}
_ARITHMETIC = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_STAGE = {  # `stage.x`, with {subject} for the subject's name
    "rank": "the {subject}'s rank in the stage",
    "slots": "the number of places in the stage",
    "pool_size": "the number of {subjects} ranked in the stage",
    "in_pool": "whether the {subject} is ranked in the stage",
    "id": "the stage",
}


def plain(phrase: Phrase) -> str:
    """The phrase as plain text (links dropped)."""
    return "".join(piece.text for piece in phrase)


def anchor(kind: str, name: str) -> str:
    """The id of a definition in the document: `rule-sovereign`, `fact-model-components-kind`."""
    return f"{kind}-" + re.sub(r"[^A-Za-z0-9_]+", "-", name).strip("-")


def humanize(name: str) -> str:
    """`target_share_of_global` → "target share of global"; `StageContext` → "stage context"."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ")
    return " ".join(word if word.isupper() and len(word) > 1 else word.lower() for word in spaced.split())


def noun(title: str) -> str:
    """A title used inside a sentence: "Total score (of 100)" → "the total score"."""
    short = re.sub(r"\s*\([^()]*\)\s*$", "", title).strip() or title.strip()
    if len(short) > 1 and short[0].isupper() and not short[1].isupper():
        short = short[0].lower() + short[1:]
    return short if re.match(r"(the|a|an)\s", short) else f"the {short}"


def plural(word: str) -> str:
    """consortium → consortia, applicant → applicants, entry → entries."""
    if word.endswith("um"):
        return word[:-2] + "a"
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "o", "u"):
        return word[:-1] + "ies"
    return word + ("es" if word.endswith(("s", "x", "ch", "sh")) else "s")


def format_date(day: dt.date) -> str:
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def quantity(value: Any) -> str:
    """A literal or parameter value as text: 70.0, 5, “team”, true, none."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"“{value}”"
    if isinstance(value, dt.date):
        return format_date(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(quantity(v) for v in value) if value else "none"
    return str(value)


def _possessive(word: str) -> str:
    return f"{word}'" if word.endswith("s") else f"{word}'s"


def _singular(name: str) -> str:
    last = humanize(name).split(" ")[-1] if name else ""
    if last.endswith("ies"):
        return last[:-3] + "y"
    return last[:-1] if last.endswith("s") and not last.endswith("ss") else "item"


def _unwrap(annotation: Any) -> Any:
    """`Optional[X]`, `list[X]`, `Annotated[X, ...]` → X."""
    while typing.get_origin(annotation) is not None and typing.get_origin(annotation) is not typing.Literal:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if not args:
            break
        annotation = args[0]
    return annotation


def field_of(model: type[BaseModel] | None, path: list[str]) -> Any:
    """The pydantic `FieldInfo` (or `ComputedFieldInfo`) at `path` below `model`, or None."""
    current: Any = model
    info: Any = None
    for name in path:
        inner = _unwrap(current)
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return None
        if name in inner.model_fields:
            info = inner.model_fields[name]
        elif name in inner.model_computed_fields:  # e.g. `upstream.lineage`, computed from `derived_from`
            info = inner.model_computed_fields[name]
        else:
            return None
        current = _annotation(info)
    return info


def _annotation(info: Any) -> Any:
    """The type of a field (`FieldInfo.annotation`) or of a computed field (`return_type`)."""
    return getattr(info, "annotation", None) or getattr(info, "return_type", None)


@dataclass(frozen=True)
class _Var:
    """A comprehension variable: how it is called, and the fact path of its items (if facts)."""

    noun: str
    path: str | None


class Words:
    """Plain-language phrases for the expressions of one package."""

    def __init__(self, ir: PolicyIR) -> None:
        self.ir = ir
        self.subject = humanize(ir.schema.subject.__name__)
        self.scope: dict[str, _Var] = {}

    # -- conditions ---------------------------------------------------------------------------

    def condition(self, node: Node) -> Phrase:  # noqa: C901 - one case per node type
        """`node` read as a statement that holds or not."""
        if isinstance(node, Const) and isinstance(node.value, bool):
            return _t("always" if node.value else "never")
        if isinstance(node, Name) and node.name in self.ir.rules and node.name not in self.scope:
            return (*self._rule(node.name), Text(" holds"))
        if isinstance(node, Unary) and node.op == "not":
            return self.negation(node.operand)
        if isinstance(node, BoolOp) and node.op == "and" and all(self._is_rule(o) for o in node.operands):
            rules = [self._rule(o.name) for o in node.operands if isinstance(o, Name)]
            return (*self._connect("and", rules), Text(" both hold" if len(rules) == 2 else " all hold"))
        if isinstance(node, BoolOp):
            return self._connect(node.op, [self._operand(node.op, o) for o in node.operands])
        if isinstance(node, Compare):
            return self._compare(node.op, node.left, node.right)
        if isinstance(node, IsNone):
            return (
                *self.term(node.operand),
                Text(_agree(node.operand, "is", " given" if node.negated else " not given")),
            )
        if isinstance(node, Comprehension) and node.kind in ("any", "all"):
            return self._quantified(node, negated=False)
        if isinstance(node, IfExp):
            return self._if(node, self.condition)
        if isinstance(node, Name) and node.name == "stage" or _is_path(node, "stage", "in_pool"):
            return (Text(f"the {self.subject} is ranked in the stage"),)
        return (*self.term(node), Text(_agree(node, "is", " true")))

    def _is_rule(self, node: Node) -> bool:
        return isinstance(node, Name) and node.name in self.ir.rules and node.name not in self.scope

    def negation(self, node: Node) -> Phrase:
        """`not node`, said the plainest way."""
        if isinstance(node, Const) and isinstance(node.value, bool):
            return self.condition(Const(node.span, not node.value))
        if isinstance(node, Name) and node.name in self.ir.rules and node.name not in self.scope:
            return (*self._rule(node.name), Text(" fails"))
        if isinstance(node, Unary) and node.op == "not":
            return self.condition(node.operand)
        if isinstance(node, BoolOp):
            op = "or" if node.op == "and" else "and"
            return self._connect(op, [self._bracket(op, o, self.negation(o)) for o in node.operands])
        if isinstance(node, Compare):
            return self._compare(_NEGATED[node.op], node.left, node.right)
        if isinstance(node, IsNone):
            return self.condition(IsNone(node.span, node.operand, not node.negated))
        if isinstance(node, Comprehension) and node.kind in ("any", "all"):
            return self._quantified(node, negated=True)
        if _is_path(node, "stage", "in_pool"):
            return (Text(f"the {self.subject} is not ranked in the stage"),)
        if isinstance(node, (Name, Attr)):
            return (*self.term(node), Text(_agree(node, "is", " false")))
        return (Text("it is not the case that "), *self.condition(node))

    def _operand(self, op: str, node: Node) -> Phrase:
        return self._bracket(op, node, self.condition(node))

    def _bracket(self, op: str, node: Node, phrase: Phrase) -> Phrase:
        """An operand of `and`/`or` that is itself an `or`/`and`: "either A or B", "all of (A, B, and C)"."""
        inner, size = (node.op, len(node.operands)) if isinstance(node, BoolOp) else (None, 0)
        if isinstance(node, Unary) and node.op == "not" and isinstance(node.operand, BoolOp):
            inner, size = ("or" if node.operand.op == "and" else "and"), len(node.operand.operands)
        if inner is None or inner == op:
            return phrase
        if isinstance(node, BoolOp) and all(self._is_rule(o) for o in node.operands):
            return (Text("("), *phrase, Text(")"))  # "(A and B both hold)"
        if size == 2:
            return (Text("either " if inner == "or" else "both "), *phrase)
        return (Text("at least one of (" if inner == "or" else "all of ("), *phrase, Text(")"))

    @staticmethod
    def _connect(op: str, parts: list[Phrase]) -> Phrase:
        if len(parts) == 1:
            return parts[0]
        out: list[Piece] = []
        for index, part in enumerate(parts):
            if index:
                last = index == len(parts) - 1
                out.append(Text(f", {op} " if len(parts) > 2 and last else f" {op} " if last else ", "))
            out.extend(part)
        return tuple(out)

    def _compare(self, op: str, left: Node, right: Node) -> Phrase:
        if isinstance(left, Call) and left.func == "len" and isinstance(right, Const) and right.value == 0:
            if op in ("==", "<="):
                return self._none_of(left.args[0], negated=False)
            if op in ("!=", ">"):
                return self._none_of(left.args[0], negated=True)
        if op in ("in", "not in") and isinstance(right, ListLit):
            return (*self.term(left), Text(" "), *self._among(op, right))
        return (*self.term(left), Text(f" {_COMPARE[op]} "), *self.term(right))

    def _none_of(self, node: Node, negated: bool) -> Phrase:
        if isinstance(node, Name) and node.name in self.ir.values and node.name not in self.scope:
            bare = self._value(node.name, article=False)
            return (Text("there are some " if negated else "there are no "), *bare)
        return (*self.term(node), Text(" is not empty" if negated else " is empty"))

    def _among(self, op: str, items: ListLit) -> Phrase:
        """`x in [a, b]`: "is “a”", "is one of “a”, “b”", "is neither “a” nor “b”", "is none of ..."."""
        words = [self.term(i) for i in items.items]
        listed: list[Piece] = [
            piece for index, word in enumerate(words) for piece in ((Text(", "),) if index else ()) + word
        ]
        if op == "in":
            return (Text("is one of nothing" if not words else "is " if len(words) == 1 else "is one of "), *listed)
        if len(words) == 2:
            return (Text("is neither "), *words[0], Text(" nor "), *words[1])
        return (Text("is anything" if not words else "is not " if len(words) == 1 else "is none of "), *listed)

    def _quantified(self, node: Comprehension, negated: bool) -> Phrase:
        every = node.kind == "all"
        lead = ("not every " if negated else "every ") if every else ("no " if negated else "at least one ")
        with _Scoped(self, node) as var:
            test = self.condition(node.body)
            if node.condition is not None and not every:
                test = self._connect("and", [self._operand("and", node.condition), self._operand("and", node.body)])
            where = (Text(" for which "), *self.condition(node.condition)) if node.condition and every else ()
            verb = " are such that " if negated and not every else " is such that "
            return (Text(f"{lead}{var.noun} in "), *self.term(node.iterable), *where, Text(verb), *test)

    def _if(self, node: IfExp, read: typing.Callable[[Node], Phrase]) -> Phrase:
        return (*read(node.body), Text(" if "), *self.condition(node.test), Text(", otherwise "), *read(node.orelse))

    # -- terms --------------------------------------------------------------------------------

    def term(self, node: Node) -> Phrase:  # noqa: C901 - one case per node type
        """`node` read as a value (a noun phrase)."""
        if isinstance(node, Const):
            return _t(quantity(node.value))
        if isinstance(node, Name):
            return self._name(node.name)
        if isinstance(node, Attr):
            return self._path(node)
        if isinstance(node, Unary):
            return self.term(node.operand) if node.op == "+" else (Text("minus "), *self._child(node.operand, 3))
        if isinstance(node, Binary):
            level = _PRECEDENCE[node.op]
            right = self._child(node.right, level + (node.op in "-/"))
            products = level == 1 and any(isinstance(c, Binary) and c.op in "*/" for c in (node.left, node.right))
            joiner = f", {_ARITHMETIC[node.op]} " if products else f" {_ARITHMETIC[node.op]} "  # "a times b, plus c"
            return (*self._child(node.left, level), Text(joiner), *right)
        if isinstance(node, (BoolOp, Compare, IsNone)) or isinstance(node, Unary) and node.op == "not":
            return (Text("whether "), *self.condition(node))
        if isinstance(node, ListLit):
            return self._connect("and", [self.term(i) for i in node.items]) if node.items else _t("no items")
        if isinstance(node, Call):
            return self._call(node)
        if isinstance(node, Comprehension):
            return self._collection(node)
        return self._if(node, self.term)

    def _child(self, node: Node, level: int) -> Phrase:
        phrase = self.term(node)
        if isinstance(node, Binary) and _PRECEDENCE[node.op] < level:
            return (Text("("), *phrase, Text(")"))
        return phrase

    def _call(self, node: Call) -> Phrase:
        args = [self.term(a) for a in node.args]
        if node.func in self.ir.parameters:  # a table (`… for the lead's kind`) or a scale (`… applied to income`)
            parameter = self.ir.parameters[node.func]
            said = noun(parameter.title or humanize(node.func))
            joiner = " applied to " if parameter.shape == "scale" else " for "
            return (
                Ref(anchor("parameter", node.func), said, parameter.title),
                Text(joiner),
                *self._connect("and", args),
            )
        if node.func == "len":
            value = node.args[0]
            if isinstance(value, Name) and value.name in self.ir.values and value.name not in self.scope:
                return (Text("the number of "), *self._value(value.name, article=False))
            return (Text("the number of "), *args[0])
        if node.func == "abs":
            return (Text("the absolute value of "), *args[0])
        if node.func == "round":
            places = quantity(node.args[1].value) if len(node.args) > 1 and isinstance(node.args[1], Const) else None
            digits = " to a whole number" if places in (None, "0") else f" to {places} decimal places"
            return (*args[0], Text(" rounded" + digits))
        if node.func in ("min", "max") and len(args) > 1:
            degree = {"min": ("lower", "lowest"), "max": ("higher", "highest")}[node.func][len(args) > 2]
            return (Text(f"the {degree} of "), *self._connect("and", args))
        word = {"min": "the lowest of ", "max": "the highest of ", "sum": "the sum of "}.get(node.func, node.func)
        return (Text(word), *self._connect("and", args))

    def _collection(self, node: Comprehension) -> Phrase:
        with _Scoped(self, node) as var:
            items = self.term(node.iterable)
            where = (Text(" such that "), *self.condition(node.condition)) if node.condition is not None else ()
            many = plural(var.noun)
            if node.kind == "count":
                test = self.condition(node.body)
                if node.condition is not None:
                    test = self._connect("and", [self._operand("and", node.condition), self._operand("and", node.body)])
                return (Text(f"the number of {many} in "), *items, Text(" such that "), *test)
            if node.kind == "list" and isinstance(node.body, Name) and node.body.name == node.var:
                return (Text(f"the {many} in "), *items, *where) if where else items
            body = self.term(node.body)
            lead = {"sum": "the sum of ", "min": "the lowest of ", "max": "the highest of "}.get(node.kind, "")
            return (Text(lead), *body, Text(f" for every {var.noun} in "), *items, *where)

    def _name(self, name: str) -> Phrase:
        if name in self.scope:
            return _t(f"the {self.scope[name].noun}")
        kind = self.ir.kind_of(name)
        if kind == "value":
            return self._value(name)
        if kind == "parameter":
            return self._parameter(name)
        if kind == "rule":
            return (Text("whether "), *self._rule(name), Text(" holds"))
        if kind == "fact":
            return self._fact(name, [name])
        if name == "stage":
            return _t("the stage")
        return _t(f"the {humanize(name)}")

    def _path(self, node: Attr) -> Phrase:
        root, parts = _flatten(node)
        if root in self.scope:
            var = self.scope[root]
            path = f"{var.path}[].{'.'.join(parts)}" if var.path else None
            return self._words(path, f"the {var.noun}", parts, None)
        if root == "stage" and root not in self.scope and len(parts) == 1:
            said = _STAGE.get(parts[0], f"the stage's {humanize(parts[0])}")
            return _t(said.format(subject=self.subject, subjects=plural(self.subject)))
        if root == "context":
            context = self.ir.schema.context_field
            model = self.ir.schema.cohort
            info = field_of(model, [context]) if context else None
            return self._words(f"context.{'.'.join(parts)}", "the cohort", parts, _annotation(info))
        if self.ir.kind_of(root) == "fact":
            return self._fact(".".join([root, *parts]), [root, *parts])
        return self._words(None, self.term(Name(node.span, root)), parts, None)

    def _fact(self, path: str, parts: list[str]) -> Phrase:
        head, rest = parts[0], parts[1:]
        info = field_of(self.ir.schema.subject, [head])
        titled = info.title if info is not None else None
        start = noun(titled) if titled else f"the {humanize(head)}"
        return self._words(path, start, rest, _annotation(info)) if rest else (self._link(path, start))

    def _words(self, path: str | None, start: str | Phrase, parts: list[str], model: Any) -> Phrase:
        """`start` followed by `parts` as possessives; titles of the fact model's fields win."""
        text = start if isinstance(start, str) else None
        out: list[Piece] = [] if isinstance(start, str) else list(start)
        for index, part in enumerate(parts):
            info = field_of(model, parts[: index + 1]) if model is not None else None
            if info is not None and info.title:
                text = noun(info.title)
                continue
            if text is None:
                out.append(Text("'s "))
                text = humanize(part)
            else:
                text = f"{_possessive(text)} {humanize(part)}"
        if text is None:
            return tuple(out)
        return (*out, *self._link(path, text)) if out else self._link(path, text)

    def _link(self, path: str | None, text: str) -> Phrase:
        if path is not None and (f"fact:{path}" in self.ir.graph or f"context:{path}" in self.ir.graph):
            return (Ref(anchor("fact", path), text, path),)
        return _t(text)

    def _value(self, name: str, article: bool = True) -> Phrase:
        value = self.ir.values[name]
        said = noun(value.title or humanize(name))
        if not article:
            said = re.sub(r"^(the|a|an)\s", "", said)
        return (Ref(anchor("value", name), said, value.title),)

    def _parameter(self, name: str) -> Phrase:
        parameter = self.ir.parameters[name]
        values = ", ".join(
            quantity(v) + (f" from {format_date(since)}" if since else "") for since, v in parameter.values
        )
        return (Ref(anchor("parameter", name), noun(parameter.title or humanize(name)), parameter.title),) + (
            Text(f" ({values})"),
        )

    def _rule(self, name: str) -> Phrase:
        title = self.ir.rules[name].title or humanize(name)
        return (Text("“"), Ref(anchor("rule", name), title, name), Text("”"))

    def fact_path(self, node: Node) -> str | None:
        """The graph's name for a fact path (`model.components`, `c.code` → `model.components[].code`)."""
        if isinstance(node, Name):
            if node.name in self.scope:
                return self.scope[node.name].path
            return node.name if self.ir.kind_of(node.name) == "fact" else None
        if isinstance(node, Attr):
            root, parts = _flatten(node)
            if root in self.scope:
                base = self.scope[root].path
                return f"{base}[].{'.'.join(parts)}" if base else None
            return ".".join([root, *parts]) if self.ir.kind_of(root) == "fact" else None
        return None

    def code(self, node: Node) -> str:
        """The expression as written in the rule language (normalised)."""
        return render(node)


class _Scoped:
    """Within a comprehension: its variable names an item of the iterable."""

    def __init__(self, words: Words, node: Comprehension) -> None:
        self.words, self.node = words, node
        self.saved: _Var | None = None

    def __enter__(self) -> _Var:
        iterable = self.node.iterable
        path = self.words.fact_path(iterable)
        name = _flatten(iterable)[1][-1] if isinstance(iterable, Attr) else getattr(iterable, "name", "")
        var = _Var(_singular(name), path)
        self.saved = self.words.scope.get(self.node.var)
        self.words.scope[self.node.var] = var
        return var

    def __exit__(self, *_: object) -> None:
        if self.saved is None:
            self.words.scope.pop(self.node.var, None)
        else:
            self.words.scope[self.node.var] = self.saved


def _flatten(node: Attr) -> tuple[str, list[str]]:
    """`a.b.c` → ("a", ["b", "c"]); a root that is not a name is shown as its code."""
    parts: list[str] = []
    current: Node = node
    while isinstance(current, Attr):
        parts.insert(0, current.attr)
        current = current.obj
    return (current.name if isinstance(current, Name) else render(current)), parts


def _agree(node: Node, verb: str, rest: str) -> str:
    """ " is given" or " are given", after a plural-looking last word (`scores`, `weights`)."""
    last = node.attr if isinstance(node, Attr) else node.name if isinstance(node, Name) else ""
    plural = last.endswith("s") and not last.endswith("ss") and verb == "is"
    return f" {'are' if plural else verb}{rest}"


def _is_path(node: Node, root: str, attr: str) -> bool:
    return isinstance(node, Attr) and node.attr == attr and isinstance(node.obj, Name) and node.obj.name == root


def _t(text: str) -> Phrase:
    return (Text(text),)
