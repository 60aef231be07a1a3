"""Ranking under uncertainty: properties over stage-1 cohorts with missing scores, and what people read.

The cohorts are the shipped stage-1 example with scores drawn from small sets of values (so teams
tie on the total and on the tie-breaks), and with some scores removed. `hypothesis.event` reports
how often ties, undetermined teams and pending places occur (`pytest --hypothesis-show-statistics`).
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from engine import Policy, load_policy
from engine.evaluation.compiler import Missing
from engine.evaluation.uncertain import Interval, possibly_before, surely_before
from engine.language.ranges import fact_range
from policy.facts import Consortium
from tests.conftest import RULES

STAGE1 = RULES.parents[1] / "examples" / "stage1.yaml"
SOVEREIGN = [
    {"name": "backbone", "kind": "language_backbone", "weights": {"origin": "team"}},
    {"name": "encoder", "kind": "vision_encoder", "weights": {"origin": "team"}},
]
SCORES = {
    "expert": [20.0, 26.4, 28.4, 30.0, 35.0],
    "user": [0.0, 17.0, 20.2, 25.0],
    "nia": [0.0, 7.8, 10.0],
    "global_common": [12.0, 15.6, 20.0],
    "global_individual": [0.0, 7.8, 10.0],
}
REMOVABLE = ["user", "expert", "nia"]


@pytest.fixture(scope="module")
def base(policy: Policy) -> dict[str, Any]:
    return policy.load_cohort(STAGE1).model_dump(mode="json")


@st.composite
def complete_cohorts(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """The stage-1 example with every team's scores drawn from small sets (ties are common)."""
    cohort = copy.deepcopy(base)
    for team in cohort["consortia"]:
        scores = team["scores"]
        scores["expert"], scores["user"] = (
            draw(st.sampled_from(SCORES["expert"])),
            draw(st.sampled_from(SCORES["user"])),
        )
        for part in ("nia", "global_common", "global_individual"):
            scores["benchmark"][part] = draw(st.sampled_from(SCORES[part]))
        if team["id"] == "naver-cloud" and draw(st.booleans()):  # sometimes sovereign, so it competes
            team["model"]["components"], team["panel"] = SOVEREIGN, {"members": 10}
    return cohort


def _score(team: dict[str, Any], part: str) -> Any:
    scores = team["scores"]
    return scores["benchmark"][part] if part in scores["benchmark"] else scores[part]


def _remove(team: dict[str, Any], part: str) -> None:
    scores = team["scores"]
    (scores["benchmark"] if part in scores["benchmark"] else scores)[part] = None


def _report(policy: Policy, cohort: dict[str, Any]) -> None:
    result = policy.evaluate(cohort)
    totals = [d.placement.keys[0] for d in result.decisions.values() if d.placement and d.placement.keys]
    event(f"tie on the total: {len(totals) != len(set(totals))}")
    event(f"undetermined teams: {sum(d.outcome == 'undetermined' for d in result.decisions.values())}")
    if result.summary is not None:
        event(f"pending places: {result.summary.pending}; open: {result.summary.open}")


@given(data=st.data())
def test_removing_facts_never_turns_a_decided_outcome_into_another(
    policy: Policy, base: dict[str, Any], data: st.DataObject
) -> None:
    """Every outcome decided with some scores missing is the outcome of the cohort with them given."""
    complete = data.draw(complete_cohorts(base))
    partial = copy.deepcopy(complete)
    for team in partial["consortia"]:
        for part in data.draw(st.lists(st.sampled_from(REMOVABLE), max_size=2, unique=True)):
            _remove(team, part)
    full, known = policy.evaluate(complete), policy.evaluate(partial)
    _report(policy, partial)
    for id, decision in known.decisions.items():
        if decision.outcome != "undetermined":
            assert decision.outcome == full.decisions[id].outcome, id
        else:
            assert decision.missing and decision.possible and full.decisions[id].outcome in decision.possible


