"""Explanations an official can read: static graph, decision graphs, the stage, why not, report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from engine import EvaluationError, Policy, Result, load_policy
from engine.cli import main
from engine.explanation.cohort_explain import explain_cohort
from engine.explanation.graph import graph_json, policy_graph
from tests.conftest import BENEFIT, EXAMPLES, RULES, chromium, chromium_command

STAGE1, WILDCARD = str(EXAMPLES / "stage1.yaml"), str(EXAMPLES / "wildcard.yaml")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


# --- the static graph -------------------------------------------------------------------------


def test_static_graph_has_every_kind_of_node_and_edges_labelled_with_the_span_of_the_use(policy: Policy) -> None:
    graph = policy_graph(policy.ir)
    kinds = {a["kind"] for _, a in graph.nodes(data=True)}
    assert {"fact", "parameter", "value", "rule", "outcome", "stage", "ranking", "context"} <= kinds
    span = graph.edges["value:pretrained_components", "rule:weights_trained_by_team"]["span"]
    assert span.startswith(str(RULES / "sovereignty.yaml") + ":")
    assert nx.is_directed_acyclic_graph(graph)
    rows = sorted((a["row"], a["name"]) for n, a in graph.nodes(data=True) if n.startswith("outcome:stage1."))
    assert rows == [(1, "ineligible"), (2, "disqualified"), (3, "eliminated"), (4, "advanced")]  # numbered from 1
    # a node known only from the edges that reach it (a fact) is named and kinded by its id
    assert graph.nodes["fact:scores.benchmark.nia"] == {"kind": "fact", "name": "scores.benchmark.nia"}


def test_graph_command_prints_text_json_dot_and_mermaid(capsys: pytest.CaptureFixture[str], policy: Policy) -> None:
    code, out, _ = run(capsys, "graph", str(RULES))
    assert code == 0 and "rule:weights_trained_by_team" in out and "uses value:pretrained_components at" in out
    _, out, _ = run(capsys, "graph", str(RULES), "--format", "json")
    assert json.loads(out) == graph_json(policy.ir)
    _, out, _ = run(capsys, "graph", str(RULES), "--format", "mermaid")
    assert out.startswith("flowchart LR") and "-->" in out


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed (Debian package graphviz)")
@pytest.mark.parametrize("command", [["graph", str(RULES)], ["explain", str(RULES), STAGE1, "naver-cloud"]])
def test_dot_output_renders_with_graphviz(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    _, out, _ = run(capsys, *command, "--format", "dot")
    rendered = subprocess.run(["dot", "-Tsvg"], input=out, capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    assert "<svg" in rendered.stdout


# --- a decision's explanation graph ------------------------------------------------------------


def test_explanation_nodes_carry_their_values_titles_references_and_dates(stage1: Result) -> None:
    graph = stage1.decisions["nc-ai"].explain().graph
    minimum = graph.nodes["parameter:minimum_total_score"]
    assert (minimum["kind"], minimum["value"], minimum["since"]) == ("parameter", 70.0, "2026-01-15")
    rule = graph.nodes["rule:meets_minimum_total"]
    assert rule["status"] == "failed" and rule["title"] and "Seed article" in rule["reference"]
    assert graph.nodes["value:total_score"]["value"] == pytest.approx(69.0)
    assert graph.nodes["fact:scores.expert"]["value"] == {"scores.expert": 26.4}
    assert graph.nodes["ranking:stage.rank"]["value"] == 5


def test_a_decisions_rank_is_explained_by_the_stages_ranking_keys_and_its_pool(stage1: Result) -> None:
    """`stage.rank` reads what the stage ranks by (its `rank_by` keys) and who is ranked (its `pool`,
    `scores is not None`): the checker records each as an edge into the stage with that role."""
    graph = stage1.decisions["nc-ai"].explain().graph
    assert sorted(graph.predecessors("ranking:stage.rank")) == [
        "fact:scores",  # the pool
        "fact:scores.expert",  # the three ranking keys
        "value:benchmark_score",
        "value:total_score",
    ]
    assert list(graph.successors("ranking:stage.rank")) == ["rule:ranked_within_slots"]


def test_undetermined_outcome_names_exactly_the_missing_facts(policy: Policy) -> None:
    cohort = policy.load_cohort(STAGE1).model_dump()
    cohort["consortia"][2]["scores"]["expert"] = None
    decision = policy.evaluate(cohort).decisions["upstage"]
    assert decision.outcome == "undetermined" and decision.missing == ("scores.expert",)
    text = decision.explain().to_text()
    assert "undetermined: may be `eliminated` or `advanced`; needs scores.expert" in text


# --- the stage over the cohort ------------------------------------------------------------------


def test_stage_explanation_gives_ranks_keys_cut_off_and_why_a_place_stayed_open(policy: Policy, stage1: Result) -> None:
    cohort = explain_cohort(policy, stage1)
    assert cohort.cut_off == "78.4, 27.6, 29.8"
    assert [r.id for r in sorted(cohort.rows, key=lambda r: r.rank or 0)][:4] == [
        "lg-ai-research",
        "sk-telecom",
        "upstage",
        "naver-cloud",
    ]
    assert cohort.open_places[0].startswith("1 place(s) left open → additional_call")
    assert "place 4 was ranked to `naver-cloud`, which is `disqualified`" in cohort.open_places[1]


def test_stage_explanation_reports_tie_breaks_that_decided(policy: Policy) -> None:
    cohort = policy.load_cohort(STAGE1).model_dump()
    sk = cohort["consortia"][1]["scores"]  # SK Telecom: same total as Upstage (79.8), higher expert score
    sk.update(expert=28.6, user=19.4, benchmark={"nia": 8.0, "global_common": 15.8, "global_individual": 8.0})
    text = explain_cohort(policy, policy.evaluate(cohort)).to_text()
    assert "tie-break: `sk-telecom` ranks above `upstage` on expert review score (tie-break) (28.6 vs 28.4)" in text


def test_additional_call_explains_who_was_in_the_pool_and_no_majority(policy: Policy) -> None:
    cohort = policy.load_cohort(WILDCARD).model_dump()
    for consortium in cohort["consortia"]:
        consortium["panel"]["votes_for"] = 3
    explained = explain_cohort(policy, policy.evaluate(cohort))
    assert all(r.in_pool is False for r in explained.rows)
    assert all("no majority of the panel" in r.why for r in explained.rows)
    assert "only 0 subject(s) qualified for 1 place(s)" in explained.open_places


def test_explain_without_id_explains_the_stage(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", str(RULES), WILDCARD)
    assert code == 0 and "ranked by: expert panel's evaluation score" in out and "motif-technologies" in out
    _, out, _ = run(capsys, "explain", str(RULES), STAGE1, "--format", "json")
    assert json.loads(out)["cut_off"] == "78.4, 27.6, 29.8"


# --- why not -----------------------------------------------------------------------------------


def test_why_not_advanced_gives_the_gaps_in_numbers_and_a_verified_change(stage1: Result) -> None:
    answer = stage1.decisions["nc-ai"].why_not("advanced")
    assert [(o.row, o.outcome) for o in answer.obstacles] == [(3, "eliminated")]  # row 1 is `ineligible`
    assert any("is 69.0; it needs ≥ 70.0: +1.0" in n for n in answer.needs)
    assert any(
        "needs > 78.4 to take the last of 4 place(s), held by `naver-cloud`: at least +9.5" in n for n in answer.needs
    )
    assert answer.suggestions and all(s.reaches == "advanced" for s in answer.suggestions)


def test_why_not_text_says_whether_each_obstacle_row_must_hold_or_not(stage1: Result) -> None:
    """An earlier row that decided instead must stop holding; the target's own row must come to hold."""
    later = stage1.decisions["nc-ai"].why_not("advanced").to_text().splitlines()
    assert later[1] == "  row 3 (`eliminated`) would have to not hold; it holds:"
    earlier = stage1.decisions["lg-ai-research"].why_not("eliminated").to_text().splitlines()
    assert earlier[1] == "  row 3 (`eliminated`) would have to hold; it does not hold:"


