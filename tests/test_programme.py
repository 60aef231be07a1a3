"""The programme through 2026 (issue 13): entry requirements at every stage, stage 2 and the final
with their declared periods, the committee's conclusion beside the sovereignty tests, lineage to
any depth, and what selection brings (grants)."""

from __future__ import annotations

import copy
import datetime as dt
import pickle
import re
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from engine import FactError, Policy
from engine.core.errors import OutsidePeriod
from policy.facts import MAX_LINEAGE_DEPTH, Upstream
from tests.conftest import EXAMPLES

EXAMPLE_FILES = ["stage1", "wildcard", "stage2", "final"]
DATA = {name: yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8")) for name in EXAMPLE_FILES}
PLACES = ("advanced", "selected")
TWO_HOPS: dict[str, Any] = {
    "name": "KL vision encoder",
    "kind": "vision_encoder",
    "weights": {
        "origin": "upstream",
        "use": "frozen",
        "upstream": {
            "model": "K-Vision 2",
            "owner": "Hanbit Vision Lab",
            "country": "KR",
            "licence_restricted": False,
            "credited": True,
            "derivation": "fine_tuned",
            "derived_from": {"model": "SigLIP", "owner": "Google", "country": "US"},
        },
    },
}


def _cohort(name: str) -> dict[str, Any]:
    return copy.deepcopy(DATA[name])


# --- the shipped decisions -------------------------------------------------------------------


def test_every_example_keeps_its_decisions(policy: Policy) -> None:
    outcomes = {name: policy.evaluate(EXAMPLES / f"{name}.yaml").outcomes() for name in EXAMPLE_FILES}
    assert outcomes["stage1"] == {
        "lg-ai-research": "advanced",
        "sk-telecom": "advanced",
        "upstage": "advanced",
        "naver-cloud": "disqualified",
        "nc-ai": "eliminated",
    }
    assert outcomes["wildcard"] == {"motif-technologies": "selected", "trillion-labs": "not_selected"}
    assert sorted(o for o in outcomes["stage2"].values()) == ["advanced"] * 3 + ["eliminated"]
    assert sorted(o for o in outcomes["final"].values()) == ["advanced"] * 2 + ["eliminated"]


def test_the_histories_link_the_stages(policy: Policy) -> None:
    """Stage 2's teams are stage 1's advanced teams and the additional call's selected team; the
    final's are stage 2's advanced teams, each history recording the step."""
    before = {
        **{k: ("stage1", v) for k, v in policy.evaluate(EXAMPLES / "stage1.yaml").outcomes().items()},
        **{k: ("additional_call", v) for k, v in policy.evaluate(EXAMPLES / "wildcard.yaml").outcomes().items()},
    }
    stage2 = policy.load_cohort(EXAMPLES / "stage2.yaml")
    assert {c.id for c in stage2.consortia} == {k for k, (_, v) in before.items() if v in PLACES}
    for consortium in stage2.consortia:
        stage, outcome = before[consortium.id]
        assert [(s.stage, s.outcome) for s in consortium.history.stages] == [(stage, outcome)]
    kept = {k for k, v in policy.evaluate(EXAMPLES / "stage2.yaml").outcomes().items() if v == "advanced"}
    final = policy.load_cohort(EXAMPLES / "final.yaml")
    assert {c.id for c in final.consortia} == kept
    assert all(("stage2", "advanced") in [(s.stage, s.outcome) for s in c.history.stages] for c in final.consortia)


def test_illustrative_examples_say_so() -> None:
    for name in ("stage2", "final"):
        text = (EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8")
        assert "ILLUSTRATIVE DATA" in text and "Illustrative" in DATA[name]["note"]


# --- stage periods -----------------------------------------------------------------------------


def test_every_stage_declares_a_period_and_its_title_counts_nothing(policy: Policy) -> None:
    for stage in policy.ir.stages.values():
        assert stage.dates is not None and stage.dates[1] is not None, stage.id
        assert not re.search(r"\b(one|two|three|four|five|\d+) (teams?|places?)\b", stage.title), stage.title


@pytest.mark.parametrize(
    ("name", "inside", "outside"),
    [
        ("stage1", "2026-01-25", "2026-12-01"),
        ("wildcard", "2026-02-28", "2026-08-07"),
        ("stage2", "2026-08-31", "2026-12-01"),
        ("final", "2026-12-31", "2026-08-07"),
    ],
)
def test_a_stage_is_refused_outside_its_period(policy: Policy, name: str, inside: str, outside: str) -> None:
    policy.evaluate(EXAMPLES / f"{name}.yaml", as_of=dt.date.fromisoformat(inside))
    with pytest.raises(OutsidePeriod) as caught:
        policy.evaluate(EXAMPLES / f"{name}.yaml", as_of=dt.date.fromisoformat(outside))
    assert "outside" in str(caught.value) and outside in str(caught.value)


def test_stage1_as_of_december_is_a_what_if_only(policy: Policy) -> None:
    result = policy.evaluate(EXAMPLES / "stage1.yaml", as_of=dt.date(2026, 12, 1), outside_period=True)
    assert list(result.outcomes().values()).count("advanced") == 2  # two places from 1 Dec 2026


# --- entry requirements ------------------------------------------------------------------------


@given(
    name=st.sampled_from(EXAMPLE_FILES),
    index=st.integers(0, 4),
    country=st.from_regex(r"[A-Z]{2}", fullmatch=True).filter(lambda c: c != "KR"),
)
def test_a_foreign_led_consortium_is_never_advanced_or_selected(
    policy: Policy, name: str, index: int, country: str
) -> None:
    cohort = _cohort(name)
    consortium = cohort["consortia"][index % len(cohort["consortia"])]
    consortium["lead"]["country"] = country
    decision = policy.evaluate(cohort).decisions[consortium["id"]]
    assert decision.outcome not in PLACES
    assert decision.outcome in ("ineligible", "not_selected")
    rules = {r.rule: r for r in decision.reasons if r.role == "decisive"}
    assert rules["lead_registered_at_home"].status == "failed"
    assert "registered" in rules["lead_registered_at_home"].reference.lower() or "domestic" in (
        rules["lead_registered_at_home"].reference
    )


def test_the_foreign_lead_explanation_cites_the_eligibility_rule(policy: Policy) -> None:
    cohort = _cohort("stage1")
    cohort["consortia"][0]["lead"]["country"] = "US"
    text = policy.evaluate(cohort).decisions["lg-ai-research"].explain().to_text()
    assert "lg-ai-research: ineligible" in text
    assert "(rule `lead_registered_at_home`)" in text and "registered in US, not in KR" in text
    assert "MSIT, call (Jun 2025)" in text


def test_university_participation_can_be_required(policy: Policy) -> None:
    """The published LG AI Research member list names no university: requiring one makes it
    ineligible, which is why the package does not apply the requirement by default ([U])."""
    assert policy.evaluate(EXAMPLES / "stage1.yaml").outcomes()["lg-ai-research"] == "advanced"
    strict = policy.with_parameters({"university_participation_required": True})
    outcomes = strict.evaluate(EXAMPLES / "stage1.yaml").outcomes()
    assert outcomes["lg-ai-research"] == "ineligible"
    assert outcomes["sk-telecom"] == outcomes["upstage"] == "advanced"  # SNU, KAIST; Sogang, KAIST
    cohort = _cohort("stage1")
    cohort["consortia"][0]["lead"]["kind"] = "university"
    assert strict.evaluate(cohort).outcomes()["lg-ai-research"] == "advanced"


# --- lineage ---------------------------------------------------------------------------------


def test_two_hops_to_a_foreign_model_fail_sovereignty_even_with_encoders_exempted(policy: Policy) -> None:
    lenient = policy.with_parameters({"pretrained_weights_allowed_for": ["vision_encoder", "audio_encoder"]})
    cohort = _cohort("stage2")
    cohort["consortia"][2]["model"]["components"].append(TWO_HOPS)
    decision = lenient.evaluate(cohort).decisions["upstage"]
    assert decision.outcome == "disqualified"
    rules = {r.rule: r for r in decision.reasons if r.role == "decisive"}
    assert "weights_trained_by_team" not in rules  # exempted ...
    chain = "KL vision encoder (vision encoder, frozen) ← K-Vision 2 (Hanbit Vision Lab, KR, fine-tuned)"
    chain += " ← SigLIP (Google, US)"
    assert chain in rules["no_foreign_weights_in_lineage"].message  # ... but the foreign ancestor is seen
    text = decision.explain().to_text()
    assert chain in text and "(rule `no_foreign_weights_in_lineage`)" in text
    domestic = copy.deepcopy(cohort)
    domestic["consortia"][2]["model"]["components"][-1]["weights"]["upstream"]["derived_from"]["country"] = "KR"
    assert lenient.evaluate(domestic).outcomes()["upstage"] == "advanced"  # exempt and wholly domestic


@given(depth=st.integers(1, MAX_LINEAGE_DEPTH), foreign=st.integers(0, MAX_LINEAGE_DEPTH - 1))
def test_a_foreign_ancestor_at_any_depth_fails_sovereignty(policy: Policy, depth: int, foreign: int) -> None:
    node: dict[str, Any] | None = None
    for hop in reversed(range(depth)):
        here = {"model": f"m{hop}", "owner": "o", "country": "US" if hop == foreign else "KR"}
        if node is not None:
            here |= {"derivation": "fine_tuned", "derived_from": node}
        node = here
    assert node is not None
    upstream = Upstream.model_validate(node)
    assert [a.hop for a in upstream.lineage] == list(range(1, depth + 1))
    cohort = _cohort("stage2")
    component = copy.deepcopy(TWO_HOPS)
    component["weights"]["upstream"] = node | {"licence_restricted": False, "credited": True}
    cohort["consortia"][0]["model"]["components"].append(component)
    lenient = policy.with_parameters({"pretrained_weights_allowed_for": ["vision_encoder"]})
    decision = lenient.evaluate(cohort).decisions["lg-ai-research"]
    assert (decision.outcome == "disqualified") == (foreign < depth)


def test_a_lineage_that_repeats_a_model_or_is_too_deep_is_a_located_error(policy: Policy) -> None:
    cohort = _cohort("stage2")
    component = copy.deepcopy(TWO_HOPS)
    component["weights"]["upstream"]["derived_from"] |= {
        "derivation": "fine_tuned",
        "derived_from": {"model": "K-Vision 2", "owner": "Hanbit Vision Lab", "country": "KR"},
    }
    cohort["consortia"][0]["model"]["components"].append(component)
    with pytest.raises(FactError) as caught:
        policy.evaluate(cohort)
    [found] = caught.value.diagnostics
    assert "`consortia[0].model.components[3].weights.upstream`" in found.message
    assert "lineage repeats K-Vision 2 (Hanbit Vision Lab)" in found.message
    node: dict[str, Any] = {"model": "m0", "owner": "o", "country": "KR"}
    for hop in range(1, MAX_LINEAGE_DEPTH + 2):
        node = {"model": f"m{hop}", "owner": "o", "country": "KR", "derived_from": node}
    component["weights"]["upstream"] = node
    with pytest.raises(FactError) as caught:
        policy.evaluate(cohort)
    [found] = caught.value.diagnostics
    assert f"deeper than {MAX_LINEAGE_DEPTH}" in found.message and ".derived_from`" in found.message


def test_a_lineage_is_made_once_and_a_changed_copy_makes_its_own() -> None:
    """`lineage` is made on first read, not at each; it is not a field (not dumped, not compared); a copy pydantic
    does not validate (`model_copy(update=...)`, pickling) reads its own lineage."""
    node = {"model": "K-Vision 2", "owner": "Hanbit Vision Lab", "country": "KR", "derivation": "fine_tuned"}
    upstream = Upstream.model_validate(node | {"derived_from": {"model": "SigLIP", "owner": "Google", "country": "US"}})
    first, again = upstream.lineage, upstream.lineage
    assert first == again and first is not again and first[1] is again[1]  # the same ancestors, a list of its own
    first.clear()
    assert [a.country for a in upstream.lineage] == ["KR", "US"]
    assert "lineage_of" not in str(upstream.model_dump()) and upstream == Upstream.model_validate(upstream.model_dump())
    moved = upstream.model_copy(update={"country": "JP"})
    assert [a.country for a in moved.lineage] == ["JP", "US"] and upstream.lineage[0].country == "KR"
    thawed = pickle.loads(pickle.dumps(upstream))
    assert thawed == upstream and thawed.lineage == upstream.lineage and thawed.lineage[0] is not upstream.lineage[0]


# --- the committee and the tests ------------------------------------------------------------


@given(
    name=st.sampled_from(["stage1", "stage2", "final"]),
    index=st.integers(0, 4),
    conclusion=st.sampled_from([True, False, None]),
    fails_test=st.booleans(),
)
def test_the_committee_can_disqualify_alone_and_never_rescues_a_failed_test(
    policy: Policy, name: str, index: int, conclusion: bool | None, fails_test: bool
) -> None:
    cohort = _cohort(name)
    consortium = cohort["consortia"][index % len(cohort["consortia"])]
    if consortium["id"] == "naver-cloud":
        return
    consortium["panel"] = {"members": 10, "core_requirements_met": conclusion}
    if fails_test:
        consortium["model"]["team_controls_operation"] = False
    decision = policy.evaluate(cohort).decisions[consortium["id"]]
    if fails_test or conclusion is False:
        assert decision.outcome == "disqualified"
    elif conclusion is None and name != "stage1":
        assert decision.outcome == "undetermined"  # the tightened review needs the committee's conclusion
    else:
        assert decision.outcome in ("advanced", "eliminated")


def test_the_committee_shows_beside_the_three_tests(stage1: Any) -> None:
    text = stage1.decisions["naver-cloud"].explain().to_text()
    for rule in ("technical_sovereignty", "policy_sovereignty", "ethical_sovereignty", "not_rejected_by_committee"):
        assert f"(rule `{rule}`)" in text
    assert "did not meet the core requirements" in text and "limits of its technological autonomy" in text


# --- what selection brings -----------------------------------------------------------------


def _grants(result: Any, subject: str) -> dict[str, Any]:
    return {g.id: g for g in result.decisions[subject].grants}


def test_advanced_and_selected_decisions_show_their_grants(policy: Policy, stage1: Any, wildcard: Any) -> None:
    lg = _grants(stage1, "lg-ai-research")
    assert (lg["gpu_b200"].quantity, lg["gpu_h100"].quantity, lg["data_budget"].quantity) == (512, 512, 3.0)
    assert lg["gpu_b200"].unit == "GPUs" and "[C]" in (lg["gpu_b200"].reference or "")
    assert lg["k_ai_designation"].quantity is None and "K-AI" in lg["k_ai_designation"].title
    skt = _grants(stage1, "sk-telecom")  # a GPU rental supplier: no government GPUs until H2 2026
    assert (skt["gpu_b200"].quantity, skt["gpu_h100"].quantity) == (0, 0) and "k_ai_designation" in skt
    assert _grants(stage1, "naver-cloud") == {} and _grants(stage1, "nc-ai") == {}
    motif = _grants(wildcard, "motif-technologies")
    assert motif["gpu_b200"].quantity == 768 and "768 B200" in (motif["gpu_b200"].reference or "")
    assert _grants(wildcard, "trillion-labs") == {}
    stage2 = policy.evaluate(EXAMPLES / "stage2.yaml")
    assert _grants(stage2, "sk-telecom")["gpu_b200"].quantity == 512  # served from H2 2026
    assert _grants(stage2, "motif-technologies") == {}
    for grant in _grants(stage2, "lg-ai-research").values():
        assert grant.reference


def test_grants_follow_their_parameters(policy: Policy) -> None:
    changed = policy.with_parameters({"gpus_b200_per_team": 256, "data_budget_krw_billion": 5.0})
    grants = _grants(changed.evaluate(EXAMPLES / "stage1.yaml"), "upstage")
    assert (grants["gpu_b200"].quantity, grants["data_budget"].quantity) == (256, 5.0)
    wildcard = changed.with_parameters({"gpus_b200_additional_call": 1024})
    assert _grants(wildcard.evaluate(EXAMPLES / "wildcard.yaml"), "motif-technologies")["gpu_b200"].quantity == 1024
