"""The interval arithmetic and interval comparisons behind ranking under uncertainty
(`engine.evaluation.uncertain`), checked against brute force over every completion.

Every interval with whole-number ends in a small range is tried (exhaustively, not sampled), and
every completion worth trying is a whole number between its ends: a property that holds on that
grid holds for the interval (the operations are monotone in each operand between the ends, or, for
`abs` and division, change direction only at 0). Ends are fresh float objects, so a comparison by
identity (`is`) where equality is meant is caught.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import operator
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel, Field

from engine.core.diagnostics import Span
from engine.core.errors import EvaluationError
from engine.evaluation.uncertain import (
    UNKNOWN,
    Bounder,
    Interval,
    decided_by_bounds,
    possibly_before,
    surely_before,
)
from engine.language.expr import Compare, Const, Name, Node, parse_expression
from tests.conftest import GRANTS, RULES

ORIGIN = Span("rules.yaml", 1, 1)
INF = math.inf


class Given(Bounder):
    """A bounder whose names are missing facts with the given intervals (no policy needed)."""

    def __init__(self, **intervals: Interval) -> None:
        super().__init__(None, self._value)  # type: ignore[arg-type]  # `ir` is read only for names
        self.intervals = intervals

    @staticmethod
    def _value(node: Node) -> Any:
        return node.value if isinstance(node, Const) else UNKNOWN

    def _Name(self, node: Name, depth: int) -> Interval:
        return self.intervals[node.name]


TABLES = frozenset({"aa", "score_table"})  # table parameters, called like functions


def bound(text: str, **intervals: Interval) -> Interval:
    return Given(**intervals).of(parse_expression(text, ORIGIN, callables=TABLES))


def grid(a: Interval) -> range:
    return range(int(a.low), int(a.high) + 1)


def every_interval(lowest: int, highest: int) -> list[Interval]:
    """Every interval with whole-number ends between `lowest` and `highest`, each end a fresh float."""
    return [Interval(float(low), float(high)) for low in range(lowest, highest + 1) for high in range(low, highest + 1)]


# --- the words ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "words", "known", "bounded"),
    [
        (Interval.point(5.0), "5", True, True),
        (Interval.point(2.5), "2.5", True, True),
        (Interval.point("text"), "text", True, True),
        (Interval(1.5, 2.0), "between 1.5 and 2", False, True),
        (Interval(-INF, 5.0), "at most 5", False, False),
        (Interval(3.0, INF), "at least 3", False, False),
        (Interval(-INF, INF), "any value", False, False),
        (Interval.anything(), "any value", False, False),
        (Interval.point(INF), "at least inf", False, False),
        (Interval.point(-INF), "at most -inf", False, False),
        (Interval(2.5, 5 / 2), "2.5", True, True),  # equal ends that are not one object
        (Interval(2.0, 1.0), "between 2 and 1", False, True),  # never built from a fact model that admits a value
        (Interval(0.0, float("inf")), "at least 0", False, False),  # an infinity that is not `math.inf` itself
        (Interval(-INF, float("inf")), "any value", False, False),
        (Interval("a", "b"), "between a and b", False, True),  # texts: `"a" if c else "b"`
    ],
)
def test_an_interval_is_described_in_words_and_knows_whether_it_is_one_value(
    interval: Interval, words: str, known: bool, bounded: bool
) -> None:
    assert (interval.describe(), interval.known, interval.bounded) == (words, known, bounded)


# --- arithmetic ---------------------------------------------------------------------------------

BINARY: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}


@pytest.mark.parametrize("op", sorted(BINARY))
def test_arithmetic_bounds_every_completion_and_reaches_its_bounds(op: str) -> None:
    """`x op y` over two intervals is the smallest interval holding `x op y` for every x and y in them
    (division by an interval holding 0 is unbounded)."""
    node = parse_expression(f"x {op} y", ORIGIN)
    for a, b in itertools.product(every_interval(-3, 3), every_interval(-3, 3)):
        found = Given(x=a, y=b).of(node)
        if op == "/" and b.low <= 0 <= b.high:
            assert (found.low, found.high) == (-INF, INF), (a, b)
            continue
        results = [BINARY[op](x, y) for x in grid(a) for y in grid(b)]
        assert (found.low, found.high) == pytest.approx((min(results), max(results)), abs=1e-9), (a, b)


FUNCTIONS: dict[str, Callable[[int, int], float]] = {
    "-x": lambda x, _: -x,
    "+x": lambda x, _: x,
    "abs(x)": lambda x, _: abs(x),
    "min(x, y)": min,
    "max(x, y)": max,
    "min(x, y, 0)": lambda x, y: min(x, y, 0),
    "round(x / 2)": lambda x, _: round(x / 2),
}


@pytest.mark.parametrize("text", sorted(FUNCTIONS))
def test_functions_and_signs_bound_every_completion_and_reach_their_bounds(text: str) -> None:
    """Negation, `abs`, `min`, `max` and `round` over intervals hold every completion's value; all but
    `round` (which rounds its ends outwards) are as tight as that."""
    node = parse_expression(text, ORIGIN)
    for a, b in itertools.product(every_interval(-3, 3), every_interval(-3, 3)):
        found = Given(x=a, y=b).of(node)
        results = [FUNCTIONS[text](x, y) for x in grid(a) for y in grid(b)]
        assert found.low <= min(results) and max(results) <= found.high, (a, b)
        if text == "round(x / 2)":
            assert (found.low, found.high) == (math.floor(a.low / 2), math.ceil(a.high / 2)), a
        else:
            assert (found.low, found.high) == (min(results), max(results)), (a, b)


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("x if c else y", 1, 9),  # c may be either: both branches
        ("x if yes else y", 1, 3),  # the condition known: only its branch
        ("x if no else y", 7, 9),
        ("x if True else y", 1, 3),
        ("x if c else t", None, None),  # one branch is anything
        ("x if c else s", None, None),  # a number and a text have no interval together
        ("-t", None, None),
        ("-s", None, None),  # a text has no sign
        ("not c", None, None),  # a condition is not a number
        ("aa(x)", None, None),  # a table's row is not bounded here, whatever the table is called
        ("score_table(x)", None, None),
        ("abs(x, y)", None, None),  # not a call the checker lets through
        ("min(x, y, s)", None, None),
        ("+t", None, None),
        ("x + t", None, None),
        ("t * x", None, None),
        ("abs(t)", None, None),
        ("min(x)", None, None),  # one argument: a list, not bounded here
        ("round(x, 1)", None, None),
        ("len(x)", None, None),
        ("x + 2.5", 3.5, 5.5),
        ("x / (y - 10)", -INF, INF),  # y - 10 runs from -3 to -1: no zero; but x / (y - 10) below
        ("x - y", -8, -4),
        ("one / 3", 0.3333333333, 0.3333333333),  # ten places, as the compiler rounds
        ("abs(h)", 0.5, 2.0),  # positive: itself
        ("abs(nh)", 0.25, 0.5),  # negative: mirrored
        ("p + 0.2", 0.3, 0.3),  # rounded to the compiler's places: 0.1 + 0.2 is 0.3, as keys are compared
        ("z * zero", -INF, INF),  # 0 × inf has no value: anything a number may be
    ],
)
def test_what_cannot_be_bounded_is_anything_and_a_known_condition_picks_its_branch(
    text: str, low: Any, high: Any
) -> None:
    x, y = Interval(1, 3), Interval(7, 9)
    given_ = {"c": Interval(False, True), "yes": Interval.point(True), "no": Interval.point(False)}
    given_ |= {"p": Interval(0.1, 0.1), "z": Interval(0.0, INF), "zero": Interval(0.0, 0.0), "one": Interval(1.0, 1.0)}
    given_ |= {"h": Interval(0.5, 2.0), "nh": Interval(-0.5, -0.25)}
    found = bound(text, x=x, y=y, t=Interval.anything(), s=Interval.point("s"), **given_)
    if text == "x / (y - 10)":
        assert (found.low, found.high) == (-3, pytest.approx(-1 / 3))
        return
    assert (found.low, found.high) == (low, high)


def test_a_value_the_evaluator_knows_is_taken_as_it_is_and_an_error_is_anything() -> None:
    node = parse_expression("x + 1", ORIGIN)

    def fails(_: Node) -> Any:
        raise EvaluationError("no value")

    assert Bounder(None, lambda _: 4).of(node) == Interval.point(4)  # type: ignore[arg-type]
    assert Bounder(None, fails).of(node) == Interval.anything()  # type: ignore[arg-type]
    deep = parse_expression("-" * 90 + "x", ORIGIN)
    assert bound("-" * 90 + "x", x=Interval(1, 2)) == Interval(1, 2)  # an even number of signs
    assert Given(x=Interval(1, 2)).of(deep, depth=150) == Interval.anything()  # past 200 levels: anything
    given = Given(x=Interval(1, 2))
    assert given.of(parse_expression("x", ORIGIN), depth=201) == Interval.anything()
    assert given.of(parse_expression("x", ORIGIN), depth=200) == Interval(1, 2)  # 200 itself: still bounded
    assert given.of(parse_expression("-x", ORIGIN), depth=199) == Interval(-2, -1)  # one level a node
    assert given.of(parse_expression("- -x", ORIGIN), depth=101) == Interval(1, 2)


def test_names_are_bounded_from_the_fact_model_and_facts_without_bounds_are_named() -> None:
    from engine import load_policy

    policy = load_policy(RULES)
    bounder = Bounder(policy.ir, lambda _: UNKNOWN)

    def of(text: str) -> Interval:
        return bounder.of(parse_expression(text, ORIGIN, callables=frozenset()))

    assert of("scores.expert + scores.user") == Interval(0.0, 60.0)
    assert of("benchmark_score") == Interval(0.0, 40.0)  # a value: its expression, written out
    assert of("minimum_total_score") == Interval.anything()  # a parameter is known, or nothing
    assert of("model.parameters_billions") == Interval(0.0, INF)  # `gt=0` and no upper bound: one side is enough
    assert bounder.unbounded == set()
    assert of("name") == Interval.anything()  # text: no interval, and said to be unbounded
    assert of("max(scores.expert, 1).real") == Interval.anything()  # not a path of the facts
    assert bounder.unbounded == {"name"}
    for other in ("context", "stage", "stage.rank", "eligible", "eligible.x", "nothing_defined", "nothing_defined.x"):
        assert of(other) == Interval.anything(), other  # not a fact: nothing to bound, and not said to be unbounded
    assert bounder.unbounded == {"name"}
    assert of("context.slots_planned") == Interval(0, INF)  # the cohort's context, read from its own model
    assert bounder.unbounded == {"name"}
    grants = load_policy(GRANTS)
    in_context = Bounder(grants.ir, lambda _: UNKNOWN)
    assert in_context.of(parse_expression("income", ORIGIN)) == Interval(-INF, INF)  # no bound on either side
    assert in_context.of(parse_expression("context.date", ORIGIN)) == Interval.anything()
    assert in_context.unbounded == {"income", "context.date"}
    assert in_context.of(parse_expression("stage.rank", ORIGIN)) == Interval.anything()


# --- comparisons decided from bounds --------------------------------------------------------------

COMPARE: dict[str, Callable[[int, int], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


@pytest.mark.parametrize("op", sorted(COMPARE))
def test_a_comparison_is_decided_exactly_when_every_completion_agrees(op: str) -> None:
    """`x op y` is decided from the bounds (True or False) exactly when every x and y in them give
    that answer; otherwise it stays open (None)."""
    node = parse_expression(f"x {op} y", ORIGIN)
    assert isinstance(node, Compare)
    for a, b in itertools.product(every_interval(-2, 2), every_interval(-2, 2)):  # two lists: no end shared
        answers = {COMPARE[op](x, y) for x in grid(a) for y in grid(b)}
        expected = answers.pop() if len(answers) == 1 else None
        assert decided_by_bounds(Given(x=a, y=b), node) == expected, (a, b)


def test_membership_and_what_has_no_interval_are_never_decided_from_bounds() -> None:
    for text in ("x in y", "x < t", "s == s"):
        node = parse_expression(text, ORIGIN)
        assert isinstance(node, Compare)
        given_ = Given(x=Interval(1, 2), y=Interval(3, 4), t=Interval.anything(), s=Interval.point("s"))
        assert decided_by_bounds(given_, node) is None


# --- ranking subjects whose keys are intervals ----------------------------------------------------


def _before(a: tuple[int, ...], b: tuple[int, ...], descending: tuple[bool, ...]) -> bool:
    for x, y, desc in zip(a, b, descending, strict=True):
        if x != y:
            return x > y if desc else x < y
    return False


@pytest.mark.parametrize("count", [1, 2])
def test_possibly_before_is_exact_and_surely_before_is_sound(count: int) -> None:
    """Over independent keys, `possibly_before` says whether some completion ranks a strictly before b;
    `surely_before` only when every completion does (and, on one key, whenever every one does)."""

    def keys() -> list[tuple[Interval, ...]]:  # built afresh for each side, so no end is shared
        return list(itertools.product(every_interval(-2, 2) if count == 1 else every_interval(-1, 1), repeat=count))

    for a, b, descending in itertools.product(keys(), keys(), itertools.product([False, True], repeat=count)):
        completions = [
            _before(x, y, descending)
            for x in itertools.product(*(grid(k) for k in a))
            for y in itertools.product(*(grid(k) for k in b))
        ]
        surely, possibly = surely_before(a, b, descending), possibly_before(a, b, descending)
        assert possibly == any(completions), (a, b, descending)
        assert not surely or all(completions), (a, b, descending)
        if count == 1 or (a[0].known and b[0].known):
            assert surely == all(completions), (a, b, descending)


@pytest.mark.parametrize(
    ("a", "b", "descending", "surely", "possibly"),
    [
        ([Interval.anything()], [Interval.point(1)], [True], False, True),
        ([Interval.point(1)], [Interval.anything()], [False], False, True),
        ([Interval.point("a")], [Interval.point(1)], [False], False, True),  # text against a number: open
        ([Interval.point("a")], [Interval.point("a")], [False], False, False),  # the same text: a tie
        ([Interval.point("a"), Interval.point(2)], [Interval.point("a"), Interval.point(1)], [False, True], True, True),
        ([Interval(1, 2), Interval.point(1)], [Interval.point("b"), Interval.point(2)], [False, False], False, True),
        ([Interval.point(3), Interval(1, 5)], [Interval.point(3), Interval(6, 9)], [True, False], True, True),
        # a first key that may be anything may also break the tie the other way: the second key cannot decide
        ([Interval.anything(), Interval.point(2)], [Interval.point(1), Interval.point(1)], [False, True], False, True),
    ],
)
def test_keys_without_an_interval_leave_the_order_open_and_equal_texts_tie(
    a: list[Interval], b: list[Interval], descending: list[bool], surely: bool, possibly: bool
) -> None:
    assert (surely_before(a, b, descending), possibly_before(a, b, descending)) == (surely, possibly)


def test_subjects_compared_on_different_numbers_of_keys_is_an_error_not_a_shorter_comparison() -> None:
    one, two = [Interval.point(1)], [Interval.point(1), Interval.point(2)]
    for compare in (surely_before, possibly_before):
        with pytest.raises(ValueError):
            compare(one, two, [True])


def test_an_interval_is_a_value_immutable_and_hashable() -> None:
    interval = Interval(1.0, 2.0)
    assert interval.point(3.0) == Interval.point(3.0) and interval.anything() == Interval.anything()  # static
    assert {interval: "x"}[Interval(1.0, 2.0)] == "x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        interval.low = 0.0  # type: ignore[misc]


class _Inner(BaseModel):
    depth: float = Field(ge=0, le=5)


class _Middle(BaseModel):
    inner: _Inner


class _Outer(BaseModel):
    middle: _Middle


class _Subject(BaseModel):
    outer: _Outer


def test_a_fact_deep_in_nested_records_is_bounded_by_its_own_field() -> None:
    """`outer.middle.inner.depth`: the path is read root first, however deep, to find the field's bounds."""
    ir = SimpleNamespace(
        kind_of=lambda name: "fact" if name == "outer" else None,
        schema=SimpleNamespace(subject=_Subject, cohort=None, context_field=None),
    )
    bounder = Bounder(ir, lambda _: UNKNOWN)  # type: ignore[arg-type]
    assert bounder.of(parse_expression("outer.middle.inner.depth", ORIGIN)) == Interval(0, 5)
    assert bounder.unbounded == set()
