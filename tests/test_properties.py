"""Engine properties over generated cohorts (Hypothesis, deterministic `ci` profile)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Policy, Result, load_policy
from tests.conftest import RULES
from tests.strategies import cohorts
from tests.test_explain import apply_changes


@pytest.fixture(scope="module")
def on_durable() -> Policy:
    pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    return load_policy(RULES, backend="durable")


def _view(result: Result) -> dict[str, Any]:
    return {
        i: (d.outcome, d.row, d.missing, d.reasons, dict(d.trace), d.placement) for i, d in result.decisions.items()
    }


@pytest.mark.durable
@given(cohort=cohorts())
def test_durable_backend_agrees_with_compiled_evaluator(
    policy: Policy, on_durable: Policy, cohort: dict[str, Any]
) -> None:
    """On every generated cohort, both backends give the same outcomes, reasons, rule results and ranks."""
    assert _view(on_durable.evaluate(cohort)) == _view(policy.evaluate(cohort))


@given(cohort=cohorts())
def test_decisions_do_not_depend_on_the_order_of_consortia(policy: Policy, cohort: dict[str, Any]) -> None:
    """Reversing the consortia in the file changes no decision."""
    backwards = dict(cohort, consortia=list(reversed(cohort["consortia"])))
    assert _view(policy.evaluate(backwards)) == _view(policy.evaluate(cohort))


@given(cohort=cohorts())
def test_evaluation_is_deterministic_and_explaining_changes_nothing(policy: Policy, cohort: dict[str, Any]) -> None:
    """Evaluating twice, with explanations built in between, gives identical decisions."""
    first = policy.evaluate(cohort)
    for decision in first.decisions.values():
        decision.explain().to_text()
    assert _view(policy.evaluate(cohort)) == _view(first)


@given(cohort=cohorts())
def test_a_team_failing_sovereignty_is_never_advanced_or_selected(policy: Policy, cohort: dict[str, Any]) -> None:
    """No consortium whose sovereignty rule fails or is undetermined is advanced or selected."""
    for decision in policy.evaluate(cohort).decisions.values():
        if decision.trace["sovereign"] is not True:
            assert decision.outcome not in ("advanced", "selected")


@given(cohort=cohorts())
def test_no_more_teams_take_places_than_there_are_places(policy: Policy, cohort: dict[str, Any]) -> None:
    """Advanced or selected consortia never outnumber the places, unless tied across the last one."""
    result = policy.evaluate(cohort)
    summary = result.summary
    assert summary is not None and summary.slots is not None
    if not summary.tie_at_cut_off:
        assert summary.filled <= summary.slots


@given(cohort=cohorts())
def test_turning_the_trace_off_never_changes_a_decision(policy: Policy, cohort: dict[str, Any]) -> None:
    """Evaluating without the trace gives the same outcomes, reasons, missing facts and ranks."""
    traced, untraced = policy.evaluate(cohort), policy.evaluate(cohort, trace=False)
    strip = {i: (d.outcome, d.row, d.missing, d.reasons, d.placement) for i, d in traced.decisions.items()}
    assert {i: (d.outcome, d.row, d.missing, d.reasons, d.placement) for i, d in untraced.decisions.items()} == strip
    assert all(not d.trace for d in untraced.decisions.values())


@settings(max_examples=15)  # each example verifies every suggestion by evaluating again
@given(cohort=cohorts(), pick=st.integers(0, 5), other=st.integers(0, 2))
def test_every_why_not_suggestion_really_reaches_the_outcome(
    policy: Policy, cohort: dict[str, Any], pick: int, other: int
) -> None:
    """Applying the changes of any why-not suggestion to the facts and evaluating again gives the asked outcome."""
    result = policy.evaluate(cohort)
    decision = list(result.decisions.values())[pick % len(result.decisions)]
    outcomes = [o for o in policy.ir.stages[result.stage or ""].outcome_names if o != decision.outcome]
    target = outcomes[other % len(outcomes)]
    answer = decision.why_not(target).to_json()
    for suggestion in answer["suggestions"]:
        changed = apply_changes(copy.deepcopy(cohort), decision.id, suggestion["changes"])
        assert policy.evaluate(changed).decisions[decision.id].outcome == target
