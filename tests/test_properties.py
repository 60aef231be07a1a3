"""Engine properties over generated cohorts (Hypothesis, deterministic `ci` profile)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import event, given, settings, target
from hypothesis import strategies as st

from engine import Policy, Result, load_policy
from tests.conftest import RULES
from tests.strategies import cohorts, ranked_cohorts
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


def _report(result: Result) -> None:
    """Tell Hypothesis's statistics what this example reached: outcomes, ties, places filled."""
    summary = result.summary
    assert summary is not None and summary.slots is not None
    for outcome in sorted({d.outcome for d in result.decisions.values()}):
        event(f"outcome {outcome}")
    keys = [d.placement.keys for d in result.decisions.values() if d.placement and d.placement.rank is not None]
    event(f"tie on the first key: {len({k[0] for k in keys}) < len(keys)}")  # type: ignore[index]
    event(f"tie on the first two keys: {len({k[:2] for k in keys}) < len(keys)}")  # type: ignore[index]
    event(f"tie on every key: {len(set(keys)) < len(keys)}")
    event(f"places filled: {'all' if summary.slots and summary.filled >= summary.slots else summary.filled}")
    event(f"more in the pool than places: {len(keys) > summary.slots}")
    event(f"tie across the last place: {summary.tie_at_cut_off}")
    target(float(len(keys) - len(set(keys))), label="subjects sharing a rank")


def _places_hold(result: Result) -> None:
    summary = result.summary
    assert summary is not None and summary.slots is not None
    slots = summary.slots
    placed = {i: d.placement.rank for i, d in result.decisions.items() if d.placement and d.placement.rank is not None}
    within = [i for i, rank in placed.items() if rank <= slots]
    taking = [i for i, d in result.decisions.items() if d.outcome in ("advanced", "selected")]
    assert set(taking) <= set(within)  # nobody takes a place from below the cut-off
    assert summary.filled == len(taking)
    assert summary.tie_at_cut_off == (len(within) > slots)  # more within the places than places: a tie
    assert summary.filled <= slots or summary.tie_at_cut_off
    assert summary.filled <= len(within)


@given(cohort=st.one_of(cohorts(), ranked_cohorts("stage1"), ranked_cohorts("additional_call")))
def test_no_more_teams_take_places_than_there_are_places(policy: Policy, cohort: dict[str, Any]) -> None:
    """Only subjects ranked within the places take one, and they outnumber the places only when
    subjects tie across the last place (which the summary then reports)."""
    result = policy.evaluate(cohort)
    _report(result)
    _places_hold(result)


def _keys(stage: str, consortium: dict[str, Any], trace: Any) -> tuple[float, ...]:
    """The ranking keys of a consortium, computed from its facts here (not by the engine)."""
    if stage == "stage1":
        scores = consortium["scores"]
        benchmark = sum(scores["benchmark"].values())
        return (benchmark + scores["expert"] + scores["user"], scores["expert"], benchmark)
    panel = consortium["panel"]
    return (panel["score"], panel["votes_for"] / panel["members"])


@given(cohort=st.one_of(ranked_cohorts("stage1"), ranked_cohorts("additional_call")))
def test_ranks_follow_the_keys_and_ties_share_a_rank(policy: Policy, cohort: dict[str, Any]) -> None:
    """Of two ranked subjects, the one with the greater keys (compared key by key) has the better
    rank; subjects equal on every key share a rank; the rank is one more than the number ranked
    strictly ahead (competition ranking)."""
    result = policy.evaluate(cohort)
    _report(result)
    stage = cohort["context"]["stage"]
    facts = {c["id"]: c for c in cohort["consortia"]}
    ranked = {
        i: (d.placement.rank, _keys(stage, facts[i], d.trace))
        for i, d in result.decisions.items()
        if d.placement and d.placement.rank is not None
    }
    for rank, keys in ranked.values():
        assert rank == 1 + sum(1 for _, other in ranked.values() if other > keys)
        assert all((r == rank) == (k == keys) for r, k in ranked.values())


