"""Mutation check: every mutant is a small, located change; the shipped tests kill them."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from engine import Policy, load_policy
from engine.cli import main
from engine.verification.mutate import Mutant, mutant_policy, mutants, run_mutants
from engine.verification.testing import known_cohorts, prepare, run_tests
from tests.conftest import ROOT

GRANTS = ROOT / "tests" / "fixtures" / "grants"
SOVEREIGNTY_AND_THRESHOLD = {
    "rule:weights_trained_by_team",
    "rule:team_controls_model",
    "rule:licences_unrestricted",
    "rule:borrowed_work_credited",
    "rule:technical_sovereignty",
    "rule:policy_sovereignty",
    "rule:ethical_sovereignty",
    "rule:sovereign",
    "value:pretrained_components",
    "value:restricted_licence_components",
    "value:uncredited_components",
    "rule:meets_minimum_total",
    "value:total_score",
    "value:benchmark_score",
    "parameter:minimum_total_score",
    "parameter:weight_benchmark",
    "parameter:weight_expert",
    "parameter:weight_user",
    "rule:targets_global_parity",
    "parameter:parity_target_share",
    "rule:panel_majority",
    "parameter:panel_majority_share",
}


def test_every_kind_of_mutant_is_made_and_located_in_the_package(policy: Policy) -> None:
    found = mutants(policy.ir)
    assert set(Counter(m.operator for m in found)) == {
        "comparison",
        "boundary",
        "connective",
        "negation",
        "conclusion",
        "outcome",
        "ranking",
    }
    assert all(m.span.line > 0 and m.span.file.endswith(".yaml") and m.before != m.after for m in found)
    assert all(m.ir != policy.ir for m in found)


def test_a_mutant_changes_one_thing_only(policy: Policy) -> None:
    mutant = next(m for m in mutants(policy.ir) if m.owner == "rule:meets_minimum_total" and m.operator == "boundary")
    assert (mutant.before, mutant.after) == ("total_score >= minimum_total_score", "total_score > minimum_total_score")
    changed = mutant.ir
    assert changed.rules["meets_minimum_total"] != policy.ir.rules["meets_minimum_total"]
    assert {n: r for n, r in changed.rules.items() if n != "meets_minimum_total"} == {
        n: r for n, r in policy.ir.rules.items() if n != "meets_minimum_total"
    }
    assert changed.values == policy.ir.values and changed.stages == policy.ir.stages


def test_a_dated_value_no_stage_can_use_is_not_mutated(policy: Policy) -> None:
    kept = [m.before for m in mutants(policy.ir) if m.owner == "parameter:teams_kept"]
    assert kept and not any("2025-08-04" in b for b in kept)  # minimum_total_score has no value before 2026-01-15


def test_the_shipped_tests_kill_every_mutant_of_the_sovereignty_and_threshold_rules(policy: Policy) -> None:
    cases, _ = prepare(policy)
    report = run_mutants(policy, cases, examples=0, only=lambda m: m.owner in SOVEREIGNTY_AND_THRESHOLD)
    assert report.total >= 50
    assert [m.describe() for m in report.survived] == []


def test_a_mutated_policy_still_loads_and_decides(policy: Policy) -> None:
    # Naver Cloud is disqualified at stage 1: renaming the row that decides it changes its outcome.
    mutant: Mutant = next(m for m in mutants(policy.ir) if m.operator == "outcome" and "disqualified" in m.before)
    changed = mutant_policy(policy, mutant)
    assert (
        changed.evaluate(ROOT / "examples" / "stage1.yaml").outcomes()
        != policy.evaluate(ROOT / "examples" / "stage1.yaml").outcomes()
    )


def test_a_weak_suite_leaves_survivors_that_are_listed_with_their_places(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = tmp_path / "grants"
    shutil.copytree(GRANTS, package)
    (package / "tests").mkdir()
    (package / "tests" / "one.yaml").write_text(
        "cases:\n  - name: one adult\n    cohort:\n      context: {stage: award, date: "
        "2026-03-01}\n      applicants: [{id: ann, income: 1000.0, age: 30}, {id: bob, income: "
        "900000.0, age: 30}]\n"
        "    expect: [{id: ann, outcome: granted}, {id: bob, outcome: refused}]\n",
        encoding="utf-8",
    )
    code = main(["test", str(package), "--mutate", "--examples", "0"])
    out = capsys.readouterr().out
    score = re.search(
        r"^mutation score: (\d+) of (\d+) mutants killed \((\d+\.\d)%\): (\d+) by tests, 0 by invariants$", out, re.M
    )
    assert code == 0 and score and int(score.group(1)) < int(score.group(2))
    assert re.search(
        (
            r"^  survived: .*grants/policy\.yaml:\d+:\d+: boundary in rule `adult`: `age >= "
            r"minimum_age` → `age > minimum_age`$"
        ),
        out,
        re.M,
    )


def test_policy_test_mutate_reports_the_score_of_the_shipped_package(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(ROOT / "rules" / "sovereign_ai"), "--mutate", "--examples", "5"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^mutation score: (\d+) of \1 mutants killed \(100\.0%\)", out, re.M), out


def test_survivors_of_the_tests_may_be_killed_by_an_invariant(tmp_path: Path) -> None:
    package = tmp_path / "grants"
    shutil.copytree(GRANTS, package)
    (package / "invariants.yaml").write_text(
        (
            "invariants:\n  - id: adults_only\n    title: Only adults are granted\n    reference: "
            'test\n    holds: outcome != "granted" or age >= 18\n'
        ),
        encoding="utf-8",
    )
    manifest = package / "policy.yaml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace("parameters:\n", "include: [invariants.yaml]\nparameters:\n", 1),
        encoding="utf-8",
    )
    loaded = load_policy(package)
    report = run_mutants(loaded, [], examples=60, only=lambda m: m.owner == "rule:adult")
    assert any(reason == "invariant `adults_only`" for _, reason in report.killed_by_invariants)


# --- mutation testing that tells the truth (issue 14) -------------------------------------------

ONLY_A1 = """\
facts: ../examples/applications.yaml
cases:
  - name: the best application is selected
    expect:
      - {id: a1, outcome: selected}