def test_a_record_changed_lists_the_values_that_differ_not_equal_ones_read_apart() -> None:
    """A record's change names each value that differs and what no longer applies; a value equal to the one
    before is not a change, even when it is another object (read from another copy of the facts)."""
    from engine.explanation.whynot import Change

    share = float("0.25")  # equal to the 0.25 before, not the same object
    change = Change(
        "model.components[1].weights",
        {"origin": "upstream", "share_of_parameters": 0.25, "use": "frozen"},
        {"origin": "team", "share_of_parameters": share},
    )
    assert change.describe() == "model.components[1].weights: origin upstream → team; use no longer apply"


def test_why_not_ranks_the_suggestions_by_the_change_relative_to_each_value(stage1: Result) -> None:
    """Suggestions of as many changes come smallest first, a change measured against the value it changes:
    taking 9.9 points off the expert review's 28.4 is less than off the user review's 20.2 or the global
    benchmark's 15.6."""
    answer = stage1.decisions["upstage"].why_not("eliminated")
    assert [[(c.path, c.before, c.after) for c in s.changes] for s in answer.suggestions] == [
        [("scores.expert", 28.4, 18.5)],
        [("scores.user", 20.2, 10.3)],
        [("scores.benchmark.global_common", 15.6, 5.7)],
    ]