def _completions(cohort: dict[str, Any], id: str) -> list[float]:
    """Every user score that can change an outcome (the cut-offs it may cross, each side) for `id`."""
    team = next(t for t in cohort["consortia"] if t["id"] == id)
    own = sum(_score(team, p) for p in ("nia", "global_common", "global_individual", "expert"))
    others = [
        sum(_score(t, p) for p in ("nia", "global_common", "global_individual", "expert", "user"))
        for t in cohort["consortia"]
        if t["id"] != id
    ]
    cuts = {70.0 - own} | {total - own for total in others}
    values = {0.0, 25.0} | {round(c + d, 1) for c in cuts for d in (-0.1, 0.0, 0.1)}
    return sorted(v for v in values if 0.0 <= v <= 25.0)


@given(data=st.data())
def test_with_one_score_missing_a_team_is_decided_exactly_when_every_completion_agrees(
    policy: Policy, base: dict[str, Any], data: st.DataObject
) -> None:
    """With one team's user score missing, every team is decided exactly when all completions of that score
    within its bounds (0-25) give it one outcome, and then it is that outcome."""
    complete = data.draw(complete_cohorts(base))
    who = data.draw(st.sampled_from([t["id"] for t in complete["consortia"]]))
    partial = copy.deepcopy(complete)
    _remove(next(t for t in partial["consortia"] if t["id"] == who), "user")
    result = policy.evaluate(partial)
    _report(policy, partial)
    outcomes: dict[str, set[str]] = {id: set() for id in result.decisions}
    for value in _completions(partial, who):
        filled = copy.deepcopy(partial)
        next(t for t in filled["consortia"] if t["id"] == who)["scores"]["user"] = value
        for id, decision in policy.evaluate(filled).decisions.items():
            outcomes[id].add(decision.outcome)
    for id, decision in result.decisions.items():
        if len(outcomes[id]) == 1:
            assert decision.outcome == next(iter(outcomes[id])), (id, decision.missing)
        else:
            assert decision.outcome == "undetermined" and outcomes[id] <= set(decision.possible), id
            event("a completion changes someone's outcome")


@given(data=st.data())
def test_places_are_filled_pending_or_open_and_only_open_ones_go_to_the_additional_call(
    policy: Policy, base: dict[str, Any], data: st.DataObject
) -> None:
    """filled + pending + open is the number of places (no team takes a place beyond them), pending places are
    backed by undetermined decisions that may still fill them, and places go on only once decided open."""
    cohort = data.draw(complete_cohorts(base))
    for team in cohort["consortia"]:
        if data.draw(st.booleans()):
            _remove(team, data.draw(st.sampled_from(REMOVABLE)))
    result = policy.evaluate(cohort)
    summary = result.summary
    assert summary is not None and summary.slots is not None and summary.pending is not None
    assert summary.open is not None
    waiting = [d for d in result.decisions.values() if d.outcome == "undetermined" and "advanced" in d.possible]
    assert summary.filled + summary.pending + summary.open == summary.slots
    assert summary.pending <= len(waiting)
    assert (summary.open_slots_to == "additional_call") == (summary.open > 0)
    event(f"places: {summary.filled} filled, {summary.pending} pending, {summary.open} open")


