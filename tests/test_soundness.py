"""Sound checking: a package that `policy check` accepts evaluates every valid fact file, and
explains, answers why-not and renders its report, without an internal error (issue 9).

Runtime problems the checker cannot rule out (a number that overflows, a fact given as `inf`)
are `EvaluationError`s that name the expression and its file:line:col; deep nesting is refused
at load time with a located `too-deep` diagnostic, so no pass recurses past Python's limit.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import EngineError, Policy, PolicyError, load_policy
from engine.cli import main
from engine.explanation.report import render_report
from engine.language.expr import MAX_EXPRESSION_DEPTH

GRANTS = Path(__file__).parent / "fixtures" / "grants"
LOCATED = re.compile(r":\d+:\d+")
BACKENDS = ["generated", "python", pytest.param("durable", marks=pytest.mark.durable)]
VALUE = "expr: count(d.verified for d in documents)"
RULE = "when: age >= minimum_age"
BATCH: dict[str, Any] = {
    "context": {"stage": "award", "date": "2026-03-01"},
    "applicants": [
        {"id": "a", "income": 20000.0, "age": 30, "documents": [{"kind": "tax_return", "verified": True}]},
        {"id": "b", "income": 1e308, "age": 17, "documents": [{"kind": "identity"}]},
        {"id": "c", "documents": []},
    ],
}


def _package(tmp: Path, edits: dict[str, str]) -> Path:
    package = tmp / "grants"
    shutil.rmtree(package, ignore_errors=True)
    shutil.copytree(GRANTS, package, ignore=shutil.ignore_patterns("__pycache__"))
    text = (package / "policy.yaml").read_text(encoding="utf-8")
    for old, new in edits.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    (package / "policy.yaml").write_text(text, encoding="utf-8")
    return package


def _quoted(expression: str) -> str:
    return "'" + expression.replace("'", "''") + "'"


def _with_value(tmp: Path, expression: str) -> Path:
    """The grants package whose value `verified_documents` is `expression`, used by rule `adult`."""
    rule = "when: age >= minimum_age and verified_documents == verified_documents"
    return _package(tmp, {VALUE: f"expr: {_quoted(expression)}", RULE: rule})


def _with_rule(tmp: Path, expression: str) -> Path:
    return _package(tmp, {RULE: f"when: {_quoted(expression)}"})


def _diagnostics(package: Path) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy(package)
    return [d.render().splitlines()[0].replace(f"{package}/", "") for d in caught.value.diagnostics]


def _exercise(policy: Policy) -> None:
    """Evaluate the batch, then explain, ask why-not and render the report for every decision."""
    result = policy.evaluate(BATCH)
    outcomes = [row.outcome for row in policy.ir.stages["award"].outcomes]
    for decision in result.decisions.values():
        explanation = decision.explain()
        explanation.to_text(), explanation.to_json(), explanation.to_dot(), explanation.to_mermaid()
        for outcome in outcomes:
            if outcome != decision.outcome:
                decision.why_not(outcome).to_text()
    render_report(policy, result)


# --- checked packages that crashed at evaluation ---------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (
            'sum(c for c in [1, "a"])',
            "policy.yaml:29:31: error[type-mismatch]: the items of a list must have one type: "
            "this is text, the items before it are number",
        ),
        (
            'sum(sum(x for x in c) for c in [[], ["a"]])',
            "policy.yaml:29:20: error[type-mismatch]: `sum` needs numbers, but this is text",
        ),
        (
            "round(income, 0.5)",
            "policy.yaml:29:26: error[type-mismatch]: the number of places of `round` must be a whole number, "
            "but this is `0.5`",
        ),
        (
            "len(age)",
            "policy.yaml:29:16: error[type-mismatch]: the argument of `len` must be a list or text, but this is number",
        ),
        (
            "max(context.date, age)",
            "policy.yaml:29:30: error[type-mismatch]: `max` needs values of one type: this is number, before it date",
        ),
        ("sum(1, 2)", "policy.yaml:29:12: error[bad-call]: `sum` takes 1 argument, not 2"),
        ("1" + "0" * 400 + " + 0.5", "policy.yaml:29:12: error[invalid-expression]: number is too large"),
        ("income * 1e999", "policy.yaml:29:21: error[invalid-expression]: number is too large"),
    ],
)
def test_ill_typed_expressions_are_located_check_errors(tmp_path: Path, expression: str, expected: str) -> None:
    assert _diagnostics(_with_value(tmp_path, expression)) == [expected]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_list_takes_the_common_type_of_all_its_items(tmp_path: Path, backend: str) -> None:
    if backend == "durable":
        pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    policy = load_policy(_with_value(tmp_path, "sum(len(c) for c in [[], [age], [income, 1]])"), backend=backend)
    result = policy.evaluate(BATCH)
    assert result.decisions["a"].trace["verified_documents"] == 3
    _exercise(policy)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("income * 10", "policy.yaml:29:12: `income * 10` does not give a finite number"),
        ("sum(x for x in [income, income])", "policy.yaml:29:12: `sum((x for x in [income, income]))` does not give"),
        (
            "round(age, income / 3)",
            "policy.yaml:29:12: cannot evaluate `round(age, income / 3)`: the number of places must be a whole number",
        ),
    ],
)
def test_runtime_overflow_and_bad_arguments_are_located_evaluation_errors(
    tmp_path: Path, backend: str, expression: str, message: str
) -> None:
    if backend == "durable":
        pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    policy = load_policy(_with_value(tmp_path, expression), backend=backend)
    with pytest.raises(EngineError) as caught:
        policy.evaluate(BATCH)
    assert str(caught.value).replace(f"{tmp_path}/grants/", "").startswith(message)


def test_a_missing_item_of_a_list_is_missing_data_not_a_crash(tmp_path: Path) -> None:
    policy = load_policy(_with_value(tmp_path, "sum(x for x in [None, age])"))
    decision = policy.evaluate(BATCH).decisions["a"]
    assert decision.trace["verified_documents"].paths == frozenset({"[None, age][0]"})


# --- deep expressions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "not " * 400 + "True",
        " + ".join(["age"] * 500) + " > 0",
        "(age " + "if age > 1 else age " * 500 + ") > 0",
        " + ".join(["age"] * 350) + " > 0",
        "(" * 250 + "age > 0" + ")" * 250,
        "-" * 5000 + "age > 0",
    ],
)
def test_deep_expressions_are_refused_at_load_with_a_located_diagnostic(tmp_path: Path, expression: str) -> None:
    found = _diagnostics(_with_rule(tmp_path, expression))
    assert len(found) == 1 and LOCATED.search(found[0]), found
    assert "error[too-deep]" in found[0] or "error[invalid-expression]" in found[0], found


def test_an_expression_at_the_depth_limit_loads_evaluates_explains_and_reports(tmp_path: Path) -> None:
    expression = "not " * (MAX_EXPRESSION_DEPTH - 8) + "(age >= minimum_age)"  # `eligible` and the pool add levels
    policy = load_policy(_with_rule(tmp_path, expression))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(500)  # every pass keeps well under Python's limit at the depth limit
    try:
        _exercise(policy)
    finally:
        sys.setrecursionlimit(limit)


def _chain(length: int, first_title: str = "v0") -> dict[str, str]:
    """The edit that gives the grants package the values `v0` (the age) to `v{length - 1}`, each one more than
    the one before."""
    chain = "".join(f"  v{i}:\n    title: v{i}\n    expr: v{i - 1} + 1\n" for i in reversed(range(1, length)))
    return {"\nvalues:\n": "\nvalues:\n" + chain + f"  v0:\n    title: {first_title}\n    expr: age\n"}


def _chained(tmp: Path, length: int, first_title: str = "v0") -> Path:
    """The grants package with `_chain`'s values, and the rule `adult` reading the last."""
    return _package(tmp, {**_chain(length, first_title), RULE: f"when: age >= minimum_age and v{length - 1} > 0"})


