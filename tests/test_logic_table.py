"""Semantics tables: the three-valued logic row by row, and the durable lowering of every comparison.

Each row is a rule (or a value) of a small package built on the grants fact model, decided on
every backend. `U` is undetermined (missing facts). The durable backend decides rules in Rete
and computes values in Python, so rows appear as rules (lowered) and as values (closures).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine import load_policy
from engine.evaluation.compiler import Missing

GRANTS = Path(__file__).parent / "fixtures" / "grants"
U = "undetermined"

# The subject: age 30, income missing, documents [identity ?, tax_return ✓, identity ✗].
# Rules t (true), f (false) and u (undetermined: income is missing) are the operands.
BASE_RULES = {"t": "age >= 18", "f": "age < 18", "u": "income > 0"}

LOGIC: list[tuple[str, Any]] = [
    # and
    ("t and t", True),
    ("t and f", False),
    ("f and t", False),
    ("f and f", False),
    ("f and u", False),
    ("u and f", False),
    ("t and u", U),
    ("u and t", U),
    ("u and u", U),
    ("t and t and u", U),
    ("u and t and f", False),
    # or
    ("t or t", True),
    ("t or f", True),
    ("f or t", True),
    ("f or f", False),
    ("t or u", True),
    ("u or t", True),
    ("f or u", U),
    ("u or f", U),
    ("u or u", U),
    ("u or f or t", True),
    ("f or f or u", U),
    # not, and its pushing through and/or
    ("not t", False),
    ("not f", True),
    ("not u", U),
    ("not (u and f)", True),
    ("not (u and t)", U),
    ("not (u or t)", False),
    ("not (u or f)", U),
    ("not not u", U),
    ("not (not t or u)", U),
    ("not (not t and u)", True),
    # comparisons with a missing operand, and `is None`
    ("income > 0", U),
    ("income <= 0", U),
    ("income == 5", U),
    ("income != 5", U),
    ("not (income < 5)", U),
    ("income is None", True),
    ("income is not None", False),
    ("age is None", False),
    ("age is not None", True),
    # quantifiers over lists with an unknown item (documents[0].verified)
    ("any(d.verified for d in documents)", True),
    ("all(d.verified for d in documents)", False),
    ("any(d.verified for d in documents if d.kind == 'identity')", U),
    ("all(d.verified for d in documents if d.kind == 'identity')", False),
    ("any(d.verified for d in documents if d.kind == 'tax_return')", True),
    ("all(d.verified for d in documents if d.kind == 'tax_return')", True),
    ("all(d.verified for d in documents if d.kind == 'tax_return' and not d.verified)", True),
    ("any(d.verified for d in documents if d.kind == 'tax_return' and not d.verified)", False),
    ("not any(d.verified for d in documents if d.kind == 'identity')", U),
    ("count(d.verified for d in documents) >= 1", U),
    ("count(d.verified for d in documents if d.kind == 'tax_return') == 1", True),
    ("count(d.kind == 'identity' for d in documents) == 2", True),
    ("sum(1 for d in documents if d.verified) >= 1", U),
    ("sum(1 for d in documents if d.kind == 'identity') == 2", True),
    ("sum(age for d in documents) == 90", True),
    # conditional expressions: only the branch taken matters
    ("(1 if t else 2) == 1", True),
    ("(1 if f else 2) == 1", False),
    ("(1 if u else 1) == 1", U),  # bounds decide orderings only (README), not `==`
    ("(1 if u else 2) == 1", U),
    ("(1 if u else 2) > 0", True),  # an ordering: true over the whole range 1..2, whatever `u` is
    ("(1 if u else 2) > 1", U),
    ("(income if f else 5) == 5", True),
    ("(income if t else 5) == 5", U),
    ("t if u else t", U),
    ("u if f else t", True),
]

SUBJECT = {
    "id": "a",
    "age": 30,
    "documents": [
        {"kind": "identity", "verified": None},
        {"kind": "tax_return", "verified": True},
        {"kind": "identity", "verified": False},
    ],
}


def _inline(expr: str) -> str:
    """`expr` with the rules t, f and u written out as the comparisons they stand for."""
    return re.sub(r"\b[tfu]\b", lambda m: f"({BASE_RULES[m.group(0)]})", expr)


def _quoted(expr: str) -> str:
    return "'" + expr.replace("'", "''") + "'"


def _package(folder: Path, rules: dict[str, str], values: dict[str, str]) -> Path:
    """The grants package with `rules` and `values` added (its own rules and stage unchanged)."""
    shutil.copytree(GRANTS, folder)
    text = (folder / "policy.yaml").read_text(encoding="utf-8")
    added_rules = "".join(
        f"  - id: {name}\n    title: row {name}\n    reference: test\n    when: {_quoted(expr)}\n"
        for name, expr in rules.items()
    )
    added_values = "".join(
        f"  {name}:\n    title: row {name}\n    expr: {_quoted(expr)}\n" for name, expr in values.items()
    )
    text = text.replace("\nrules:\n", "\nrules:\n" + added_rules, 1)
    text = text.replace("\nvalues:\n", "\nvalues:\n" + added_values, 1)
    (folder / "policy.yaml").write_text(text, encoding="utf-8")
    return folder


BACKENDS = ["generated", "python", pytest.param("durable", marks=pytest.mark.durable)]


def _backend(name: str) -> None:
    if name == "durable":
        pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")


@pytest.fixture(scope="module")
def logic_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rules = dict(BASE_RULES) | {f"row{i}": expr for i, (expr, _) in enumerate(LOGIC)}
    rules |= {f"inline{i}": _inline(expr) for i, (expr, _) in enumerate(LOGIC)}
    values = {f"value{i}": _inline(expr) for i, (expr, _) in enumerate(LOGIC)}
    return _package(tmp_path_factory.mktemp("logic") / "pkg", rules, values)


def _shown(value: Any) -> Any:
    return U if isinstance(value, Missing) else value


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_row_of_the_three_valued_logic_on_every_backend(logic_package: Path, backend: str) -> None:
    """Every row of the table, as a rule over rules, as a rule over facts and as a value, gives its
    expected value (True, False or undetermined)."""
    _backend(backend)
    policy = load_policy(logic_package, backend=backend)
    trace = policy.evaluate({"context": {"stage": "award", "date": "2026-03-01"}, "applicants": [SUBJECT]})
    decision = trace.decisions["a"]
    assert {n: _shown(decision.trace[n]) for n in BASE_RULES} == {"t": True, "f": False, "u": U}
    wrong = [
        (expr, kind, expected, _shown(decision.trace[f"{kind}{i}"]))
        for i, (expr, expected) in enumerate(LOGIC)
        for kind in ("row", "inline", "value")
        if _shown(decision.trace[f"{kind}{i}"]) != expected
    ]
    assert wrong == []


def test_an_undetermined_row_names_the_missing_fact(logic_package: Path) -> None:
    """An undetermined result names exactly the facts it waits for."""
    decision = (
        load_policy(logic_package)
        .evaluate({"context": {"stage": "award", "date": "2026-03-01"}, "applicants": [SUBJECT]})
        .decisions["a"]
    )
    by_expr = {expr: decision.trace[f"row{i}"] for i, (expr, _) in enumerate(LOGIC)}
    assert by_expr["u or f"].paths == frozenset({"income"})
    assert by_expr["any(d.verified for d in documents if d.kind == 'identity')"].paths == frozenset(
        {"documents[0].verified"}
    )


# --- the durable lowering of every comparison, both polarities, against constants and facts ---

OPERATORS = ["<", "<=", ">", ">=", "==", "!="]
INCOMES = [999.0, 1000.0, 1001.0]  # below, at and above the constant 1000 (and the fact `age * 100`, age 10)


def _lowering_rules() -> dict[str, str]:
    rules: dict[str, str] = {}
    for k, op in enumerate(OPERATORS):
        rules[f"c{k}"] = f"income {op} 1000"  # fact against a constant
        rules[f"n{k}"] = f"not (income {op} 1000)"  # negated: the lowering flips the operator
        rules[f"l{k}"] = f"1000 {op} income"  # constant on the left
        rules[f"m{k}"] = f"not (1000 {op} income)"
        rules[f"p{k}"] = f"income {op} income_cap"  # against a parameter (a constant of the ruleset)
        rules[f"q{k}"] = f"not (income {op} income_cap)"
        rules[f"v{k}"] = f"income {op} age * 100"  # against another fact: computed, then asserted
        rules[f"w{k}"] = f"not (income {op} age * 100)"
        rules[f"o{k}"] = f"income < 0 or not (income {op} 1000)"  # inside a disjunction: one durable rule per part
        rules[f"a{k}"] = f"income > 0 and not (income {op} 1000)"
        rules[f"g{k}"] = f"income {op} -(age * -100)"  # a negated expression of a fact: computed, not a constant
    return rules


@pytest.fixture(scope="module")
def lowering_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rules = dict(BASE_RULES) | _lowering_rules()
    return _package(tmp_path_factory.mktemp("lowering") / "pkg", rules, {})


def _expected(op: str, left: float, right: float) -> bool:
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}.get(
        op, left == right if op == "==" else left != right
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("income", INCOMES)
def test_every_comparison_in_both_polarities_against_constants_and_facts(
    lowering_package: Path, backend: str, income: float
) -> None:
    """Each comparison operator, plain and negated, with the constant left or right, against a
    parameter and against another fact, decides as Python's comparison does; a missing fact leaves
    every one undetermined."""
    _backend(backend)
    policy = load_policy(lowering_package, backend=backend)
    people = [dict(SUBJECT, id="a", age=10, income=income), dict(SUBJECT, id="gone", age=10)]
    result = policy.evaluate({"context": {"stage": "award", "date": "2026-03-01"}, "applicants": people})
    known, unknown = result.decisions["a"].trace, result.decisions["gone"].trace
    cap = 30000.0  # income_cap in force on 2026-03-01
    for k, op in enumerate(OPERATORS):
        plain, mirrored = _expected(op, income, 1000.0), _expected(op, 1000.0, income)
        expected = {
            "c": plain,
            "n": not plain,
            "l": mirrored,
            "m": not mirrored,
            "p": _expected(op, income, cap),
            "q": not _expected(op, income, cap),
            "v": plain,
            "w": not plain,
            "o": not plain,
            "a": not plain,
            "g": plain,
        }
        got = {prefix: known[f"{prefix}{k}"] for prefix in expected}
        assert got == expected, op
        assert all(isinstance(unknown[f"{prefix}{k}"], Missing) for prefix in expected if prefix not in "oa"), op


# --- what the durable backend hands to Rete: comparisons with constants are Rete tests --------

DURABLE_TEST = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "!=": "$neq", "==": None}
NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _tests_of(lowering: Any, name: str, value: bool) -> list[list[dict[str, Any]]]:
    """The subject tests of each durable rule that concludes `name` = `value`, fields by their
    expression: the side lowered for every subject if it is that one, else the other, behind its gate."""
    from engine.language.expr import render

    found = []
    rules = [
        (rule, gated)
        for rule, (item, concluded, gated) in lowering.meaning.items()
        if (item, concluded) == (name, value)
    ]
    every = not all(gated for _, gated in rules)  # the side lowered for every subject, if this is it
    for rule, gated in rules:
        if gated and every:
            continue
        ((condition,),) = [c.values() for c in lowering.rules[rule]["all"]]
        subject = condition.get("$and", [condition])[1:]  # after the part the tests read
        tests = []
        for test in subject:
            op, inner = next(iter(test.items())) if next(iter(test)).startswith("$") else (None, test)
            ((field, constant),) = inner.items()
            if field.startswith("g"):  # the gate of the side lowered only where a field is missing
                continue
            tests.append({"op": op, "field": render(lowering.fields[field]), "value": constant})
        found.append(tests)
    return found


def test_the_durable_lowering_puts_every_comparison_with_a_constant_into_rete(lowering_package: Path) -> None:
    """Each comparison of a fact with a constant, in both polarities and either order, becomes one
    Rete test on the fact alone (its operator negated or mirrored as needed), not a value computed
    in Python; a comparison of two facts is computed in Python and tested for True or False."""
    pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    from engine.evaluation.durable.backend import _Lowering

    policy = load_policy(lowering_package, backend="durable")
    lowering = _Lowering(policy.compiled, policy.compiled.parameters_on(dt.date(2026, 3, 1)))
    rules = _lowering_rules()
    for name in rules:
        lowering.lower(name, policy.ir.rules[name].when)
    for k, op in enumerate(OPERATORS):
        for holds in (True, False):
            plain = op if holds else NEGATED[op]
            mirrored = MIRRORED[op] if holds else NEGATED[MIRRORED[op]]
            assert _tests_of(lowering, f"c{k}", holds) == [
                [{"op": DURABLE_TEST[plain], "field": "income", "value": 1000}]
            ]
            assert _tests_of(lowering, f"n{k}", not holds) == _tests_of(lowering, f"c{k}", holds)
            assert _tests_of(lowering, f"l{k}", holds) == [
                [{"op": DURABLE_TEST[mirrored], "field": "income", "value": 1000}]
            ]
            assert _tests_of(lowering, f"p{k}", holds) == [
                [{"op": DURABLE_TEST[plain], "field": "income", "value": 30000}]
            ]
            computed = [[{"op": None, "field": f"income {op} age * 100", "value": holds}]]
            assert _tests_of(lowering, f"v{k}", holds) == computed


def test_the_durable_lowering_of_membership_in_a_constant_list(tmp_path: Path) -> None:
    """`x in list_parameter` holds through any one `==` test (one durable rule each) and fails through
    all the `!=` tests together; `not in` the other way round (its `==` alternatives, lowered for every
    subject, each requiring the earlier ones not to hold); both backends agree on the answers."""
    pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    from engine.evaluation.durable.backend import _Lowering

    rules = {"inside": "age in listed_ages", "outside": "age not in other_ages"}
    package = _package(tmp_path / "pkg", dict(BASE_RULES) | rules, {})
    listed = (
        "  listed_ages:\n    title: ages\n    reference: test\n    value: [18, 30, 65]\n"
        "  other_ages:\n    title: ages\n    reference: test\n    value: [18, 30]\n"
    )
    text = (package / "policy.yaml").read_text(encoding="utf-8")
    (package / "policy.yaml").write_text(text.replace("\nparameters:\n", "\nparameters:\n" + listed, 1), "utf-8")
    policy = load_policy(package, backend="durable")
    lowering = _Lowering(policy.compiled, policy.compiled.parameters_on(dt.date(2026, 3, 1)))
    for name in rules:
        lowering.lower(name, policy.ir.rules[name].when)
    equal = [[{"op": None, "field": "age", "value": v}] for v in (18, 30, 65)]
    assert sorted(_tests_of(lowering, "inside", True), key=str) == sorted(equal, key=str)
    assert _tests_of(lowering, "inside", False) == [[{"op": "$neq", "field": "age", "value": v} for v in (18, 30, 65)]]
    assert _tests_of(lowering, "outside", True) == [[{"op": "$neq", "field": "age", "value": v} for v in (18, 30)]]
    # lowered for every subject: each alternative also requires the earlier ones not to hold (one fires)
    first, second = ({"op": None, "field": "age", "value": v} for v in (18, 30))
    not_first = {"op": "$neq", "field": "age", "value": 18}
    assert sorted(_tests_of(lowering, "outside", False), key=len) == [[first], [not_first, second]]
    for backend in ("generated", "python", "durable"):
        decided = load_policy(package, backend=backend)
        for age, inside, outside in ((30, True, False), (40, False, True), (65, True, True)):
            subject = dict(SUBJECT, age=age, income=10.0)
            cohort = {"context": {"stage": "award", "date": "2026-03-01"}, "applicants": [subject]}
            trace = decided.evaluate(cohort).decisions["a"].trace
            assert (trace["inside"], trace["outside"]) == (inside, outside), (backend, age)


# --- numbers that are not finite are errors, never values ----------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("expr", "income"),
    [
        ("income * 10 > 0", 1e308),  # overflows to inf
        ("income * 0 == 0", float("inf")),  # nan
        ("-income < 0", float("inf")),  # a fact given as inf, negated
        ("income + 1 > 0", float("nan")),
    ],
)
def test_a_computation_that_is_not_finite_is_a_located_error(
    tmp_path: Path, backend: str, expr: str, income: float
) -> None:
    _backend(backend)
    from engine import EvaluationError

    policy = load_policy(_package(tmp_path / "pkg", dict(BASE_RULES) | {"big": expr}, {}), backend=backend)
    subject = dict(SUBJECT, income=income)
    with pytest.raises(EvaluationError, match=r"policy\.yaml:\d+:\d+: .*(finite|too large)"):
        # no stage reads `big`: it is settled when the trace is read for it (on either backend)
        result = policy.evaluate({"context": {"stage": "award", "date": "2026-03-01"}, "applicants": [subject]})
        result.decisions["a"].trace["big"]


def test_what_no_stage_reads_is_settled_only_when_the_trace_is_read(tmp_path: Path) -> None:
    """A rule the stage does not need is not evaluated while deciding (an error in it does not stop the
    cohort), and reading the trace settles it, in the decision's own state."""
    from engine import EvaluationError

    policy = load_policy(_package(tmp_path / "pkg", dict(BASE_RULES) | {"big": "income * 10 > 0"}, {}))
    cohort = {"context": {"stage": "award", "date": "2026-03-01"}, "applicants": [dict(SUBJECT, income=1e308)]}
    decision = policy.evaluate(cohort).decisions["a"]  # decided: the stage reads only `eligible`
    assert (
        decision.outcome == policy.evaluate({**cohort, "applicants": [dict(SUBJECT, income=5)]}).decisions["a"].outcome
    )
    with pytest.raises(EvaluationError, match="finite|too large"):
        decision.trace["big"]
    fine = policy.evaluate({**cohort, "applicants": [dict(SUBJECT, income=5)]}).decisions["a"]
    assert fine.trace["big"] is True and set(fine.trace) >= {"big", "t", "f", "u"}