"""


def _scaffold(tmp_path: Path, cases: str = ONLY_A1, extra: str = "", parameter: str = "") -> Policy:
    folder = tmp_path / "prog"
    assert main(["init", str(folder)]) == 0
    (folder / "tests" / "selection.yaml").write_text(cases, encoding="utf-8")
    for name, text in (("rules.yaml", extra), ("policy.yaml", parameter)):
        (folder / name).write_text((folder / name).read_text(encoding="utf-8") + text, encoding="utf-8")
    return load_policy(folder)


def _row_gives(mutant: Mutant, before: str, after: str) -> bool:
    return mutant.operator == "outcome" and mutant.before.endswith(before) and mutant.after.endswith(after)


def test_mutants_meet_the_tests_own_cohorts_against_the_invariants(tmp_path: Path) -> None:
    """Row 1 giving `selected` selects a4 (below the minimum) in the test's own facts: the invariant kills it."""
    policy = _scaffold(tmp_path)
    prepared, _ = prepare(policy)
    tests = run_tests(policy, prepared)
    only = lambda m: _row_gives(m, "1: ineligible", "1: selected")  # noqa: E731
    without = run_mutants(policy, prepared, examples=0, only=only)
    assert len(without.survived) == 1  # the tests alone do not notice
    report = run_mutants(policy, prepared, examples=0, only=only, known=known_cohorts(tests))
    assert report.survived == [] and len(report.killed_by_invariants) == 1
    assert report.killed_by_invariants[0][1] == "invariant `below_minimum_never_selected` on a test case's facts"


def test_a_survivor_is_reported_with_why_nothing_noticed_it(tmp_path: Path) -> None:
    policy = _scaffold(tmp_path)
    prepared, _ = prepare(policy)
    report = run_mutants(policy, prepared, examples=0, only=lambda m: _row_gives(m, "2: not_selected", "2: ineligible"))
    (survivor,) = report.survived
    assert report.why_survived[survivor] == (
        "case `the best application is selected` decides `a3` not_selected → ineligible, but expects nothing of `a3`"
    )


def test_parameters_read_only_by_invariants_are_not_mutated(tmp_path: Path) -> None:
    invariant = """
  - id: scores_stay_on_the_scale
    title: No selected application has a score above the top of the scale
    reference: "Call notice, art. 1"
    holds: score is None or score <= top_of_scale or outcome != "selected"
"""
    parameter = (
        '  top_of_scale:\n    title: Top of the score scale\n    reference: "Call notice, art. 1"\n    value: 100\n'
    )
    policy = _scaffold(tmp_path, extra=invariant, parameter=parameter)
    assert not any(m.owner == "parameter:top_of_scale" for m in mutants(policy.ir))
    assert any(m.owner == "parameter:minimum_score" for m in mutants(policy.ir))
    prepared, _ = prepare(policy)
    assert run_mutants(policy, prepared, examples=0, only=lambda m: False).not_mutated == ["top_of_scale"]