def test_long_chains_of_definitions_are_refused_not_a_recursion_error(tmp_path: Path) -> None:
    found = _diagnostics(_chained(tmp_path, 1000))
    assert len(found) == 1 and "error[too-deep]: value `v50` nests 101 levels deep" in found[0], found


def test_a_chain_too_deep_is_refused_beside_warnings(tmp_path: Path) -> None:
    """The depth of definitions written out in place is checked whenever there is no error yet, warnings or
    not (here every text not given in Korean, once one is)."""
    found = _diagnostics(_chained(tmp_path, 120, first_title="{en: v0, ko: v0}"))
    assert any("warning[missing-translation]" in f for f in found), found
    assert [f for f in found if "error" in f] == [f for f in found if "error[too-deep]: value `v" in f] != [], found


def test_an_outcome_row_too_deep_with_what_it_uses_written_out_is_refused(tmp_path: Path) -> None:
    """A stage's outcome rows are held to the depth limit as definitions are: `v49` nests 99 levels with the
    values it uses written out (no definition is too deep), and a row comparing it nests 101."""
    package = _package(tmp_path, {**_chain(50), "when: not within_grants": "when: v49 > 0"})
    found = _diagnostics(package)
    assert len(found) == 1 and "error[too-deep]: outcome row 2 of stage `award` nests 101 levels deep" in found[0]


