"""The rough edges a new programme's author hit (issue 14), each fixed and kept fixed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine import PolicyError, load_policy
from engine.cli import main
from tests.conftest import EXAMPLES, GPU_HOURS

CALL = EXAMPLES / "gpu_call.yaml"


def _gpu_call(tmp_path: Path, old: str, new: str, parameter: str = "") -> Path:
    folder = tmp_path / "gpu_call"
    shutil.copytree(GPU_HOURS, folder, ignore=shutil.ignore_patterns("tests"))
    path = folder / "allocation.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    if parameter:
        manifest = folder / "policy.yaml"
        manifest.write_text(manifest.read_text(encoding="utf-8") + parameter, encoding="utf-8")
    return folder


HOURS_PER_AWARD = """
  max_hours_per_award:
    title: Most GPU hours one award may take
    reference: "Call notice, art. 3"
    value: {value}
"""


def test_slots_that_are_not_a_whole_number_fail_check_at_the_slots_expression(tmp_path: Path) -> None:
    folder = _gpu_call(
        tmp_path, "slots: places", "slots: gpu_hour_pool / max_hours_per_award", HOURS_PER_AWARD.format(value=3000)
    )
    with pytest.raises(PolicyError) as caught:
        load_policy(folder)
    (found,) = [d for d in caught.value.diagnostics if d.code == "slots-not-whole"]
    assert found.message == (
        "`slots` of stage `allocation` is 3.33333 on 2026-03-01 (`gpu_hour_pool / max_hours_per_award`): "
        "places are counted in whole numbers of at least 0"
    )
    assert Path(found.span.file).name == "allocation.yaml" and found.span.line == 49


def test_slots_that_divide_evenly_on_every_date_pass_check(tmp_path: Path) -> None:
    folder = _gpu_call(
        tmp_path, "slots: places", "slots: gpu_hour_pool / max_hours_per_award", HOURS_PER_AWARD.format(value=2000)
    )
    result = load_policy(folder).evaluate(CALL)
    assert result.summary is not None and result.summary.slots == 5


def test_counts_are_singular_for_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(GPU_HOURS), "--no-search"]) == 0
    assert "ok: gpu-call 2026.1: 6 parameters, 0 values, 6 rules, 1 stage, 7 invariants" in capsys.readouterr().out


def test_the_outcome_column_widens_for_a_long_outcome_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _gpu_call(tmp_path, "outcome: not_allocated", "outcome: not_allocated_this_time")
    assert main(["evaluate", str(folder), str(CALL)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("ID"))
    row = next(line for line in lines if line.startswith("a2-institute"))
    assert row.split()[1] == "not_allocated_this_time"
    assert header.index("RANK") == row.index("2 of 9")  # the rank column stays aligned


def test_result_to_json_to_dict_and_json_text() -> None:
    result = load_policy(GPU_HOURS).evaluate(CALL)
    assert isinstance(result.to_json(), dict) and result.to_dict() == result.to_json()
    assert json.loads(result.to_json_text()) == json.loads(json.dumps(result.to_dict()))
    decision = result.decisions["a1-foundry"]
    assert json.loads(decision.to_json_text(indent=2))["outcome"] == decision.to_dict()["outcome"] == "allocated"


def test_a_list_fact_with_no_items_is_shown_without_a_dangling_colon(tmp_path: Path) -> None:
    folder = _gpu_call(
        tmp_path,
        "    when: domestic_lead and request_within_limit",
        "    when: all(p.domestic for p in partners) and domestic_lead and request_within_limit",
    )
    schema = folder / "facts.yaml"
    schema.write_text(
        schema.read_text(encoding="utf-8").replace(
            "      open_results:",
            "      partners: {type: Partner, list: true}\n      open_results:",
        )
        + "\n  Partner:\n    fields:\n      domestic: boolean\n",
        encoding="utf-8",
    )
    data = json.loads(json.dumps(load_policy(GPU_HOURS).load_cohort(CALL).model_dump(), default=str))
    for applicant in data["applicants"]:
        applicant["partners"] = []
    data["applicants"][8]["partners"] = [{"domestic": True}, {"domestic": True}]  # a9-nearly, ineligible too
    result = load_policy(folder).evaluate(data)
    empty = result.decisions["a8-abroad"].explain().to_text()  # ineligible: its eligibility is shown in full
    assert "fact `partners[].domestic` = no items" in empty and "item(s)" not in empty
    two = result.decisions["a9-nearly"].explain().to_text()
    assert "fact `partners[].domestic` = 2 items:" in two


def test_a_violated_cohort_invariant_is_explained_by_the_cohort_that_breaks_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "gpu_call"
    shutil.copytree(GPU_HOURS, folder)  # with its tests: their cohorts seed the search
    invariants = folder / "invariants.yaml"
    text = invariants.read_text(encoding="utf-8")
    broken = "holds: sum([d.awarded for d in decisions if d.awarded is not None]) <= summary.capacity / 2"
    invariants.write_text(text.replace(broken.replace(" / 2", ""), broken), encoding="utf-8")
    assert main(["check", str(folder), "--examples", "30"]) == 1
    out = capsys.readouterr().out
    assert "invariant `capacity_never_exceeded` does not hold" in out
    assert "explanation of the cohort that breaks it:" in out and "explanation of the offending decision" not in out
    explained = out.split("explanation of the cohort that breaks it:", 1)[1]
    assert "capacity" in explained and "awarded" in explained


def _run_with_terminal_stderr(args: list[str]) -> tuple[int, str]:
    """Run `policy ARGS` with stderr on a pseudo-terminal; its exit code and what the terminal showed."""
    import os
    import pty
    import subprocess
    import sys

    main_fd, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", *args],
        stdout=subprocess.DEVNULL,
        stderr=terminal,
        cwd=Path(__file__).parent.parent,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(main_fd, 4096)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(main_fd)
    return process.wait(timeout=300), shown.decode("utf-8", "replace")


def test_long_work_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path / "prog")]) == 0
    code, shown = _run_with_terminal_stderr(["test", str(tmp_path / "prog"), "--mutate", "--examples", "3"])
    assert code == 0 and "mutants:" in shown and "%|" in shown
    code, shown = _run_with_terminal_stderr(["check", str(tmp_path / "prog"), "--examples", "20"])
    assert code == 0 and "searching for counterexamples:" in shown


def test_no_progress_when_the_output_is_not_a_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "prog")]) == 0
    capsys.readouterr()
    assert main(["test", str(tmp_path / "prog"), "--mutate", "--examples", "3"]) == 0
    assert main(["check", str(tmp_path / "prog"), "--examples", "20"]) == 0
    assert capsys.readouterr().err == ""


def test_the_progress_library_is_not_imported_by_evaluate() -> None:
    import subprocess
    import sys

    code = "import sys; from engine.cli import main; main(['evaluate', 'rules/gpu_call', 'examples/gpu_call.yaml']); "
    code += "print('tqdm' in sys.modules, file=sys.stderr)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent.parent, check=True
    )
    assert done.stderr.strip() == "False"


def test_the_readme_names_exactly_the_commands_that_take_backend() -> None:
    import re

    from engine.cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices  # type: ignore[union-attr]
    taking = {
        name
        for name, sub in commands.items()
        if any("--backend" in action.option_strings for action in sub._actions)  # type: ignore[union-attr]
    }
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    sentence = re.search(
        r"`--backend generated\|python\|durable`\s*\(on the commands that evaluate for you: ([^;]+);", readme
    )
    assert sentence is not None
    named = set(re.findall(r"`(\w+)`", sentence.group(1)))
    assert named == taking == {"evaluate", "explain", "report", "letter", "diff", "serve"}


def test_a_large_evaluation_shows_progress_on_a_terminal_and_decides_the_same(tmp_path: Path) -> None:
    import yaml

    from engine.cli.common import LARGE_COHORT

    data = yaml.safe_load(CALL.read_text(encoding="utf-8"))
    first = data["applicants"][0]
    data["applicants"] = [{**first, "id": f"a{i}", "score": 50 + i % 50} for i in range(LARGE_COHORT)]
    facts = tmp_path / "large.yaml"
    facts.write_text(yaml.safe_dump(data), encoding="utf-8")
    code, shown = _run_with_terminal_stderr(["evaluate", str(GPU_HOURS), str(facts), "--format", "json"])
    assert code == 0 and "deciding:" in shown and f"/{2 * LARGE_COHORT}" in shown
    ticks: list[int] = []
    policy = load_policy(GPU_HOURS)
    with_ticks = policy.evaluate(facts, tick=lambda: ticks.append(1))
    assert len(ticks) == 2 * LARGE_COHORT and with_ticks.outcomes() == policy.evaluate(facts).outcomes()
