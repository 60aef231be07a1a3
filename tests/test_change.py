"""What an edit changes (`policy diff`) and what-if without editing files (`--set`, `--set-fact`)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Policy, PolicyError, load_policy
from engine.cli import main
from engine.explanation.diff import diff, diff_packages
from tests.conftest import EXAMPLES, ROOT, RULES

STAGE1 = EXAMPLES / "stage1.yaml"


@pytest.fixture
def stricter(tmp_path: Path) -> Path:
    """A copy of the package with the minimum total score raised from 70 to 80."""
    package = tmp_path / "stricter"
    shutil.copytree(RULES, package)
    parameters = package / "parameters.yaml"
    text = parameters.read_text(encoding="utf-8")
    assert "      2026-01-15: 70.0\n" in text
    parameters.write_text(text.replace("      2026-01-15: 70.0\n", "      2026-01-15: 80.0\n"), encoding="utf-8")
    return package


def test_a_raised_threshold_lists_exactly_the_decisions_it_changes_with_the_parameter_as_cause(
    policy: Policy, stricter: Path
) -> None:
    report = diff(policy, load_policy(stricter), [STAGE1])
    assert [c.node for c in report.changes] == ["parameter:minimum_total_score"]
    old, new = policy.evaluate(STAGE1).outcomes(), load_policy(stricter).evaluate(STAGE1).outcomes()
    assert [d.id for d in report.decisions] == [i for i in old if old[i] != new[i]] == ["upstage"]
    (upstage,) = report.decisions
    assert (upstage.old_outcome, upstage.new_outcome) == ("advanced", "eliminated")
    assert upstage.causes == ("parameter:minimum_total_score",)
    assert upstage.flipped == (("meets_minimum_total", "held", "failed"),)
    assert report.evaluated == 5 and ("advanced", "eliminated", 1) in report.counts


def test_the_same_change_given_as_set_gives_the_same_answer(policy: Policy, stricter: Path) -> None:
    edited = diff(policy, load_policy(stricter), [STAGE1])
    what_if = diff(policy, policy.with_parameters({"minimum_total_score": 80.0}), [STAGE1])
    assert [d.to_json() for d in what_if.decisions] == [d.to_json() for d in edited.decisions]
    assert what_if.counts == edited.counts


def test_policy_diff_on_the_cli_in_every_format(
    stricter: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diff", str(RULES), str(stricter), str(STAGE1)]) == 0
    text = capsys.readouterr().out
    assert "~ parameter:minimum_total_score: 70.0 from 2026-01-15  →  80.0 from 2026-01-15" in text
    assert "upstage: advanced → eliminated (rank 3 → 3)" in text and "1 of 5 decision(s) change" in text
    assert main(["diff", str(RULES), str(STAGE1), "--set", "minimum_total_score=80", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in data["decisions"]] == ["upstage"] and data["decisions"][0]["causes"] == [
        "parameter:minimum_total_score"
    ]
    assert "with minimum_total_score=80" in data["new"]
    page = tmp_path / "diff.html"
    assert main(["diff", str(RULES), str(stricter), str(STAGE1), "--format", "html", "-o", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert "upstage" in html and "parameter:minimum_total_score" in html and "http" not in html.lower()


def test_fail_on_change_exits_1_only_when_a_decision_changes(stricter: Path) -> None:
    assert main(["diff", str(RULES), str(stricter), str(STAGE1), "--fail-on-change"]) == 1
    assert main(["diff", str(RULES), str(RULES), str(STAGE1), "--fail-on-change"]) == 0
    same_decisions = ["diff", str(RULES), str(STAGE1), "--set", "minimum_total_score=60", "--fail-on-change"]
    assert main(same_decisions) == 0


def test_a_git_revision_is_read_without_checking_anything_out(capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and this repository's history")
    status = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    assert main(["diff", "HEAD:rules/sovereign_ai", str(RULES), str(STAGE1)]) == 0
    out = capsys.readouterr().out
    assert "old: sovereign-ai" in out and "0 of 5 decision(s) change" in out
    assert subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout == status
    assert main(["diff", "no-such-rev:rules/sovereign_ai", str(RULES)]) == 2
    assert "error[bad-revision]" in capsys.readouterr().err


def test_a_condition_rewritten_with_the_same_meaning_is_not_a_change(stricter: Path) -> None:
    stage = stricter / "stage1.yaml"
    text = stage.read_text(encoding="utf-8")
    stage.write_text(text.replace("when: not sovereign", "when: not (sovereign)"), encoding="utf-8")
    changes = {c.node: c for c in diff_packages(load_policy(RULES).ir, load_policy(stricter).ir)}
    assert set(changes) == {"parameter:minimum_total_score"}  # parentheses do not change the meaning


def test_what_if_parameters_are_type_checked_and_named_in_every_output(
    policy: Policy, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(PolicyError) as raised:
        policy.with_parameters({"minimum_total_score": "high", "minimum_total_scor": 1})
    assert sorted(d.code for d in raised.value.diagnostics) == ["bad-override", "bad-override"]
    assert "did you mean `minimum_total_score`?" in str(raised.value)
    stricter = policy.with_parameters({"minimum_total_score": 80})
    assert stricter.overrides == {"minimum_total_score": 80} and policy.overrides == {}
    assert stricter.evaluate(STAGE1).outcomes()["upstage"] == "eliminated"
    assert policy.evaluate(STAGE1).outcomes()["upstage"] == "advanced"  # the original is unchanged
    assert stricter.evaluate(STAGE1).to_json()["overrides"] == {"minimum_total_score": 80}
    assert "overrides" not in policy.evaluate(STAGE1).to_json()
    assert main(["evaluate", str(RULES), str(STAGE1), "--set", "minimum_total_score=80"]) == 0
    out = capsys.readouterr().out
    assert "what-if: minimum_total_score=80" in out and "upstage         eliminated" in out
    assert main(["evaluate", str(RULES), str(STAGE1), "--set", "minimum_total_score=high"]) == 2
    assert "--set minimum_total_score: error[bad-override]" in capsys.readouterr().err
    assert main(["evaluate", str(RULES), str(STAGE1), "--set", "minimum_total_score"]) == 2


def test_a_dated_parameter_takes_the_override_on_every_date(policy: Policy) -> None:
    fewer = policy.with_parameters({"teams_kept": 2})
    for date in ("2026-01-15", "2026-08-01"):
        params = fewer.compiled.parameters_on(dt.date.fromisoformat(date))
        assert params["teams_kept"] == 2
    assert fewer.evaluate(STAGE1).summary.slots == 2  # type: ignore[union-attr]


def test_what_if_facts_are_validated_and_named(policy: Policy, capsys: pytest.CaptureFixture[str]) -> None:
    changed = policy.with_facts(STAGE1, {"nc-ai": {"scores.expert": 33}})
    before, after = policy.evaluate(STAGE1), policy.evaluate(changed)
    assert changed.consortia[4].scores.expert == 33  # type: ignore[attr-defined]
    assert after.decisions["nc-ai"].trace["total_score"] > before.decisions["nc-ai"].trace["total_score"]
    args = ["evaluate", str(RULES), str(STAGE1), "--set-fact", "nc-ai.scores.expert=35", "--format", "json"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fact_overrides"] == {"nc-ai": {"scores.expert": 35}}
    assert main(["evaluate", str(RULES), str(STAGE1), "--set-fact", "nc-ai.scores.expert=99"]) == 2
    assert "consortia[4].scores.expert" in capsys.readouterr().err
    assert main(["evaluate", str(RULES), str(STAGE1), "--set-fact", "nobody.scores.expert=1"]) == 1
    assert "no subject `nobody`" in capsys.readouterr().err


@settings(max_examples=20)
@given(minimum=st.floats(min_value=0, max_value=100, allow_nan=False))
def test_diff_lists_exactly_the_decisions_whose_outcome_or_rank_differ(policy: Policy, minimum: float) -> None:
    """For any minimum score, the diff lists exactly the subjects whose outcome or rank differs."""
    other = policy.with_parameters({"minimum_total_score": minimum})
    report = diff(policy, other, [STAGE1])
    old, new = policy.evaluate(STAGE1), other.evaluate(STAGE1)
    moved = [
        i
        for i, d in old.decisions.items()
        if (d.outcome, d.placement and d.placement.rank)
        != (new.decisions[i].outcome, new.decisions[i].placement and new.decisions[i].placement.rank)
    ]
    assert [d.id for d in report.decisions] == moved
    assert all(d.causes == ("parameter:minimum_total_score",) for d in report.decisions)


def test_the_report_and_the_explanation_say_which_overrides_were_in_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "report.html"
    assert main(["report", str(RULES), str(STAGE1), "-o", str(page), "--set", "minimum_total_score=80"]) == 0
    assert "What-if:</strong> minimum_total_score = 80" in page.read_text(encoding="utf-8")
    assert main(["report", str(RULES), str(STAGE1), "-o", str(page)]) == 0
    assert "What-if" not in page.read_text(encoding="utf-8")
    capsys.readouterr()
    args = ["explain", str(RULES), str(STAGE1), "upstage", "--set", "minimum_total_score=80", "--format", "json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["overrides"] == {"minimum_total_score": 80}
    assert main(["explain", str(RULES), str(STAGE1), "upstage", "--set", "minimum_total_score=80"]) == 0
    assert capsys.readouterr().out.startswith("what-if: minimum_total_score=80\n")