def test_a_why_not_answer_is_a_value(stage1: Result) -> None:
    """What why-not gives is immutable and hashable, down to each change, like the decision it explains."""
    import dataclasses

    answer = stage1.decisions["upstage"].why_not("eliminated")
    assert len({answer, *answer.suggestions, *answer.obstacles}) == 2 + len(answer.suggestions)
    for part in (answer, answer.suggestions[0], answer.suggestions[0].changes[0], answer.obstacles[0]):
        with pytest.raises(dataclasses.FrozenInstanceError):
            part.note = "changed"  # type: ignore[misc]


def _without_committee_conclusion(policy: Policy, subject_id: str) -> dict[str, Any]:
    """The stage-1 cohort with no conclusion of the committee recorded for `subject_id`."""
    cohort = policy.load_cohort(STAGE1).model_dump()
    panel = next(s for s in cohort["consortia"] if s["id"] == subject_id)["panel"]
    del panel["core_requirements_met"], panel["conclusion"]
    return cohort


def test_why_not_for_sovereignty_names_the_component(policy: Policy) -> None:
    """A sovereignty failure alone (no committee conclusion): the answer names the offending components."""
    decision = policy.evaluate(_without_committee_conclusion(policy, "naver-cloud")).decisions["naver-cloud"]
    assert decision.outcome == "disqualified"
    answer = decision.why_not("advanced")
    assert [(o.row, o.outcome) for o in answer.obstacles] == [(2, "disqualified")]
    failed = {rule: message for o in answer.obstacles for rule, status, message, _ in o.rules if status == "failed"}
    assert "not_rejected_by_committee" not in failed
    for rule in ("weights_trained_by_team", "no_foreign_weights_in_lineage"):
        assert "HyperCLOVA X SEED vision encoder" in failed[rule] and "Qwen2.5-VL (Alibaba Cloud, CN)" in failed[rule]
    assert "HyperCLOVA X SEED vision encoder" in answer.to_text()


