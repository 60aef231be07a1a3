"""Invariants in rule packages: their format, and the counterexample search of `policy check`."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from engine import Policy, load_policy
from engine.cli import main
from engine.evaluation.result import Result
from engine.source.yamlsource import parse_yaml
from engine.verification.testing import prepare, seed_subjects
from engine.verification.verify import search_invariants
from tests.conftest import EXAMPLES, ROOT, RULES

GRANTS = ROOT / "tests" / "fixtures" / "grants"


def _package(tmp_path: Path, edits: dict[str, tuple[str, str]] | None = None) -> Path:
    """A copy of the shipped package (with the examples its tests use), edited."""
    package = tmp_path / "rules" / "sovereign_ai"
    shutil.copytree(RULES, package)
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    for file, (old, new) in (edits or {}).items():
        text = (package / file).read_text(encoding="utf-8")
        assert text.count(old) == 1, old
        (package / file).write_text(text.replace(old, new), encoding="utf-8")
    return package


def _grants(tmp_path: Path, invariants: str) -> Path:
    package = tmp_path / "grants"
    shutil.copytree(GRANTS, package)
    (package / "invariants.yaml").write_text(invariants, encoding="utf-8")
    manifest = package / "policy.yaml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace("parameters:\n", "include: [invariants.yaml]\nparameters:\n", 1),
        encoding="utf-8",
    )
    return package


def test_the_shipped_package_states_every_kind_of_invariant(policy: Policy) -> None:
    kinds = {i.id: i.kind for i in policy.ir.invariants}
    assert set(kinds.values()) == {"subject", "cohort", "monotonic", "permutation"}
    assert {
        "sovereignty_failure_never_takes_a_place",
        "one_outcome_per_consortium",
        "places_never_exceeded",
        "higher_scores_never_eliminate",
    } <= set(kinds)
    assert {
        "disqualified_place_not_filled_by_rank",
        "no_selection_without_panel_majority",
        "order_of_consortia_is_irrelevant",
    } <= set(kinds)
    assert all(i.title and i.reference and i.span.line > 0 for i in policy.ir.invariants)


def test_no_invariant_of_the_shipped_package_has_a_counterexample(policy: Policy) -> None:
    prepared, _ = prepare(policy)
    report = search_invariants(policy, examples=60, seeds=seed_subjects(policy, prepared))
    assert report.violations == [] and report.problems == []
    assert report.examples >= 60


def test_exempting_frozen_encoders_fails_check_with_a_counterexample_naming_the_invariant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = _package(
        tmp_path, {"parameters.yaml": ("    value: []\n", "    value: [vision_encoder, audio_encoder]\n")}
    )
    code = main(["check", str(package)])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    assert "error[invariant-violated]: invariant `pretrained_weights_never_take_a_place` does not hold" in out
    assert "explanation of the offending decision:" in out and "decides" in out
    facts = out.split("decides it):\n\n", 1)[1].split("explanation of the offending decision:")[0]
    cohort = parse_yaml(facts, "counterexample").data
    result = load_policy(package).evaluate(cohort)
    winners = [d for d in result.decisions.values() if d.outcome == "advanced"]
    assert any(
        c.weights is not None and c.weights.origin == "upstream" for d in winners for c in d.subject.model.components
    )
    assert load_policy(RULES).evaluate(cohort).outcomes() != result.outcomes()  # the shipped rules decide it otherwise


def test_letting_frozen_weights_pass_the_rule_itself_is_caught_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit = (
        'if c.weights is not None and c.weights.origin == "upstream"',
        'if c.weights is not None and c.weights.origin == "upstream" and c.weights.use != "frozen"',
    )
    package = _package(tmp_path, {"sovereignty.yaml": edit})
    assert main(["check", str(package)]) == 1
    assert "invariant `pretrained_weights_never_take_a_place` does not hold" in capsys.readouterr().out


def test_the_search_is_deterministic(tmp_path: Path) -> None:
    package = _grants(
        tmp_path,
        """invariants:
  - {id: nobody_granted, title: Nobody is granted, reference: test, holds: outcome != "granted"}
""",
    )
    first, second = (search_invariants(load_policy(package), examples=60) for _ in range(2))
    assert [v.cohort for v in first.violations] == [v.cohort for v in second.violations] != []
    assert first.examples == second.examples


def test_a_violation_in_the_package_own_test_facts_is_reported_even_if_the_search_misses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = _package(tmp_path, {"parameters.yaml": ("    value: 0.5\n", "    value: 0.4\n")})
    assert main(["check", str(package), "--examples", "5"]) == 1
    assert (
        "invariant `no_selection_without_panel_majority` does not hold at stage `additional_call`"
        in capsys.readouterr().out
    )


def test_a_monotonic_invariant_finds_a_raise_that_changes_the_outcome(tmp_path: Path) -> None:
    package = _grants(
        tmp_path,
        """invariants:
  - id: more_income_never_refused
    title: A higher income never turns a granted applicant into a refused one
    reference: test
    kind: monotonic
    change: {facts: [income]}
    holds: not (before.outcome == "granted" and after.outcome == "refused")
