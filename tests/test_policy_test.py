"""`policy test`: the package's YAML cases, located failures, the summary line, rule coverage."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from engine import FactError, Policy, load_policy
from engine.cli import main
from engine.verification.casefile import _steps, load_cases
from engine.verification.testing import prepare, run_tests
from tests.conftest import EXAMPLES, ROOT, RULES

GRANTS = ROOT / "tests" / "fixtures" / "grants"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in err
    return code, out


def test_the_shipped_tests_pass_and_cover_every_rule_both_ways(policy: Policy) -> None:
    report = run_tests(policy)
    assert report.failed == 0 and report.passed >= 40 and report.problems == []
    assert report.coverage.missing(policy) == {}
    assert report.coverage.rows_missing(policy) == []


def test_policy_test_prints_coverage_and_the_summary_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "test", str(RULES))
    lines = out.splitlines()
    assert code == 0 and re.fullmatch(r"\d+ passed, 0 failed", lines[-1])
    assert "uncovered rules: none" in lines and "outcome rows no case reached: none" in lines
    for rule in (
        "weights_trained_by_team",
        "meets_minimum_total",
        "ranked_within_slots",
        "panel_majority",
        "eligible_for_additional_call",
    ):
        assert re.search(rf"^  {rule}\s+yes\s+yes$", out, re.M), rule


def _package(tmp_path: Path) -> Path:
    package = tmp_path / "rules" / "sovereign_ai"
    shutil.copytree(RULES, package)
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    return package


def test_a_failing_case_is_reported_at_its_place_with_what_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = _package(tmp_path)
    cases = package / "tests" / "threshold.yaml"
    text = cases.read_text(encoding="utf-8")
    cases.write_text(
        text.replace(
            (
                "      - {id: d, outcome: advanced}\n      - {id: e, outcome: eliminated, reasons: "
                "[meets_minimum_total, ranked_within_slots]}"
            ),
            (
                "      - {id: d, outcome: eliminated}\n      - {id: e, outcome: eliminated, reasons: "
                "[meets_minimum_total, ranked_within_slots]}"
            ),
            1,
        ),
        encoding="utf-8",
    )
    code, out = run(capsys, "test", str(package))
    assert code == 1 and out.splitlines()[-1].endswith("passed, 1 failed")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "a total of exactly 70.0" in row)
    assert f"tests/threshold.yaml:{line}:5: case `a total of exactly 70.0 reaches the minimum` failed" in out
    assert "  - `d`: expected `eliminated`, got `advanced`" in out


def test_a_malformed_case_file_is_a_located_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = _package(tmp_path)
    (package / "tests" / "broken.yaml").write_text(
        "cases:\n  - name: no expectations\n    facts: facts/stage1_base.yaml\n", encoding="utf-8"
    )
    code, out = run(capsys, "test", str(package))
    assert code == 1 and "broken.yaml:2:5: error[missing-field]" in out


def test_uncovered_rules_are_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = tmp_path / "grants"
    shutil.copytree(GRANTS, package)
    (package / "tests").mkdir()
    (package / "tests" / "one.yaml").write_text(
        """cases:
  - name: an adult on a low income is granted
    cohort:
      context: {stage: award, date: 2026-03-01}
      applicants:
        - {id: ann, income: 1000.0, age: 30}
    expect:
      - {id: ann, outcome: granted}
""",
        encoding="utf-8",
    )
    code, out = run(capsys, "test", str(package))
    assert code == 0 and out.splitlines()[-1] == "1 passed, 0 failed"
    assert "uncovered rules: `adult` (never failed), `low_income` (never failed)" in out
    assert "`has_tax_return` (never held)" in out and "`award` row 1 (`refused`)" in out


def test_json_output_has_counts_and_coverage(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "test", str(RULES), "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["failed"] == 0 and data["coverage"]["sovereign"] == ["failed", "held"]


def test_changes_reach_into_list_items_and_may_add_one(policy: Policy) -> None:
    assert _steps("model.components[1].weights.use") == ["model", "components", 1, "weights", "use"]
    prepared, problems = prepare(policy)
    assert problems == [] and all(p.problem is None for p in prepared)
    vision = next(p for p in prepared if "vision encoder is not exempt" in p.case.name)
    b = next(s for s in vision.cohort.consortia if s.id == "b")
    assert [c.kind for c in b.model.components] == ["language_backbone", "vision_encoder"]


def test_a_change_to_an_item_that_is_not_there_is_a_fact_error(policy: Policy, tmp_path: Path) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(
        (
            f"cases:\n  - name: x\n    facts: {RULES / 'tests' / 'facts' / 'stage1_base.yaml'}\n    "
            f"changes:\n      a: {{'model.components[7].kind': tokenizer}}\n    expect: "
            f"[{{id: a, outcome: advanced}}]\n"
        ),
        encoding="utf-8",
    )
    [prepared], _ = prepare(policy, [path])
    assert prepared.problem and "no item 7" in prepared.problem
    with pytest.raises(FactError):
        from engine.verification.casefile import case_cohort

        case_cohort(policy, load_cases(path)[0].cases[0], path)


def test_the_file_level_facts_are_the_default_of_its_cases() -> None:
    cases, _ = load_cases(RULES / "tests" / "sovereignty.yaml")
    assert {c.facts for c in cases.cases} == {"facts/stage1_base.yaml"}


def test_the_grants_programme_runs_the_same_way(tmp_path: Path) -> None:
    loaded = load_policy(GRANTS)
    assert run_tests(loaded).results == []  # no tests folder: nothing to run, nothing fails


def test_a_case_may_set_parameters_for_itself_and_a_bad_one_fails_the_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = tmp_path / "grants"
    shutil.copytree(GRANTS, package)
    (package / "tests").mkdir()
    cohort = (
        "    cohort:\n      context: {stage: award, date: 2026-03-01}\n"
        "      applicants: [{id: ann, income: 20000.0, age: 30, documents: []}]\n"
    )
    (package / "tests" / "cap.yaml").write_text(
        "cases:\n"
        "  - name: as written, the cap admits ann\n" + cohort + "    expect: [{id: ann, outcome: granted}]\n"
        "  - name: a lower cap refuses her\n    set: {income_cap: 15000}\n"
        + cohort
        + "    expect: [{id: ann, outcome: refused, reasons: [low_income]}]\n"
        "  - name: an unknown parameter fails the case\n    set: {income_cop: 1}\n"
        + cohort
        + "    expect: [{id: ann, outcome: granted}]\n",
        encoding="utf-8",
    )
    code, out = run(capsys, "test", str(package))
    assert code == 1 and out.splitlines()[-1] == "2 passed, 1 failed"
    assert "unknown parameter `income_cop`" in out and "did you mean `income_cap`?" in out