def test_the_issue_cohort_decides_every_team_the_missing_score_cannot_move(policy: Policy) -> None:
    cohort = policy.load_cohort(STAGE1).model_dump(mode="json")
    next(t for t in cohort["consortia"] if t["id"] == "sk-telecom")["scores"]["user"] = None
    result = policy.evaluate(cohort)
    assert result.outcomes() == {
        "lg-ai-research": "advanced",
        "sk-telecom": "undetermined",
        "upstage": "advanced",
        "naver-cloud": "disqualified",
        "nc-ai": "eliminated",
    }
    summary = result.summary
    assert summary is not None and (summary.filled, summary.pending, summary.open) == (2, 1, 1)
    data = json.loads(json.dumps(summary.to_json()))
    assert data["pending"] == 1 and {"id": "sk-telecom", "rank": None, "rank_range": [2, 5]} in data["ranking"]
    sk = result.decisions["sk-telecom"]
    assert sk.possible == ("eliminated", "advanced") and sk.placement and sk.placement.rank_range == (2, 5)
    # an open rank names the facts that would settle it: the subject's own by path, another's as `id: path`
    settled_by = {id: d.placement.settled_by for id, d in result.decisions.items() if d.placement}
    assert settled_by == {
        "lg-ai-research": (),
        "sk-telecom": ("scores.user",),
        "upstage": ("sk-telecom: scores.user",),
        "naver-cloud": ("sk-telecom: scores.user",),
        "nc-ai": ("sk-telecom: scores.user",),
    }
    text = sk.explain().to_text()
    assert (
        "row 3: `eliminated` when `not meets_minimum_total or not ranked_within_slots` — cannot be decided yet" in text
    )
    assert "row 4: `advanced` when `True` — pending: would decide if the rows above do not apply" in text
    assert "— decides" not in text and "{'missing'" not in text
    assert "total score: between 60.6 and 85.6" in text and "not known (needs scores.user)" in text
    upstage = result.decisions["upstage"].explain().to_text()
    assert "ranked 2 to 3 of 5 for 4 place(s): not known yet (depends on sk-telecom: scores.user)" in upstage


def test_the_stage_view_and_the_report_say_what_is_pending(policy: Policy) -> None:
    from engine.explanation.cohort_explain import explain_cohort
    from engine.explanation.report import render_report

    cohort = policy.load_cohort(STAGE1).model_dump(mode="json")
    next(t for t in cohort["consortia"] if t["id"] == "sk-telecom")["scores"]["user"] = None
    result = policy.evaluate(cohort)
    view = explain_cohort(policy, result).to_text()
    assert "pool (`scores is not None`): 5 of 5 in the pool" in view
    assert "2-5. sk-telecom" in view and "2-3. upstage" in view
    assert "places: 4; filled: 2; pending: 1; left open: 1" in view
    assert "`sk-telecom` may be `advanced`; settled by scores.user" in view
    page = render_report(policy, result)
    assert "4 place(s): 2 filled, 1 pending (undetermined decisions), 1 left open" in page
    assert "2 to 5 of 5" in page


def test_a_comparison_is_decided_when_the_bounds_of_its_unknown_operand_settle_it(policy: Policy) -> None:
    cohort = policy.load_cohort(STAGE1).model_dump(mode="json")
    nc = next(t for t in cohort["consortia"] if t["id"] == "nc-ai")
    nc["scores"].update(expert=15.0, user=None)  # total between 40.6 and 65.6: below 70 whatever it is
    decision = policy.evaluate(cohort).decisions["nc-ai"]
    assert decision.outcome == "eliminated" and decision.missing == ()
    message = next(r.message for r in decision.reasons if r.rule == "meets_minimum_total")
    assert message == "total score between 40.6 and 65.6 (not known: needs scores.user) is below the minimum of 70.0"