def test_the_cli_reports_deep_and_overflowing_packages_without_an_internal_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = _with_rule(tmp_path / "deep", " + ".join(["age"] * 500) + " > 0")
    assert main(["check", str(deep)]) != 0
    out, err = capsys.readouterr()
    assert "error[too-deep]" in out + err and "internal error" not in out + err
    facts = tmp_path / "batch.yaml"
    facts.write_text(
        "context: {stage: award, date: 2026-03-01}\napplicants:\n  - {id: a, income: 1.0e+308, age: 30}\n",
        encoding="utf-8",
    )
    overflowing = _with_value(tmp_path / "overflow", "income * 10")
    assert main(["check", str(overflowing)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(overflowing), str(facts)]) != 0
    out, err = capsys.readouterr()
    assert "does not give a finite number" in err and "internal error" not in out + err
    assert LOCATED.search(err)


# --- the property ------------------------------------------------------------------------------

_NUMBERS = st.sampled_from(["age", "income", "minimum_age", "income_cap", "0", "1", "2.5", "-3", "1e308", "1e999"])
_TEXTS = st.sampled_from(['"a"', "region", '"north"'])
_LEAVES = st.one_of(_NUMBERS, _TEXTS, st.sampled_from(["True", "None", "[]", "documents", "context.date"]))


def _grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    two = st.tuples(inner, inner)
    return st.one_of(
        two.flatmap(lambda ab: st.sampled_from(["+", "-", "*", "/"]).map(lambda op: f"({ab[0]} {op} {ab[1]})")),
        two.flatmap(lambda ab: st.sampled_from(["<", "==", "in", "and"]).map(lambda op: f"({ab[0]} {op} {ab[1]})")),
        inner.map(lambda a: f"(not {a})"),
        st.lists(inner, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.tuples(st.sampled_from(["len", "min", "max", "sum", "abs", "round"]), st.lists(inner, max_size=3)).map(
            lambda fa: f"{fa[0]}({', '.join(fa[1])})"
        ),
        st.tuples(st.sampled_from(["sum", "min", "max", "any", "count"]), inner).map(
            lambda ka: f"{ka[0]}(x for x in {ka[1]})"
        ),
        st.sampled_from(["sum(d.verified for d in documents)", 'any(d.kind == "tax_return" for d in documents)']),
    )


def _arithmetic(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    two = st.tuples(inner, inner)
    return st.one_of(
        two.flatmap(lambda ab: st.sampled_from(["+", "-", "*", "/"]).map(lambda op: f"({ab[0]} {op} {ab[1]})")),
        st.tuples(st.sampled_from(["min", "max", "round"]), two).map(lambda f: f"{f[0]}({f[1][0]}, {f[1][1]})"),
        st.lists(inner, max_size=3).map(lambda items: "sum(x for x in [" + ", ".join(items) + "])"),
        inner.map(lambda a: f"abs(-{a})"),
    )


NUMERIC = st.recursive(_NUMBERS.filter(lambda n: n != "1e999"), _arithmetic, max_leaves=8)  # mostly well typed
EXPRESSIONS = st.one_of(st.recursive(_LEAVES, _grow, max_leaves=8), NUMERIC, NUMERIC.map(lambda n: f"{n} > 0"))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(expression=EXPRESSIONS, as_rule=st.booleans())
def test_checked_packages_never_raise_an_internal_error(tmp_path: Path, expression: str, as_rule: bool) -> None:
    """A package `check` accepts evaluates, explains, answers why-not and reports with no error but a
    located `EngineError`, and a package `check` refuses is refused with located diagnostics only."""
    package = (_with_rule if as_rule else _with_value)(tmp_path, expression)
    try:
        policy = load_policy(package)
    except PolicyError as error:
        assert error.diagnostics and all(d.span is not None and d.span.line > 0 for d in error.diagnostics), str(error)
        return
    try:
        _exercise(policy)
    except EngineError as error:
        assert LOCATED.search(str(error)), str(error)
