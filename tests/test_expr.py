"""The expression language: what parses, what is refused, and where nodes point."""

from __future__ import annotations

import ast
import warnings

import pytest

from engine.core.diagnostics import Span
from engine.language.expr import (
    Attr,
    BoolOp,
    Compare,
    Comprehension,
    Const,
    IsNone,
    ParseError,
    parse_expression,
    render,
)
from engine.source.yamlsource import parse_yaml

ORIGIN = Span("rules.yaml", 3, 11)


@pytest.mark.parametrize(
    "text",
    [
        "scores.expert >= 27.0",
        "not sovereign and (a or b)",
        "1 < x <= 3",
        "x in ['a', 'b'] and y not in xs",
        "c.weights is None or c.weights.origin == 'team'",
        "all(c.weights.origin == 'team' for c in model.components if c.weights is not None)",
        "count(s.outcome == 'eliminated' for s in history.stages) + len(xs) * 2 - 1 / 4",
        "[c for c in model.components if c.kind == 'vision_encoder']",
        "max(a, b) if flag else min(xs)",
        "round(abs(-x), 1)",
    ],
)
def test_allowed_expressions_parse_and_render_back(text: str) -> None:
    node = parse_expression(text, ORIGIN)
    assert parse_expression(render(node), ORIGIN) == node  # render is a fixed point


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("__import__('os')", "function `__import__` is not available"),
        ("open('x')", "function `open` is not available"),
        ("x.__class__", "attribute `__class__` is not allowed"),
        ("_private", "name `_private` is not allowed"),
        ("xs[0]", "is not allowed in a rule expression"),
        ("lambda: 1", "is not allowed in a rule expression"),
        ("x ** 2", "operator in `x ** 2` is not allowed"),
        ("x is 3", "`is` only compares with `None`"),
        ("any(xs)", "`any` takes a `for` expression"),
        ("len(c for c in xs)", "`len` cannot take a `for` expression"),
        ("f'{x}'", "is not allowed in a rule expression"),
        ("x >", "invalid syntax"),
        ("", "expression is empty"),
    ],
)
def test_anything_outside_the_language_is_refused_with_a_located_diagnostic(text: str, fragment: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_expression(text, ORIGIN)
    diagnostic = caught.value.diagnostic
    assert diagnostic.code == "invalid-expression"
    assert fragment in diagnostic.message
    assert diagnostic.span is not None and diagnostic.span.file == "rules.yaml" and diagnostic.span.line == 3


@pytest.mark.parametrize(
    ("text", "fragment", "column"),
    [
        ("total >= 70and eligible", "invalid decimal literal", 11 + 10),
        ('kind == "\\d"', "invalid escape sequence", 11 + 8),
    ],
)
def test_what_pythons_parser_only_warns_of_is_a_located_error(text: str, fragment: str, column: int) -> None:
    # a block that restores the filters it found (one around the engine's import would drop the engine's) and
    # one that shows every warning (as pytest's does) before them: the parse puts its filters back in front
    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("always")
        with pytest.raises(ParseError) as caught:
            parse_expression(text, ORIGIN)
    diagnostic = caught.value.diagnostic
    assert diagnostic.code == "invalid-expression" and fragment in diagnostic.message
    assert diagnostic.span == Span("rules.yaml", 3, column)


def test_the_expressions_warning_filters_touch_nothing_else_the_process_parses() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        parse_expression("a and b", ORIGIN)  # puts the expressions' filters first
        with pytest.raises(SyntaxError, match="invalid decimal literal"):
            ast.parse("70and x", "<rule expression>")  # under the expressions' own name: an error
        ast.parse("70and x")  # any other code's text: Python's warning, as before, not an error
    assert [w.category for w in seen] == [SyntaxWarning]


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("kind in ['north' 'south']", 3, 11 + 17),
        ('kind in ["north", "we\\"st" "south"]', 3, 11 + 27),
        ("kind in ['north'\n  'south']", 4, 3),
    ],
)
def test_texts_side_by_side_are_refused_at_the_second(text: str, line: int, column: int) -> None:
    with pytest.raises(ParseError) as caught:
        parse_expression(text, ORIGIN)
    diagnostic = caught.value.diagnostic
    assert diagnostic.code == "invalid-expression" and "would be read as one" in diagnostic.message
    assert diagnostic.span == Span("rules.yaml", line, column)


@pytest.mark.parametrize("text", ["kind == 'it\\'s'", 'kind == "a \\"b\\""', "kind == '''one'''", "kind == r'\\d'"])
def test_one_text_with_escapes_or_quotes_of_its_own_is_one_text(text: str) -> None:
    node = parse_expression(text, ORIGIN)
    assert isinstance(node, Compare) and isinstance(node.right, Const) and isinstance(node.right.value, str)


def test_chained_comparison_becomes_a_conjunction() -> None:
    node = parse_expression("1 < x <= 3", ORIGIN)
    assert isinstance(node, BoolOp) and node.op == "and"
    assert [c.op for c in node.operands if isinstance(c, Compare)] == ["<", "<="]


def test_is_none_and_comprehension_nodes() -> None:
    assert isinstance(parse_expression("x is not None", ORIGIN), IsNone)
    node = parse_expression("any(c.ok for c in xs if c.on)", ORIGIN)
    assert isinstance(node, Comprehension) and node.kind == "any" and node.var == "c" and node.condition is not None


def test_spans_point_at_each_name_and_do_not_affect_equality() -> None:
    node = parse_expression("scores.benchmrk.nia + 1", ORIGIN)
    inner = node.left.obj  # type: ignore[union-attr]
    assert isinstance(inner, Attr) and inner.attr == "benchmrk"
    assert inner.attr_span == Span("rules.yaml", 3, 18)
    assert parse_expression("scores.benchmrk.nia + 1", Span("other.yaml", 9, 1)) == node


def test_positions_inside_folded_yaml_map_back_to_the_original_lines() -> None:
    text = "rule:\n  when: >-\n    a and\n      b.c == 'x'\n"
    document = parse_yaml(text, "f.yaml")
    expression = document.data["rule"]["when"]
    node = parse_expression(expression, Span("f.yaml", 2, 9), document.source.locator(("rule", "when"), expression))
    right = node.operands[1]  # type: ignore[union-attr]
    assert right.right.span == Span("f.yaml", 4, 14)  # the 'x' literal: six spaces, then `b.c == `