def _edited(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """A copy of the shipped package with `old`, found once in its `file`, replaced by `new`."""
    package = tmp_path / "sovereign_ai"
    shutil.copytree(RULES, package, ignore=shutil.ignore_patterns("__pycache__"))
    text = (package / file).read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    (package / file).write_text(text.replace(old, new), encoding="utf-8")
    return package


@pytest.mark.parametrize("backend", ["generated", "python"])
def test_a_comparison_with_a_missing_context_fact_is_decided_by_the_context_models_bounds(
    tmp_path: Path, backend: str
) -> None:
    """`context.slots_planned` is read from the cohort's context model (`ge=0` there): missing, it still
    settles `context.slots_planned >= 0`, and every team is decided as with it given."""
    folder = _edited(
        tmp_path,
        "stage1.yaml",
        "when: total_score >= minimum_total_score\n",
        "when: total_score >= minimum_total_score and context.slots_planned >= 0\n",
    )
    policy = load_policy(folder, backend=backend)
    cohort = policy.load_cohort(STAGE1).model_dump(mode="json")
    given = policy.evaluate(cohort).outcomes()
    cohort["context"]["slots_planned"] = None
    result = policy.evaluate(cohort, stage="stage1")
    assert result.outcomes() == given and "advanced" in given.values()
    assert all(d.missing == () for d in result.decisions.values())


@pytest.mark.durable
def test_both_backends_agree_on_cohorts_with_missing_ranking_facts(policy: Policy, base: dict[str, Any]) -> None:
    pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    durable = load_policy(RULES, backend="durable")
    for who, part in [("sk-telecom", "user"), ("lg-ai-research", "expert"), ("nc-ai", "user"), ("upstage", "nia")]:
        cohort = copy.deepcopy(base)
        _remove(next(t for t in cohort["consortia"] if t["id"] == who), part)
        a, b = policy.evaluate(cohort), durable.evaluate(cohort)
        assert {i: (d.outcome, d.missing, d.reasons, d.placement) for i, d in a.decisions.items()} == {
            i: (d.outcome, d.missing, d.reasons, d.placement) for i, d in b.decisions.items()
        }
        assert a.summary == b.summary


def test_why_not_ties_on_the_total_and_wins_the_tie_break_when_that_is_cheaper(policy: Policy) -> None:
    cohort = policy.load_cohort(STAGE1).model_dump(mode="json")
    teams = {t["id"]: t for t in cohort["consortia"]}
    teams["naver-cloud"]["model"]["components"], teams["naver-cloud"]["panel"] = SOVEREIGN, {"members": 10}
    # nc-ai: 25.6 + 29.0 + 22.3 = 76.9, 1.5 below naver-cloud's 78.4 on the total, above it on the expert score
    teams["nc-ai"]["scores"].update(expert=29.0, user=22.3)
    result = policy.evaluate(cohort)
    nc = result.decisions["nc-ai"]
    assert nc.outcome == "eliminated" and nc.placement and nc.placement.rank == 5
    answer = nc.why_not("advanced")
    best = answer.suggestions[0]
    assert [round(c.after - c.before, 1) for c in best.changes] == [1.5]  # a tie on 78.4, won on the expert score
    assert all("+0.0" not in n for n in answer.needs)
    assert any("to tie with `naver-cloud`" in n or "to win the tie-break" in n for n in answer.needs)


def test_a_team_that_lost_the_last_place_on_a_tie_break_is_told_so(policy: Policy) -> None:
    cohort = policy.load_cohort(STAGE1).model_dump(mode="json")
    teams = {t["id"]: t for t in cohort["consortia"]}
    teams["naver-cloud"]["model"]["components"], teams["naver-cloud"]["panel"] = SOVEREIGN, {"members": 10}
    teams["naver-cloud"]["scores"]["user"] = 22.4  # 79.8, as upstage, with a lower expert score
    teams["nc-ai"]["scores"].update(expert=29.2, user=25.0)  # 79.8 too, with a higher one
    result = policy.evaluate(cohort)
    text = result.decisions["naver-cloud"].explain().to_text()
    assert (
        "tied with `upstage` on total score (79.8); the tie-break expert review score (tie-break) ranks it below "
        "`upstage` (27.6 vs 28.4) — this decided the last place"
    ) in text
    winner = result.decisions["upstage"].explain().to_text()
    assert "ranks it above `naver-cloud` (28.4 vs 27.6) — this decided the last place" in winner
    ties = result.decisions["naver-cloud"].to_json()["placement"]["ties"]
    assert {"other": "upstage", "key": 1, "across_last_place": True}.items() <= ties[0].items()


def test_intervals_compare_surely_and_possibly_over_every_key() -> None:
    point, span = Interval.point, Interval
    assert surely_before([point(80.0)], [span(60.0, 79.9)], [True])
    assert not surely_before([point(80.0)], [span(60.0, 80.0)], [True])
    assert possibly_before([span(60.0, 80.0), point(29.0)], [point(80.0), point(30.0)], [True, True]) is False
    assert possibly_before([span(60.0, 80.0), point(31.0)], [point(80.0), point(30.0)], [True, True])
    assert possibly_before([Interval.anything()], [point(1.0)], [True]) and not surely_before(
        [Interval.anything()], [point(1.0)], [True]
    )
    assert surely_before([point(1.0)], [span(2.0, 3.0)], [False])  # ascending: lower is better


def test_fact_bounds_are_read_from_the_fact_model() -> None:
    user = fact_range(Consortium, ("scores", "user"))
    assert user is not None and (user.low, user.high, user.bounded) == (0.0, 25.0, True)
    nia = fact_range(Consortium, ("scores", "benchmark", "nia"))
    assert nia is not None and (nia.low, nia.high) == (0.0, 10.0)
    assert fact_range(Consortium, ("name",)) is None


def test_a_key_without_bounds_lets_its_subject_rank_anywhere_and_the_stage_view_says_so() -> None:
    from engine.explanation.cohort_explain import explain_cohort
    from tests.conftest import GRANTS

    policy = load_policy(GRANTS)
    applicants = [
        {"id": "a", "income": 1000.0, "age": 30},
        {"id": "b", "income": 2000.0, "age": 30},
        {"id": "c", "income": 3000.0, "age": 30},
        {"id": "d", "age": 30},  # income not given: maybe eligible, and ranked anywhere (no bounds)
    ]
    result = policy.evaluate({"context": {"stage": "award", "date": "2026-03-01"}, "applicants": applicants})
    assert result.outcomes() == {"a": "granted", "b": "undetermined", "c": "waiting_list", "d": "undetermined"}
    assert result.decisions["b"].missing == ("d: income",)
    assert result.summary is not None and result.summary.unbounded == ("d: income",)
    assert (result.summary.filled, result.summary.pending, result.summary.open) == (1, 1, 0)
    view = explain_cohort(policy, result).to_text()
    assert "note: income of `d` has no bounds in the fact model: its rank could be anywhere in the pool" in view


def test_an_invariant_reading_the_rank_is_judged_at_every_rank_the_decision_may_have(policy: Policy) -> None:
    from engine.verification.holds import InvariantRunner

    cohort = RULES.parents[1] / "tests" / "fixtures" / "rank_range_cohort.yaml"
    result = policy.evaluate(policy.load_cohort(cohort))
    beta = result.decisions["beta"]
    assert beta.outcome == "advanced" and beta.placement is not None and beta.placement.rank_range == (1, 2)
    assert InvariantRunner(policy).subject_and_cohort(result, len(result.decisions)) == []


def test_beyond_the_comparison_budget_the_ranking_leaves_every_rank_open(
    policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.evaluation import stages

    cohort = policy.load_cohort(STAGE1).model_dump(mode="json")
    next(t for t in cohort["consortia"] if t["id"] == "sk-telecom")["scores"]["user"] = None
    monkeypatch.setattr(stages, "MAX_COMPARISONS", 5)  # one uncertain team against five: exactly the budget
    within = policy.evaluate(cohort)
    assert within.decisions["lg-ai-research"].outcome == "advanced"
    monkeypatch.setattr(stages, "MAX_COMPARISONS", 4)  # one comparison too many: ranks left open
    beyond = policy.evaluate(cohort)
    assert beyond.decisions["lg-ai-research"].outcome == "undetermined"
    assert beyond.decisions["lg-ai-research"].missing == ("sk-telecom: scores.user",)
    assert beyond.decisions["naver-cloud"].outcome == "disqualified"  # what needs no rank is still decided


def test_each_tie_names_its_neighbour_and_only_the_pair_across_the_last_place_decided_it(policy: Policy) -> None:
    cohort = policy.load_cohort(STAGE1).model_dump(mode="json")
    teams = {t["id"]: t for t in cohort["consortia"]}
    teams["naver-cloud"]["model"]["components"], teams["naver-cloud"]["panel"] = SOVEREIGN, {"members": 10}
    teams["naver-cloud"]["scores"]["user"] = 22.4  # 79.8 with expert 27.6
    teams["nc-ai"]["scores"].update(expert=29.2, user=25.0)  # 79.8 with expert 29.2
    result = policy.evaluate(cohort)
    ties = {i: d.placement.ties for i, d in result.decisions.items() if d.placement}
    assert [(t.other, t.other_rank, t.key, t.across_last_place) for t in ties["upstage"]] == [
        ("nc-ai", 3, 1, False),
        ("naver-cloud", 5, 1, True),
    ]
    assert [(t.other, t.mine, t.theirs, t.shared) for t in ties["nc-ai"]] == [("upstage", 29.2, 28.4, 79.8)]
    assert ties["lg-ai-research"] == () and ties["sk-telecom"] == ()


def test_a_tie_on_every_key_gives_both_neighbours_the_same_value_and_no_breaking_key(policy: Policy) -> None:
    cohort = policy.load_cohort(STAGE1).model_dump(mode="json")
    teams = {t["id"]: t for t in cohort["consortia"]}
    teams["nc-ai"]["scores"] = copy.deepcopy(teams["upstage"]["scores"])  # equal on every key: rank 3 twice
    result = policy.evaluate(cohort)
    (tie,) = [t for t in result.decisions["nc-ai"].placement.ties if t.other == "upstage"]  # type: ignore[union-attr]
    assert (tie.key, tie.mine, tie.theirs, tie.shared, tie.other_rank) == (None, 79.8, 79.8, 79.8, 3)


_SPARE = """
  places_to_spare:
    title: Places left below the team's rank (read by no stage)
    expr: stage.slots - stage.rank
"""


def _open_at_the_top(policy: Policy, size: int) -> dict[str, Any]:
    """`size` teams whose totals all lie inside the one range `t000`'s total may take (its user-review score
    is not given), and one team without scores, outside the pool: `t000` may be ranked anywhere, 1 to `size`."""
    cohort = policy.load_cohort(STAGE1).model_dump(mode="json")
    teams = []
    for i in range(size + 1):
        team = copy.deepcopy(cohort["consortia"][0])
        team["id"] = f"t{i:03d}"
        team["scores"]["user"] = 10.0 + 10.0 * i / size
        teams.append(team)
    teams[0]["scores"]["user"] = None
    teams[-1]["scores"] = None
    return {**cohort, "consortia": teams}


@pytest.mark.parametrize(("size", "needs"), [(64, "scores.user"), (65, "stage.rank")])
def test_a_rank_open_over_more_than_64_places_is_not_decided_rank_by_rank(
    tmp_path: Path, size: int, needs: str
) -> None:
    """Up to 64 ranks a subject whose rank is open is decided at each (what depends on the rank waits for the
    facts that would settle it); past that, once, with its rank unknown (what depends on it waits for
    `stage.rank`): in one process and over chunks, in the rows and in what no stage reads (its trace)."""
    from engine import evaluate_many

    policy = load_policy(_edited(tmp_path, "scores.yaml", "values:\n", "values:" + _SPARE))
    cohort = _open_at_the_top(policy, size)
    single = policy.evaluate(cohort)
    [chunked] = evaluate_many(policy, [cohort], chunk_size=16)
    for result in (single, chunked):
        top, outside = result.decisions["t000"], result.decisions[f"t{size:03d}"]
        assert top.placement is not None and top.placement.rank_range == (1, size)
        (reason,) = [r for r in top.reasons if r.rule == "ranked_within_slots"]
        assert reason.missing == (needs,)
        spare = top.trace["places_to_spare"]
        assert isinstance(spare, Missing) and spare.paths == frozenset({needs})
        assert outside.placement is not None and outside.placement.rank is None
        assert isinstance(outside.trace["places_to_spare"], Missing)  # outside the pool: no rank, no range