@given(cohort=st.one_of(ranked_cohorts("stage1"), ranked_cohorts("additional_call")), data=st.data())
def test_shuffling_a_cohort_with_ties_changes_no_decision(
    policy: Policy, cohort: dict[str, Any], data: st.DataObject
) -> None:
    """Any order of the consortia in the file gives the same decisions and the same stage summary
    (its ranking listed in the same order), ties included."""
    shuffled = dict(cohort, consortia=data.draw(st.permutations(cohort["consortia"])))
    result = policy.evaluate(cohort)
    _report(result)
    again = policy.evaluate(shuffled)
    assert _view(again) == _view(result)
    assert again.summary == result.summary


@pytest.mark.durable
@given(cohort=st.one_of(ranked_cohorts("stage1"), ranked_cohorts("additional_call")))
def test_durable_backend_agrees_on_ties_and_places(policy: Policy, on_durable: Policy, cohort: dict[str, Any]) -> None:
    """On cohorts built to tie and to fill the places, both backends give the same decisions and summary."""
    python, durable = policy.evaluate(cohort), on_durable.evaluate(cohort)
    _report(python)
    assert _view(durable) == _view(python)
    assert durable.summary == python.summary


@given(cohort=cohorts())
def test_turning_the_trace_off_never_changes_a_decision(policy: Policy, cohort: dict[str, Any]) -> None:
    """Evaluating without the trace gives the same outcomes, reasons, missing facts and ranks."""
    traced, untraced = policy.evaluate(cohort), policy.evaluate(cohort, trace=False)
    strip = {i: (d.outcome, d.row, d.missing, d.reasons, d.placement) for i, d in traced.decisions.items()}
    assert {i: (d.outcome, d.row, d.missing, d.reasons, d.placement) for i, d in untraced.decisions.items()} == strip
    assert all(not d.trace for d in untraced.decisions.values())


@settings(max_examples=15)  # each example verifies every suggestion by evaluating again
@given(cohort=st.one_of(ranked_cohorts("stage1"), cohorts()), pick=st.integers(0, 6), other=st.integers(0, 3))
def test_every_why_not_suggestion_really_reaches_the_outcome(
    policy: Policy, cohort: dict[str, Any], pick: int, other: int
) -> None:
    """Applying the changes of any why-not suggestion to the facts and evaluating again gives the asked outcome."""
    result = policy.evaluate(cohort)
    decision = list(result.decisions.values())[pick % len(result.decisions)]
    outcomes = [o for o in policy.ir.stages[result.stage or ""].outcome_names if o != decision.outcome]
    goal = outcomes[other % len(outcomes)]
    answer = decision.why_not(goal).to_json()
    event(f"why-not suggestions: {min(len(answer['suggestions']), 2)}")
    event(f"why-not {decision.outcome} → {goal}")
    assert answer["target"] == goal and answer["outcome"] == decision.outcome
    assert answer["suggestions"] or answer["obstacles"] or answer["needs"] or answer["note"]
    for suggestion in answer["suggestions"]:
        changed = apply_changes(copy.deepcopy(cohort), decision.id, suggestion["changes"])
        assert policy.evaluate(changed).decisions[decision.id].outcome == goal


def test_the_strategies_reach_every_comparison_rule_both_ways(policy: Policy) -> None:
    """Over the property tests' strategies, every rule of the package that is a comparison (and is
    decided at the stages they draw) is seen both holding and failing."""
    from engine.evaluation.compiler import Missing
    from engine.language.expr import Compare

    comparisons = {name for name, rule in policy.ir.rules.items() if isinstance(rule.when, Compare)}
    seen: dict[str, set[Any]] = {name: set() for name in comparisons}

    @settings(max_examples=80)
    @given(cohort=st.one_of(cohorts(), ranked_cohorts("stage1"), ranked_cohorts("additional_call")))
    def collect(cohort: dict[str, Any]) -> None:
        for decision in policy.evaluate(cohort).decisions.values():
            for name in comparisons & set(decision.trace):
                value = decision.trace[name]
                seen[name].add("undetermined" if isinstance(value, Missing) else value)

    collect()
    reached = {name: values for name, values in seen.items() if values}
    assert len(reached) >= 10
    assert {name: values for name, values in reached.items() if not {True, False} <= values} == {}