""",
    )
    report = search_invariants(load_policy(package), examples=100)
    [violation] = report.violations
    assert violation.invariant.id == "more_income_never_refused"
    assert "raising `income`" in violation.message and "from `granted` to `refused`" in violation.message


def test_a_cohort_invariant_sees_the_decisions_and_the_summary(tmp_path: Path) -> None:
    package = _grants(
        tmp_path,
        """invariants:
  - id: no_grant_at_all
    title: Nobody is granted (a statement made to be refuted)
    reference: test
    kind: cohort
    holds: >-
      summary.filled == count(d.outcome == "granted" for d in decisions)
      and summary.filled == 0 and summary.slots == 2
""",
    )
    [violation] = search_invariants(load_policy(package), examples=100).violations
    assert "decisions: `alpha` granted" in violation.message
    assert load_policy(package).evaluate(violation.cohort, as_of=violation.as_of).outcomes()["alpha"] == "granted"


def test_an_undetermined_invariant_is_a_violation_naming_the_missing_fact(tmp_path: Path) -> None:
    package = _grants(
        tmp_path,
        """invariants:
  - id: incomes_are_modest
    title: Every applicant's income is a number
    reference: test
    holds: income >= 0 or income < 0
""",
    )
    [violation] = search_invariants(load_policy(package), examples=50).violations
    assert "undetermined (missing income)" in violation.message
    assert "income" not in violation.cohort["applicants"][0]


def test_a_when_clause_limits_the_subjects_checked(tmp_path: Path) -> None:
    package = _grants(
        tmp_path,
        """invariants:
  - id: granted_applicants_are_adults
    title: Only adults are granted
    reference: test
    when: outcome == "granted"
    holds: age >= 18 and low_income
""",
    )
    assert search_invariants(load_policy(package), examples=60).violations == []


class _FirstComesFirst(Policy):
    """An order-dependent evaluator: the first applicant in the file is always granted."""

    def evaluate(self, cohort, as_of=None, stage=None) -> Result:  # type: ignore[no-untyped-def]
        result = super().evaluate(cohort, as_of=as_of, stage=stage)
        first = next(iter(result.decisions))
        decisions = dict(result.decisions, **{first: dataclasses.replace(result.decisions[first], outcome="granted")})
        return dataclasses.replace(result, decisions=decisions)


def test_a_permutation_invariant_catches_an_order_dependent_evaluator(tmp_path: Path) -> None:
    package = _grants(
        tmp_path,
        "invariants:\n  - {id: order_is_irrelevant, title: Order is irrelevant, reference: test, kind: permutation}\n",
    )
    loaded = load_policy(package)
    cheat = _FirstComesFirst(loaded.path, loaded.compiled, [])
    [violation] = search_invariants(cheat, examples=60).violations
    assert "when the subjects are reordered" in violation.message
    assert search_invariants(loaded, examples=30).violations == []


def test_check_json_reports_the_search(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["check", str(RULES), "--format", "json", "--examples", "20"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (
        data["ok"] is True
        and data["violations"] == []
        and data["search"]["invariants"] == len(load_policy(RULES).ir.invariants)
    )


def test_no_search_skips_the_search(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(RULES), "--no-search"]) == 0
    out = capsys.readouterr().out
    assert "invariants:" not in out and out.startswith("ok: sovereign-ai")


def test_a_subject_ranked_within_a_range_satisfies_invariants_at_every_rank_it_may_have() -> None:
    """Upstage's missing NIA score makes SK Telecom's rank a range (it advances at any rank in it): an
    invariant reading `stage.rank` is judged at each rank SK Telecom may have, not reported undetermined."""
    from engine.verification.holds import InvariantRunner
    from tests.conftest import EXAMPLES

    policy = load_policy(RULES)
    cohort = policy.load_cohort(EXAMPLES / "stage1.yaml").model_dump()
    for consortium in cohort["consortia"]:
        if consortium["id"] == "upstage":
            consortium["scores"]["benchmark"]["nia"] = None
    result = policy.evaluate(cohort)
    assert result.decisions["sk-telecom"].placement.rank_range == (2, 3)  # type: ignore[union-attr]
    assert result.decisions["sk-telecom"].outcome == "advanced"
    breaches = InvariantRunner(policy).subject_and_cohort(result, len(result.decisions))
    assert [b for b in breaches if b.subject == "sk-telecom"] == []
