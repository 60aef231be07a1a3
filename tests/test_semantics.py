"""The compiled evaluator's semantics, on a small second programme (tests/fixtures/grants).

The engine decides it with no change: only its own fact model and rule file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from engine import UNDETERMINED, EvaluationError, Policy, load_policy

GRANTS = Path(__file__).parent / "fixtures" / "grants"


@pytest.fixture(scope="module", params=["generated", "python", pytest.param("durable", marks=pytest.mark.durable)])
def grants(request: pytest.FixtureRequest) -> Policy:
    """The grants policy on each backend: every semantic test runs on both."""
    if request.param == "durable":
        pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    return load_policy(GRANTS, backend=request.param)


def applicant(id: str, **facts: Any) -> dict[str, Any]:
    docs = facts.pop("documents", [{"kind": "tax_return", "verified": True}])
    return {"id": id, "income": 20000.0, "age": 30, "documents": docs, **facts}


def batch(*applicants: dict[str, Any], date: str = "2026-03-01") -> dict[str, Any]:
    return {"context": {"stage": "award", "date": date}, "applicants": list(applicants)}


def test_second_programme_loads_without_engine_change(grants: Policy) -> None:
    assert grants.ir.name == "small-grants"
    assert set(grants.ir.rules) >= {"adult", "eligible", "within_grants"}


def test_missing_fact_makes_rule_and_outcome_undetermined_naming_the_fact(grants: Policy) -> None:
    result = grants.evaluate(batch(applicant("a", income=None)))
    decision = result.decisions["a"]
    assert decision.outcome == UNDETERMINED
    assert decision.missing == ("income",)
    assert decision.trace["eligible"].paths == frozenset({"income"})
    assert any(
        r.rule == "low_income" and r.status == "undetermined" and "income" in r.message for r in decision.reasons
    )


def test_false_and_unknown_is_false_so_outcome_is_decided(grants: Policy) -> None:
    result = grants.evaluate(batch(applicant("minor", age=12, income=None)))
    decision = result.decisions["minor"]
    assert decision.outcome == "refused"
    assert decision.trace["adult"] is False
    assert [r.rule for r in decision.reasons if r.role == "decisive"] == ["eligible", "adult"]


def test_all_over_empty_list_is_true_and_any_is_false(grants: Policy) -> None:
    decision = grants.evaluate(batch(applicant("nodocs", documents=[]))).decisions["nodocs"]
    assert decision.trace["documents_verified"] is True
    assert decision.trace["has_tax_return"] is False
    assert decision.trace["verified_documents"] == 0


def test_any_is_true_when_one_item_holds_even_if_another_is_unknown(grants: Policy) -> None:
    docs = [{"kind": "identity", "verified": None}, {"kind": "tax_return", "verified": True}]
    decision = grants.evaluate(batch(applicant("a", documents=docs))).decisions["a"]
    assert decision.trace["has_tax_return"] is True
    assert decision.trace["documents_verified"].paths == frozenset({"documents[0].verified"})


def test_dated_parameter_takes_the_value_in_force_on_the_as_of_date(grants: Policy) -> None:
    person = applicant("a", income=35000.0)
    assert grants.evaluate(batch(person, date="2026-03-01")).decisions["a"].outcome == "refused"
    assert grants.evaluate(batch(person, date="2026-07-01")).decisions["a"].outcome == "granted"
    assert grants.evaluate(batch(person), as_of=dt.date(2026, 8, 1)).decisions["a"].outcome == "granted"


def test_parameter_with_no_value_in_force_is_an_error_not_a_guess(grants: Policy) -> None:
    with pytest.raises(EvaluationError, match="income_cap.*no value in force on 2025-12-31"):
        grants.evaluate(batch(applicant("a")), as_of="2025-12-31")


def test_ranking_fills_slots_and_the_rest_wait(grants: Policy) -> None:
    people = [applicant(f"p{i}", income=1000.0 * i) for i in (3, 1, 2)]
    result = grants.evaluate(batch(*people))
    assert result.outcomes() == {"p3": "waiting_list", "p1": "granted", "p2": "granted"}
    assert result.summary is not None and (result.summary.filled, result.summary.open) == (2, 0)


def test_ties_on_every_key_share_a_rank_and_are_reported_at_the_cut_off(grants: Policy) -> None:
    people = [applicant("a", income=1000.0), applicant("b", income=2000.0), applicant("c", income=2000.0)]
    result = grants.evaluate(batch(*people))
    assert {i: d.placement.rank for i, d in result.decisions.items() if d.placement} == {"a": 1, "b": 2, "c": 2}
    assert result.summary is not None and result.summary.tie_at_cut_off


def test_outcomes_do_not_depend_on_input_order(grants: Policy) -> None:
    people = [applicant(f"p{i}", income=1000.0 * (i % 3)) for i in range(5)]
    forward = grants.evaluate(batch(*people)).outcomes()
    backward = grants.evaluate(batch(*reversed(people))).outcomes()
    assert forward == backward


def test_decide_ranks_one_subject_alone_in_a_pool_of_one(grants: Policy) -> None:
    """The outcome table reads the rank: `decide` ranks the subject alone, as a cohort of one would be."""
    decision = grants.decide(applicant("a"), as_of="2026-03-01", stage="award")
    assert decision.trace["eligible"] is True and decision.outcome != UNDETERMINED and not decision.missing
    assert decision.placement is not None and (decision.placement.rank, decision.placement.pool_size) == (1, 1)
    alone = grants.evaluate(batch(applicant("a")), as_of="2026-03-01", stage="award").decisions["a"]
    assert (decision.outcome, decision.reasons) == (alone.outcome, alone.reasons)


def test_decide_says_plainly_when_a_ranking_stage_needs_the_context(policy: Policy) -> None:
    from tests.conftest import EXAMPLES

    cohort = policy.load_cohort(EXAMPLES / "stage1.yaml").model_dump()
    with pytest.raises(EvaluationError, match="ranks its pool.*pass `context=`.*context.programme"):
        policy.decide(cohort["consortia"][0], as_of="2026-01-20", stage="stage1")
    decision = policy.decide(cohort["consortia"][0], context=cohort["context"])  # a dict is validated
    assert decision.outcome == "advanced" and decision.placement is not None and decision.placement.pool_size == 1


def test_message_placeholders_are_filled_from_the_evaluation(grants: Policy) -> None:
    decision = grants.evaluate(batch(applicant("rich", income=90000.0))).decisions["rich"]
    messages = {r.rule: r.message for r in decision.reasons}
    assert messages["low_income"] == "income 90000.0 is above the cap of 30000"


def test_durable_backend_decides_a_policy_whose_subject_matches_more_than_64_conditions(tmp_path: Path) -> None:
    """durable_rules fails when one fact matches over 64 conditions: the adapter splits the subject."""
    pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    import shutil

    package = tmp_path / "grants"
    shutil.copytree(GRANTS, package)
    rules = "".join(
        f"  - id: above_{i}\n    title: income above {i}\n    reference: test\n    when: income >= {i * 100}\n"
        for i in range(70)
    )
    uses = " and ".join(f"above_{i}" for i in range(70))
    text = (package / "policy.yaml").read_text().replace("rules:\n", "rules:\n" + rules, 1)
    text = text.replace(
        "when: adult and low_income and documents_verified",
        f"when: adult and low_income and documents_verified and ({uses})",
    )
    (package / "policy.yaml").write_text(text)
    people = [applicant("rich", income=9000.0), applicant("poor", income=50.0)]
    durable = load_policy(package, backend="durable").evaluate(batch(*people))
    python = load_policy(package).evaluate(batch(*people))
    assert durable.outcomes() == python.outcomes() == {"rich": "granted", "poor": "refused"}
    assert {i: dict(d.trace) for i, d in durable.decisions.items()} == {
        i: dict(d.trace) for i, d in python.decisions.items()
    }


def test_decide_defaults_to_today_and_the_only_stage(grants: Policy) -> None:
    before = dt.date.today()
    decision = grants.decide(applicant("a"))
    after = dt.date.today()  # the day may change during the call: either day is today
    assert decision.as_of in (before, after) and decision.stage == "award"
    explicit = grants.decide(applicant("a"), as_of=decision.as_of)
    assert (decision.outcome, dict(decision.trace)) == (explicit.outcome, dict(explicit.trace))


def test_decide_asks_which_stage_when_there_are_several(policy: Policy) -> None:
    from tests.conftest import EXAMPLES

    consortium = policy.load_cohort(EXAMPLES / "stage1.yaml").model_dump()["consortia"][3]
    with pytest.raises(EvaluationError, match="which stage\\? this policy defines `stage1`, "):
        policy.decide(consortium)
    context = policy.load_cohort(EXAMPLES / "stage1.yaml").model_dump()["context"]
    decided = policy.decide(consortium, stage="stage1", context=context, as_of=dt.date.today(), outside_period=True)
    assert decided.outcome == "disqualified"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("min([3, 1, 2])", 1),
        ("max([3, 1, 2])", 3),
        ("min(3, 1, 2)", 1),
        ("max(3, 1, 2)", 3),
        ("min(4, 9)", 4),
        ("max([7])", 7),
    ],
)
def test_min_and_max_take_one_list_or_several_values(grants: Policy, text: str, value: Any) -> None:
    from engine.core.diagnostics import Span
    from engine.evaluation.compiler import Scope, compile_expression
    from engine.language.expr import parse_expression

    fn = compile_expression(grants.ir, parse_expression(text, Span("test")))
    assert fn(Scope(None, None, {})) == value
