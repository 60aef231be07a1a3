"""The shipped Sovereign AI package decides the real 2026 rounds as the ministry did."""

from __future__ import annotations

import networkx as nx
import pytest

from engine import Policy, Result


def test_stage1_outcomes_match_the_ministrys_decision(stage1: Result) -> None:
    assert stage1.outcomes() == {
        "lg-ai-research": "advanced",
        "sk-telecom": "advanced",
        "upstage": "advanced",
        "naver-cloud": "disqualified",
        "nc-ai": "eliminated",
    }


def test_naver_cloud_is_disqualified_by_the_sovereignty_rule_naming_the_qwen_encoder(stage1: Result) -> None:
    decision = stage1.decisions["naver-cloud"]
    decisive = {r.rule: r for r in decision.reasons if r.role == "decisive"}
    assert decision.row == 2  # row 1: entry requirements (held)
    assert decisive["sovereign"].status == "failed"
    assert decisive["not_rejected_by_committee"].status == "failed"  # the committee's conclusion, beside the tests
    weights = decisive["weights_trained_by_team"]
    assert weights.status == "failed"
    assert "Qwen2.5-VL" in weights.message and "vision encoder" in weights.message and "frozen" in weights.message
    assert "technical test" in weights.reference
    assert any("Jan 2026" in ref for ref in decision.references)


def test_nc_ai_is_eliminated_by_both_the_threshold_and_the_rank(stage1: Result) -> None:
    decision = stage1.decisions["nc-ai"]
    decisive = {r.rule: r.message for r in decision.reasons if r.role == "decisive"}
    assert decisive == {
        "meets_minimum_total": "total score 69.0 is below the minimum of 70.0",
        "ranked_within_slots": "ranked 5 of 5; only 4 place(s)",
    }
    passed = [r.rule for r in decision.reasons if r.role == "passed"]
    assert passed == ["eligible", "meets_core_requirements"]


def test_disqualified_teams_place_is_left_open_for_the_additional_call(stage1: Result) -> None:
    summary = stage1.summary
    assert summary is not None
    assert (summary.slots, summary.filled, summary.open, summary.open_slots_to) == (4, 3, 1, "additional_call")
    assert stage1.decisions["naver-cloud"].placement.rank == 4  # within the 4 places, yet not advanced
    assert stage1.decisions["nc-ai"].outcome == "eliminated"  # the open place is not given to rank 5


def test_sources_reading_without_a_threshold_still_eliminates_nc_ai_by_rank(policy: Policy, tmp_path) -> None:
    import shutil

    from engine import load_policy
    from tests.conftest import EXAMPLES, RULES

    copy = tmp_path / "rules"
    shutil.copytree(RULES, copy)
    text = (copy / "parameters.yaml").read_text().replace("2026-01-15: 70.0", "2026-01-15: 0.0")
    (copy / "parameters.yaml").write_text(text)
    result = load_policy(copy).evaluate(EXAMPLES / "stage1.yaml")
    assert result.outcomes()["nc-ai"] == "eliminated"
    assert [r.rule for r in result.decisions["nc-ai"].reasons if r.role == "decisive"] == ["ranked_within_slots"]


def test_wildcard_selects_motif_technologies_only(wildcard: Result) -> None:
    assert wildcard.outcomes() == {"motif-technologies": "selected", "trillion-labs": "not_selected"}
    reasons = wildcard.decisions["trillion-labs"].reasons
    assert [r.rule for r in reasons if r.role == "decisive"] == ["ranked_within_slots"]


def test_additional_call_without_a_panel_majority_selects_no_one(policy: Policy) -> None:
    from engine.source.facts import load_facts
    from tests.conftest import EXAMPLES

    cohort = policy.load_cohort(EXAMPLES / "wildcard.yaml").model_dump()
    for consortium in cohort["consortia"]:
        consortium["panel"]["votes_for"] = 4  # 4 of 9: no majority
    result = policy.evaluate(cohort)
    assert set(result.outcomes().values()) == {"not_selected"}
    assert result.summary is not None and result.summary.open == 1 and result.summary.open_slots_to == "left_open"
    messages = [r.message for r in result.decisions["motif-technologies"].reasons if r.rule == "panel_majority"]
    assert messages == ["only 4 of 9 panel members approved: no majority of the panel"]
    assert load_facts  # the fact loader is the one evaluate uses


def test_a_team_still_in_the_programme_cannot_enter_the_additional_call(policy: Policy) -> None:
    from tests.conftest import EXAMPLES

    cohort = policy.load_cohort(EXAMPLES / "wildcard.yaml").model_dump()
    cohort["consortia"][0]["history"] = {
        "entry": "selected_2025",
        "stages": [{"stage": "stage1", "outcome": "advanced"}],
    }
    result = policy.evaluate(cohort)
    assert result.outcomes() == {"motif-technologies": "not_selected", "trillion-labs": "selected"}


def test_json_output_keeps_the_contract_fields(stage1: Result) -> None:
    data = stage1.to_json()
    assert data["policy"] == "sovereign-ai" and data["as_of"] == "2026-01-15"
    for decision in data["decisions"]:
        assert {"id", "outcome", "reasons"} <= set(decision)
        for reason in decision["reasons"]:
            assert {"rule", "title", "reference", "message"} <= set(reason)


@pytest.mark.parametrize("example", ["stage1", "wildcard", "stage2", "final"])
def test_every_explanation_is_a_dag_whose_leaves_are_facts_or_parameters(
    example: str, request: pytest.FixtureRequest, policy: Policy
) -> None:
    from tests.conftest import EXAMPLES

    result: Result = (
        request.getfixturevalue(example)
        if example in ("stage1", "wildcard")
        else policy.evaluate(EXAMPLES / f"{example}.yaml")
    )
    for decision in result.decisions.values():
        graph = decision.explain().graph
        assert nx.is_directed_acyclic_graph(graph)
        leaves = [n for n in graph if graph.in_degree(n) == 0]
        assert leaves and all(graph.nodes[n]["kind"] in ("fact", "parameter") for n in leaves), leaves


def test_naver_cloud_explanation_reads_from_the_component_fact_to_the_decision(stage1: Result) -> None:
    explanation = stage1.decisions["naver-cloud"].explain()
    graph = explanation.graph
    assert nx.has_path(graph, "fact:model.components[].weights.origin", "decision:naver-cloud")
    path = nx.shortest_path(graph, "fact:model.components[].weights.origin", "decision:naver-cloud")
    assert [n.split(":")[0] for n in path] == ["fact", "value", "rule", "rule", "rule", "rule", "outcome", "decision"]
    text = explanation.to_text()
    assert "naver-cloud: disqualified" in text
    assert "model.components[1].weights.origin = upstream" in text
    assert "Qwen2.5-VL" in text and "(rule `weights_trained_by_team`)" in text


def test_tracing_does_not_change_decisions(policy: Policy, stage1: Result) -> None:
    for decision in stage1.decisions.values():
        decision.explain()
    from tests.conftest import EXAMPLES

    assert policy.evaluate(EXAMPLES / "stage1.yaml").outcomes() == stage1.outcomes()