def test_why_not_for_sovereignty_says_what_must_be_true(policy: Policy) -> None:
    """One edit settles two rules: weights trained by the team carry no upstream, foreign or not."""
    decision = policy.evaluate(_without_committee_conclusion(policy, "naver-cloud")).decisions["naver-cloud"]
    answer = decision.why_not("advanced")
    assert "origin upstream → team" in answer.to_text()
    assert [c.path for c in answer.suggestions[0].changes] == [
        "model.components[1].weights",
        "model.components[2].weights",
    ]
    # a record rebuilt around the choice: what changes, and only the facts given before that no longer apply
    # (the audio encoder's `share_of_parameters` was never given, so it is not said to lapse)
    assert [c.describe() for c in answer.suggestions[0].changes] == [
        "model.components[1].weights (HyperCLOVA X SEED vision encoder): origin upstream → team; "
        "upstream, use, share_of_parameters no longer apply",
        "model.components[2].weights (HyperCLOVA X SEED audio encoder): origin upstream → team; "
        "upstream, use no longer apply",
    ]


def test_why_not_for_sovereignty_names_the_committee_conclusion_that_stands_in_the_way(stage1: Result) -> None:
    """With the committee's conclusion against Naver Cloud (15 Jan 2026), it is named among the obstacles."""
    answer = stage1.decisions["naver-cloud"].why_not("advanced")
    assert [(o.row, o.outcome) for o in answer.obstacles] == [(2, "disqualified")]
    failed = {rule: message for o in answer.obstacles for rule, status, message, _ in o.rules if status == "failed"}
    assert (
        "the committee concluded that the model does not meet the core requirements"
        in (failed["not_rejected_by_committee"])
    )
    assert "HyperCLOVA X SEED vision encoder" in failed["weights_trained_by_team"]
    text = answer.to_text()
    assert "✗ not_rejected_by_committee: the committee concluded" in text
    # no change of the model's facts alone gets past the committee's conclusion
    assert all(any(c.path.startswith("panel") for c in s.changes) for s in answer.suggestions)


def test_every_suggestion_is_minimal_dropping_any_one_change_misses_the_outcome(policy: Policy, stage1: Result) -> None:
    """nc-ai needs +1.0 on its total and a rank within the places: each suggestion keeps only the changes
    the outcome needs (a plan that raises three scores where two suffice is pruned), checked by hand."""
    answer = stage1.decisions["nc-ai"].why_not("advanced").to_json()
    assert answer["suggestions"]
    for suggestion in answer["suggestions"]:
        changes = suggestion["changes"]
        cohort = apply_changes(policy.load_cohort(STAGE1).model_dump(), "nc-ai", changes)
        assert policy.evaluate(cohort).decisions["nc-ai"].outcome == "advanced"
        for dropped in range(len(changes)):
            fewer = changes[:dropped] + changes[dropped + 1 :]
            cohort = apply_changes(policy.load_cohort(STAGE1).model_dump(), "nc-ai", fewer)
            assert policy.evaluate(cohort).decisions["nc-ai"].outcome != "advanced", (changes, dropped)


@pytest.fixture(scope="module")
def benefit() -> Policy:
    return load_policy(BENEFIT)


def test_why_not_over_facts_without_nested_records_checks_every_plan(benefit: Policy) -> None:
    """The benefit programme's facts are top-level fields (no record to rebuild around a choice): plans
    that fail are verified both ways without error, and the answer says that none reaches the outcome."""
    claims = BENEFIT / "tests" / "facts" / "claims_2026.yaml"
    answer = benefit.evaluate(claims).decisions["h1-single"].why_not("nothing_to_pay")
    assert answer.needs == ("The monthly benefit (`benefit_amount`) is 650.0; it needs ≤ 0: -650.0",)
    assert answer.suggestions == ()
    assert answer.note is not None and answer.note.startswith("no change of the subject's own facts reaches")


