"""Policy test files are checked like rule files: unknown names get located diagnostics with suggestions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import load_policy
from engine.cli import main
from engine.verification.testing import prepare
from tests.conftest import GPU_HOURS

CASES = """\
facts: facts/call_2026.yaml
cases:
  - name: typos everywhere
    stage: allocaton
    set: {placse: 4}
    changes:
      a7-midco: {open_result: false, "lead.knd": sme, "lead.name": Other}
      a7-middco: {score: 70}
    expect:
      - {id: a1-foundry, outcome: alocated}
      - {id: a10-lat, outcome: ineligible, reasons: [commits_to_open_result]}
      - {id: a3-smallco, outcome: allocated, grants: {gpu_hour: 2500}}
"""


def _package(tmp_path: Path, cases: str) -> Path:
    folder = tmp_path / "gpu_call"
    shutil.copytree(GPU_HOURS, folder)
    (folder / "tests" / "typos.yaml").write_text(cases, encoding="utf-8")
    return folder


def test_every_unknown_name_in_a_case_file_is_located_with_a_suggestion(tmp_path: Path) -> None:
    folder = _package(tmp_path, CASES)
    _, problems = prepare(load_policy(folder))
    found = sorted(f"{d.span.line}:{d.span.column} {d.code}: {d.message} | {d.help}" for d in problems)
    assert found == sorted(
        [
            "4:12 unknown-stage: unknown stage `allocaton` | did you mean `allocation`?",
            "5:11 unknown-parameter: `set` names an unknown parameter `placse` | did you mean `places`?",
            "7:18 unknown-fact-path: `Applicant` has no field `open_result` (in `open_result`)"
            " | did you mean `open_results`?",
            "7:38 unknown-fact-path: `Lead` has no field `knd` (in `lead.knd`) | did you mean `kind`?",
            "8:7 unknown-subject: `changes` names `a7-middco`, which is not in the facts | did you mean `a7-midco`?",
            "10:35 unknown-outcome: unknown outcome `alocated` | did you mean `allocated`?",
            "11:14 unknown-subject: `a10-lat` is not in the facts | did you mean `a10-late`?",
            "11:54 unknown-rule: unknown rule `commits_to_open_result` among the expected reasons"
            " | did you mean `commits_to_open_results`?",
            "12:55 unknown-grant: unknown grant `gpu_hour` | did you mean `gpu_hours`?",
        ]
    )


def test_policy_test_and_check_report_the_case_file_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _package(tmp_path, CASES)
    assert main(["test", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "typos.yaml:10:35: error[unknown-outcome]: unknown outcome `alocated`" in out
    assert "did you mean `allocated`?" in out
    assert main(["check", str(folder), "--examples", "5"]) == 1
    assert "typos.yaml:10:35: error[unknown-outcome]" in capsys.readouterr().out


def test_the_shipped_packages_case_files_use_only_known_names() -> None:
    for package in sorted((GPU_HOURS.parent).glob("*/policy.yaml")):
        _, problems = prepare(load_policy(package.parent))
        assert problems == [], package
