"""Engine properties over generated cohorts (Hypothesis, deterministic `ci` profile)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

from engine import Policy, Result, load_policy
from tests.conftest import RULES
from tests.strategies import cohorts


@pytest.fixture(scope="module")
def on_durable() -> Policy:
    pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    return load_policy(RULES, backend="durable")


def _view(result: Result) -> dict[str, Any]:
    return {i: (d.outcome, d.row, d.missing, d.reasons, dict(d.trace), d.placement) for i, d in result.decisions.items()}


@pytest.mark.durable
@given(cohort=cohorts())
def test_durable_backend_agrees_with_compiled_evaluator(policy: Policy, on_durable: Policy, cohort: dict[str, Any]) -> None:
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