def test_why_not_suggests_the_same_changes_in_the_same_order_on_every_run() -> None:
    """Suggestions of equal size come in the order they were found, whatever Python's string hashing:
    the same question gets the same answer in every process."""
    code = (
        "import sys; from engine.cli import main; "
        f"sys.exit(main(['explain', {str(RULES)!r}, {STAGE1!r}, 'lg-ai-research', '--why-not', 'disqualified']))"
    )
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
        assert done.returncode == 0, done.stderr
        outputs.add(done.stdout)
    assert len(outputs) == 1
    first, second = "1. model.team_controls_development: yes → no", "2. model.team_controls_operation: yes → no"
    assert f"{first}\n    {second}" in outputs.pop()


GRADE_FACTS = """
from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


class Subject(BaseModel):
    id: str
    grade: int | str = 0  # a number on old forms, a word on new ones


class Round(BaseModel):
    stage: str
    date: dt.date


class Batch(BaseModel):
    context: Round
    subjects: list[Subject]
"""

GRADE_POLICY = """
policy: grades
version: "1"
title: Grades (test programme)
facts: {subject: facts:Subject, cohort: facts:Batch, subjects_field: subjects, context_field: context,
        stage_field: stage, date_field: date}
parameters:
  room_by_grade:
    title: Room by grade
    reference: art. 1
    table:
      values: {low: 1, high: 9}
rules:
  - id: enough_room
    title: The grade gives room for at least 5
    reference: art. 2
    when: 5 <= room_by_grade(grade)
stages:
  - id: review
    title: Review
    reference: art. 3
    outcomes:
      - {outcome: refused, when: not enough_room}
      - {outcome: accepted, when: true}
"""


def test_why_not_proposes_a_key_of_another_type_than_the_subject_gave(tmp_path: Path) -> None:
    """A grade given as a number where the table's keys are words: the word whose row gives room is
    proposed, and ranking that change against others (a number to a word has no size) does not fail."""
    (tmp_path / "facts.py").write_text(GRADE_FACTS, encoding="utf-8")
    (tmp_path / "policy.yaml").write_text(GRADE_POLICY, encoding="utf-8")
    grades = load_policy(tmp_path, fact_modules=[tmp_path / "facts.py"])
    cohort = {"context": {"stage": "review", "date": "2026-01-01"}, "subjects": [{"id": "a", "grade": 3}]}
    decision = grades.evaluate(cohort).decisions["a"]
    assert decision.outcome == "undetermined"  # no row for 3
    answer = decision.why_not("accepted")
    assert [[c.describe() for c in s.changes] for s in answer.suggestions] == [["grade: 3 → high"]]


def test_why_not_never_proposes_facts_the_subject_cannot_change(policy: Policy) -> None:
    cohort = policy.load_cohort(WILDCARD).model_dump()
    cohort["consortia"][0]["history"] = {
        "entry": "selected_2025",
        "stages": [{"stage": "stage1", "outcome": "advanced"}],
    }
    answer = policy.evaluate(cohort).decisions["motif-technologies"].why_not("selected")
    assert answer.suggestions == ()
    assert answer.note is not None and "cannot change" in answer.note
    assert any(r[0] == "eligible_for_additional_call" for o in answer.obstacles for r in o.rules)


def test_why_not_an_outcome_the_stage_does_not_have_is_a_clear_error(stage1: Result) -> None:
    with pytest.raises(EvaluationError, match="`selected` is not an outcome of stage `stage1`"):
        stage1.decisions["nc-ai"].why_not("selected")


def test_why_not_cli_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", str(RULES), STAGE1, "nc-ai", "--why-not", "advanced")
    assert code == 0 and "why not `advanced`" in out and "+1.0" in out
    _, out, _ = run(capsys, "explain", str(RULES), STAGE1, "nc-ai", "--why-not", "advanced", "--format", "json")
    data = json.loads(out)
    assert data["target"] == "advanced" and data["suggestions"][0]["changes"]
    code, _, err = run(capsys, "explain", str(RULES), STAGE1, "--why-not", "advanced")
    assert code == 2 and "needs the id" in err


