"""The `policy` command line, run in process through `engine.cli.main` (one subprocess test).

Exit codes: 0 success, 1 check or evaluation failure, 2 bad usage or invalid input. A user never
sees a traceback unless `--debug` is given.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine import EvaluationError
from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent
RULES = str(ROOT / "rules" / "sovereign_ai")
STAGE1 = str(ROOT / "examples" / "stage1.yaml")
WILDCARD = str(ROOT / "examples" / "wildcard.yaml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def _table_rows(out: str) -> dict[str, str]:
    rows = {}
    for line in out.splitlines():
        match = re.match(r"^([a-z0-9-]+)\s{2,}(\S+)\s{2,}", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def _stage1_with(tmp_path: Path, old: str, new: str) -> str:
    text = Path(STAGE1).read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = tmp_path / "cohort.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return str(path)


# --- evaluate ---------------------------------------------------------------------------------


def test_evaluate_table_shows_stage1_outcomes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "evaluate", RULES, STAGE1)
    assert code == 0 and err == ""
    assert _table_rows(out) == {
        "lg-ai-research": "advanced",
        "sk-telecom": "advanced",
        "upstage": "advanced",
        "naver-cloud": "disqualified",
        "nc-ai": "eliminated",
    }
    assert out.startswith("policy sovereign-ai 2026.2.0 · stage stage1 · as of 2026-01-15")


def test_evaluate_table_gives_the_naver_cloud_reason_naming_qwen(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "evaluate", RULES, STAGE1)
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("naver-cloud"))
    reasons = []
    for line in lines[start + 1 :]:
        if not line.startswith(" "):
            break
        reasons.append(line.strip())
    assert any(r.startswith("✗ weights_trained_by_team:") and "Qwen2.5-VL" in r for r in reasons), reasons


def test_evaluate_table_reports_slots_left_open_for_the_additional_call(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "evaluate", RULES, STAGE1)
    assert "4 place(s): 3 filled, 1 left open → additional_call" in out


@pytest.mark.parametrize("facts", [STAGE1, WILDCARD], ids=["stage1", "wildcard"])
def test_evaluate_json_has_policy_as_of_and_decisions_with_reasons(
    capsys: pytest.CaptureFixture[str], facts: str
) -> None:
    code, out, _ = run(capsys, "evaluate", RULES, facts, "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["policy"] == "sovereign-ai"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["as_of"])
    assert isinstance(data["decisions"], list) and data["decisions"]
    for decision in data["decisions"]:
        assert {"id", "outcome", "reasons"} <= set(decision)
        assert isinstance(decision["reasons"], list) and decision["reasons"], decision["id"]
        for reason in decision["reasons"]:
            assert {"rule", "title", "reference", "message"} <= set(reason)
            assert all(isinstance(reason[k], str) and reason[k] for k in ("rule", "title", "reference", "message"))


def test_evaluate_json_stage1_outcomes_and_date(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "evaluate", RULES, STAGE1, "--format", "json")
    data = json.loads(out)
    assert data["as_of"] == "2026-01-15"
    outcomes = {d["id"]: d["outcome"] for d in data["decisions"]}
    assert outcomes == {
        "lg-ai-research": "advanced",
        "sk-telecom": "advanced",
        "upstage": "advanced",
        "naver-cloud": "disqualified",
        "nc-ai": "eliminated",
    }
    naver = next(d for d in data["decisions"] if d["id"] == "naver-cloud")
    assert any(r["rule"] == "weights_trained_by_team" and "Qwen2.5-VL" in r["message"] for r in naver["reasons"])


def test_evaluate_wildcard_selects_only_motif_technologies(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "evaluate", RULES, WILDCARD, "--format", "json")
    data = json.loads(out)
    assert data["as_of"] == "2026-02-20"
    selected = [d["id"] for d in data["decisions"] if d["outcome"] == "selected"]
    assert selected == ["motif-technologies"]
    assert {d["id"]: d["outcome"] for d in data["decisions"]}["trillion-labs"] == "not_selected"


def test_evaluate_wildcard_table_selects_only_motif_technologies(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "evaluate", RULES, WILDCARD)
    assert code == 0
    assert _table_rows(out) == {"motif-technologies": "selected", "trillion-labs": "not_selected"}


# --- explain ----------------------------------------------------------------------------------


def test_explain_naver_cloud_names_qwen_the_rule_and_its_reference(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "explain", RULES, STAGE1, "naver-cloud")
    assert code == 0 and err == ""
    assert out.startswith("naver-cloud: disqualified")
    assert "Qwen2.5-VL" in out
    assert "rule `weights_trained_by_team`" in out
    assert "at minimum, weights are initialised and trained by the team" in out
    assert "pretrained foreign weights, encoders included, are not accepted" in out


def test_explain_json_holds_the_decision_and_a_graph(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", RULES, STAGE1, "naver-cloud", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["decision"]["id"] == "naver-cloud" and data["decision"]["outcome"] == "disqualified"
    assert data["graph"]
    assert "weights_trained_by_team" in json.dumps(data["graph"])


def test_explain_dot_is_a_well_formed_digraph(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", RULES, STAGE1, "naver-cloud", "--format", "dot")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0] == "digraph explanation {" and lines[-1] == "}"
    statement = re.compile(r'^\s+("(?:[^"\\]|\\.)*"( -> "(?:[^"\\]|\\.)*")?( \[.*\])?|rankdir=\w+|node \[.*\]);$')
    bad = [line for line in lines[1:-1] if not statement.match(line)]
    assert bad == []
    assert any(" -> " in line for line in lines)
    assert '"rule:weights_trained_by_team"' in out


def test_explain_dot_labels_keep_their_symbols(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "explain", RULES, STAGE1, "naver-cloud", "--format", "dot")
    assert "\\u" not in out and "✗ weights_trained_by_team" in out


def test_explain_mermaid_is_a_flowchart_with_edges(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", RULES, STAGE1, "naver-cloud", "--format", "mermaid")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("flowchart")
    assert any("-->" in line for line in lines)
    assert "weights_trained_by_team" in out


def test_explain_unknown_id_exits_2_listing_known_ids(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "explain", RULES, STAGE1, "kakao")
    assert code == 2 and out == ""
    assert "`kakao`" in err
    for known in ("lg-ai-research", "sk-telecom", "upstage", "naver-cloud", "nc-ai"):
        assert known in err


# --- check ------------------------------------------------------------------------------------


def test_check_of_the_package_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", RULES)
    assert code == 0 and err == ""
    assert (
        out.strip().splitlines()[-1]
        == "ok: sovereign-ai 2026.2.0: 17 parameters, 10 values, 25 rules, 4 stages, 18 invariants"
    )


def test_check_json_of_the_package_is_ok_without_diagnostics(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", RULES, "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["ok"] is True and data["diagnostics"] == [] and data["violations"] == []


def test_check_of_a_broken_package_exits_1_with_a_located_diagnostic(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    package = tmp_path / "pkg"
    shutil.copytree(RULES, package)
    scores = package / "scores.yaml"
    scores.write_text(
        scores.read_text(encoding="utf-8").replace("scores.benchmark.nia +", "scores.benchmrk.nia +"), encoding="utf-8"
    )
    code, out, err = run(capsys, "check", str(package))
    assert code == 1 and out == ""
    text = scores.read_text(encoding="utf-8")
    line = text[: text.index("benchmrk")].count("\n") + 1
    assert f"{scores}:{line}:18: error[unknown-field]: `Scores` has no field `benchmrk`" in err
    assert "did you mean `benchmark`?" in err
    assert err.strip().endswith("1 error(s), 0 warning(s)")


def test_check_of_a_folder_without_manifest_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "check", str(tmp_path))
    assert code == 2 and "error[no-manifest]" in err


# --- invalid facts and arguments ---------------------------------------------------------------


def test_score_above_its_maximum_exits_2_naming_field_and_position(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    facts = _stage1_with(tmp_path, "      expert: 31.6", "      expert: 36.0")
    code, out, err = run(capsys, "evaluate", RULES, facts)
    assert code == 2 and out == ""
    text = Path(facts).read_text(encoding="utf-8")
    line = text[: text.index("expert: 36.0")].count("\n") + 1
    wanted = "error[invalid-field]: `consortia[0].scores.expert`: input should be less than or equal to 35"
    assert f"{facts}:{line}:15: {wanted}" in err


def test_missing_required_fact_exits_2_naming_the_field(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    facts = _stage1_with(tmp_path, "    history:\n      entry: selected_2025\n      stages: []\n", "")
    code, _, err = run(capsys, "evaluate", RULES, facts)
    assert code == 2
    assert "error[missing-field]: missing required field `consortia[0].history`" in err
    assert re.search(rf"{re.escape(facts)}:\d+:\d+: error\[missing-field\]", err)


def test_nonexistent_fact_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.yaml")
    code, _, err = run(capsys, "evaluate", RULES, missing)
    assert code == 2
    assert f"{missing}: error[unreadable-file]" in err


def test_unknown_stage_exits_1_naming_the_known_stages(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "evaluate", RULES, STAGE1, "--stage", "stage9")
    assert code == 1 and out == ""
    assert "unknown stage `stage9`" in err and "`stage1`" in err and "`additional_call`" in err


def test_as_of_before_parameters_take_effect_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "evaluate", RULES, STAGE1, "--as-of", "2025-01-01", "--outside-period")
    assert code == 1 and out == ""
    assert "has no value in force on 2025-01-01" in err
    assert re.search(r"parameter `\w+`", err)


def test_as_of_that_is_not_a_date_gives_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "evaluate", RULES, STAGE1, "--as-of", "notadate")
    assert code != 0 and out == ""
    assert "`notadate` is not a date (YYYY-MM-DD)" in err


def test_as_of_that_is_not_a_date_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, "evaluate", RULES, STAGE1, "--as-of", "notadate")
    assert code == 2


def test_unknown_command_line_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["evaluate", RULES, STAGE1, "--format", "xml"])
    assert caught.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_internal_evaluation_error_is_reported_without_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    package = tmp_path / "pkg"
    shutil.copytree(RULES, package)
    stage1 = package / "stage1.yaml"
    text = stage1.read_text(encoding="utf-8").replace(
        "when: total_score >= minimum_total_score", "when: total_score >= None and minimum_total_score > 0"
    )
    stage1.write_text(text, encoding="utf-8")
    code, _, err = run(capsys, "evaluate", str(package), STAGE1)
    assert code in (1, 2) and err


# --- schema -----------------------------------------------------------------------------------


def test_schema_prints_the_cohort_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema", RULES)
    assert code == 0
    schema = json.loads(out)
    assert {"consortia", "context"} <= set(schema["properties"])
    assert "consortia" in schema["required"]


def test_schema_subject_prints_the_consortium_schema(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "schema", RULES, "--subject")
    schema = json.loads(out)
    assert schema["title"] == "Consortium" and "scores" in schema["properties"]


def test_schema_defaults_to_the_only_package_under_rules(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shutil.copytree(RULES, tmp_path / "rules" / "sovereign_ai")  # however many packages the project ships
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "schema")
    assert code == 0 and "consortia" in json.loads(out)["properties"]


def test_schema_with_several_packages_under_rules_lists_them(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("sovereign_ai", "gpu_call"):
        shutil.copytree(ROOT / "rules" / name, tmp_path / "rules" / name)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "schema")
    assert code == 2 and not out
    assert "`rules/` holds 2: `rules/gpu_call`, `rules/sovereign_ai`" in err and "policy schema RULES" in err


def test_schema_with_no_package_under_rules_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "schema")
    assert code == 2 and "no package under `rules/`" in err


def test_schema_of_a_package_with_a_fact_schema_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema", str(ROOT / "rules" / "gpu_call"))
    schema = json.loads(out)
    assert code == 0 and schema["title"] == "Cohort" and set(schema["required"]) == {"context", "applicants"}
    applicant = schema["$defs"]["Applicant"]
    assert applicant["properties"]["score"]["anyOf"][0] == {"maximum": 100.0, "minimum": 0.0, "type": "number"}
    assert applicant["properties"]["id"]["fixed"] is True


def test_schema_rules_is_the_json_schema_of_the_rule_file_format(capsys: pytest.CaptureFixture[str]) -> None:
    """The schema an editor uses: it accepts every file of the shipped packages and refuses an unknown key."""
    import jsonschema_rs  # installed with schemathesis (test extras)

    from engine.source.yamlsource import read_document

    code, out, _ = run(capsys, "schema", "--rules")
    schema = json.loads(out)
    assert code == 0
    files = [p for p in (ROOT / "rules").glob("*/*.yaml") if p.name != "facts.yaml"]
    assert len(files) > 5
    for path in files:
        data = json.loads(json.dumps(read_document(path).data, default=str))
        jsonschema_rs.validate(schema, data)
    assert not jsonschema_rs.is_valid(schema, {"rules": [{"id": "x", "title": "t", "when": "true", "wehn": "x"}]})


# --- debug and the module entry point ---------------------------------------------------------


def test_debug_reraises_the_engine_error() -> None:
    with pytest.raises(EvaluationError, match="unknown stage `nope`"):
        main(["--debug", "evaluate", RULES, STAGE1, "--stage", "nope"])


class _ClosedPipe:
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_closed_output_pipe_exits_0_quietly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    code = main(["check", RULES])
    err = capsys.readouterr().err
    assert (code, err) == (0, "")


def test_python_dash_m_engine_runs_the_cli() -> None:
    good = subprocess.run(
        [sys.executable, "-m", "engine", "evaluate", RULES, STAGE1],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert good.returncode == 0, good.stderr
    assert "naver-cloud" in good.stdout and "disqualified" in good.stdout
    assert "Traceback" not in good.stderr


def test_schema_fact_schema_is_the_json_schema_of_fact_schema_files(capsys: pytest.CaptureFixture[str]) -> None:
    import jsonschema_rs

    from engine.source.yamlsource import read_document

    code, out, _ = run(capsys, "schema", "--fact-schema")
    schema = json.loads(out)
    assert code == 0 and "list" in schema["$defs"]["FieldSpec"]["properties"]
    jsonschema_rs.validate(schema, read_document(ROOT / "rules" / "gpu_call" / "facts.yaml").data)
    assert not jsonschema_rs.is_valid(schema, {"records": {"A": {"fields": {"x": {"type": "text", "fixd": True}}}}})