@pytest.mark.parametrize("first", [True, False])
def test_durable_conclusions_that_contradict_each_other_are_an_error(lowering_package: Path, first: bool) -> None:
    """Were Rete to conclude a rule both true and false (a lowering bug), evaluation stops with a
    BackendError, whichever conclusion came first; it never keeps one of them silently."""
    pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    from engine import BackendError
    from engine.evaluation.compiler import Scope
    from engine.evaluation.durable.backend import _Compiled

    policy = load_policy(lowering_package, backend="durable")
    params = policy.compiled.parameters_on(dt.date(2026, 3, 1))
    compiled = _Compiled(policy.compiled, params, ("f", "c0"), None, rows=True)
    assert not compiled.python_first
    # `f` fails (age < 18) and `c0` fails (income < 1000) for this subject: "f__f0" and "c0__f0" both fire.
    (level,) = compiled.levels
    level.meaning["f__f0"], level.meaning["c0__f0"] = ("f", first, False), ("f", not first, False)
    applicant = dict(SUBJECT, income=5000.0)
    subject = policy.load_cohort({"context": {"stage": "award", "date": "2026-03-01"}, "applicants": [applicant]})
    scope = Scope(subject.applicants[0], None, params)
    with pytest.raises(BackendError, match=r"^durable_rules concluded both true and false for `f`$"):
        compiled.decide(scope)
    compiled.close()