def apply_changes(cohort: dict[str, Any], subject_id: str, changes: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply a why-not suggestion's changes to cohort data, independently of the engine's own code."""
    import re

    subject = next(s for s in cohort["consortia"] if s["id"] == subject_id)
    for change in changes:
        steps = re.findall(r"([A-Za-z_]\w*)(?:\[(\d+)\])?", change["path"])
        target = subject
        for name, index in steps[:-1]:
            target = target[name] if not index else target[name][int(index)]
        name, index = steps[-1]
        if index:
            target[name][int(index)] = change["after"]
        else:
            target[name] = change["after"]
    return cohort


def test_applying_a_suggestion_by_hand_really_flips_the_outcome(policy: Policy, stage1: Result) -> None:
    answer = stage1.decisions["nc-ai"].why_not("advanced").to_json()
    cohort = apply_changes(policy.load_cohort(STAGE1).model_dump(), "nc-ai", answer["suggestions"][0]["changes"])
    assert policy.evaluate(cohort).decisions["nc-ai"].outcome == "advanced"


# --- the HTML report ------------------------------------------------------------------------------


def test_report_is_one_self_contained_page(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    code, out, _ = run(capsys, "report", str(RULES), STAGE1, "-o", str(target))
    assert code == 0 and "5 decision(s)" in out
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 5
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    for consortium in ("lg-ai-research", "sk-telecom", "upstage", "naver-cloud", "nc-ai"):
        assert f'id="{consortium}"' in page


@pytest.mark.skipif(chromium() is None, reason="headless Chromium is not installed (Debian package chromium)")
def test_report_renders_in_headless_chromium_with_every_consortium(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "report.html"
    run(capsys, "report", str(RULES), STAGE1, "-o", str(target))
    command = chromium_command(tmp_path / "profile")
    dom = subprocess.run(
        [*command, "--dump-dom", target.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    for consortium, name, outcome in [
        ("lg-ai-research", "LG AI Research", "advanced"),
        ("naver-cloud", "Naver Cloud", "disqualified"),
        ("nc-ai", "NC AI", "eliminated"),
    ]:
        assert (
            f'<section class="subject" id="{consortium}"><h2>{name}: <span class="outcome">{outcome}</span></h2>'
            in (dom.stdout)
        )
    assert dom.stdout.count("<svg") == 5 and "Qwen2.5-VL" in dom.stdout
    shot = tmp_path / "report.png"
    subprocess.run(
        [*command, "--window-size=1200,1600", f"--screenshot={shot}", target.as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 20_000  # a real picture, not a blank page


@pytest.mark.parametrize("facts", [STAGE1, WILDCARD])
def test_cli_json_of_every_decision_is_a_dag_whose_leaves_are_facts_or_parameters(
    capsys: pytest.CaptureFixture[str], policy: Policy, facts: str
) -> None:
    for subject_id in policy.evaluate(facts).decisions:
        code, out, _ = run(capsys, "explain", str(RULES), facts, subject_id, "--format", "json")
        assert code == 0
        graph = nx.node_link_graph(json.loads(out)["graph"], edges="links")
        assert nx.is_directed_acyclic_graph(graph)
        leaves = [n for n in graph if graph.in_degree(n) == 0]
        assert leaves and {graph.nodes[n]["kind"] for n in leaves} <= {"fact", "parameter"}, subject_id


def test_a_change_of_a_whole_record_is_shown_as_its_fields() -> None:
    """A suggestion that gives a record where there was none, or changes a record inside one, shows
    the record as `{field: value, ...}` (fields without a value left out, records inside records
    shown the same way), not as Python's text of a dict."""
    from engine.explanation.whynot import Change

    added = Change("panel", None, {"core_requirements_met": False, "findings": [], "note": None})
    assert added.describe() == "panel: not given → {core_requirements_met: no}"
    nested = Change(
        "model.components[0]",
        {"weights": {"origin": "upstream", "upstream": {"name": "Qwen"}}},
        {"weights": {"origin": "team"}},
        label="vision encoder",
    )
    assert nested.describe() == (
        "model.components[0] (vision encoder): weights {origin: upstream, upstream: {name: Qwen}} → {origin: team}"
    )


def test_a_change_inside_nested_lists_is_labelled_with_the_innermost_item() -> None:
    """A change under lists inside lists (`model.components[1].parts[0].origin`, a programme other than the
    shipped one may have them) is named by the item it is in, the innermost, not the outermost."""
    from engine.explanation.whynot import Change, _labelled

    subject = {"model": {"components": [{"name": "lm"}, {"name": "vision", "parts": [{"name": "encoder"}]}]}}
    change = _labelled(subject, Change("model.components[1].parts[0].origin", "upstream", "team"))
    assert change.label == "encoder"
    assert _labelled(subject, Change("model.components[0].kind", "a", "b")).label == "lm"
    assert _labelled(subject, Change("model.name", "a", "b")).label is None


def test_why_not_for_an_undetermined_decision_names_the_facts_to_give_first(policy: Policy) -> None:
    """A team whose core requirements are undetermined (`team_controls_development` not given) cannot
    be shown a change that reaches `advanced`: the undetermined row is the obstacle, with its
    undetermined rules, and the note names the fact to give before any change can be checked."""
    cohort = policy.load_cohort(STAGE1).model_dump()
    cohort["consortia"][2]["model"]["team_controls_development"] = None
    decision = policy.evaluate(cohort).decisions["upstage"]
    assert decision.outcome == "undetermined"
    answer = decision.why_not("advanced")
    assert [(o.outcome, o.status) for o in answer.obstacles] == [("disqualified", "undetermined")]
    (obstacle,) = answer.obstacles
    assert {name for name, status, *_ in obstacle.rules if status == "undetermined"} >= {
        "meets_core_requirements",
        "team_controls_model",
    }
    assert not answer.suggestions
    assert answer.note == "no change of facts can be checked until these are given: model.team_controls_development"
    assert answer.to_text().splitlines()[-1] == f"  {answer.note}"  # the text ends with the note
    plain = policy.evaluate(STAGE1).decisions["upstage"].why_not("eliminated")
    assert plain.note is None and "None" not in plain.to_text()  # no note: no line for one


def test_a_fact_path_resolves_to_its_values_and_the_parts_that_do_not_apply(policy: Policy) -> None:
    """`resolve_path`/`absent_parts`: each concrete path with its value, and those under an absent part
    (a code-only component's `weights.origin`) told apart from a value that is merely missing."""
    from engine.explanation.explain import absent_parts, resolve_path

    cohort = policy.load_cohort(EXAMPLES / "stage1.yaml")
    team = next(t for t in cohort.consortia if any(c.weights is None for c in t.model.components))
    assert resolve_path(team, "lead.country") == [("lead.country", team.lead.country)]
    assert absent_parts(team, "lead.country") == []
    assert resolve_path(None, "lead.country") == [("lead.country", None)]
    assert absent_parts(None, "lead.country") == ["lead.country"]  # no subject: its `lead` is absent on the way
    assert absent_parts(None, "lead") == []  # the subject itself is not a part on the way
    assert resolve_path(team, "lead.nothing.more") == [("lead.nothing.more", None)]
    assert absent_parts(team, "lead.nothing.more") == ["lead.nothing.more"]  # `lead.nothing` is absent on the way
    paths = resolve_path(team, "model.components[].weights.origin")
    assert [p for p, _ in paths] == [f"model.components[{i}].weights.origin" for i in range(len(team.model.components))]
    absent = absent_parts(team, "model.components[].weights.origin")
    code_only = [i for i, c in enumerate(team.model.components) if c.weights is None]
    assert absent == [f"model.components[{i}].weights.origin" for i in code_only] and absent
