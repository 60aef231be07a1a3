"""Fact validation: `policy.facts` models through `engine.source.facts.load_facts`, from dicts and from files.

Numbers and booleans are strict, scores stay within their published maxima, provenance is
complete, and every error names the field path and, for files, the line and column.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from engine import Diagnostic, FactError
from engine.source.facts import load_facts
from policy.facts import BenchmarkScores, Cohort, Consortium, Organisation, Panel, Scores, Weights

ROOT = Path(__file__).resolve().parent.parent
STAGE1 = ROOT / "examples" / "stage1.yaml"
STAGE1_TEXT = STAGE1.read_text(encoding="utf-8")
UPSTREAM = {"model": "Qwen2.5-VL", "owner": "Alibaba Cloud", "country": "CN"}


def _stage1() -> dict[str, Any]:
    return copy.deepcopy(_STAGE1_DATA)


_STAGE1_DATA = yaml.safe_load(STAGE1_TEXT)


def _errors(model: type, source: Any) -> list[Diagnostic]:
    with pytest.raises(FactError) as caught:
        load_facts(model, source)
    return caught.value.diagnostics


def _only(model: type, source: Any) -> Diagnostic:
    found = _errors(model, source)
    assert len(found) == 1, [d.render() for d in found]
    return found[0]


def _edited_file(tmp_path: Path, old: str, new: str) -> Path:
    assert STAGE1_TEXT.count(old) == 1, f"edit must match once: {old!r}"
    path = tmp_path / "cohort.yaml"
    path.write_text(STAGE1_TEXT.replace(old, new), encoding="utf-8")
    return path


# --- examples and pass-through ---------------------------------------------------------------


def test_both_example_fact_files_validate() -> None:
    for name in ("stage1.yaml", "wildcard.yaml"):
        cohort = load_facts(Cohort, ROOT / "examples" / name)
        assert isinstance(cohort, Cohort) and cohort.consortia


def test_load_facts_returns_a_model_instance_unchanged() -> None:
    cohort = load_facts(Cohort, STAGE1)
    assert load_facts(Cohort, cohort) is cohort


def test_load_facts_accepts_a_dict() -> None:
    cohort = load_facts(Cohort, _stage1())
    assert [c.id for c in cohort.consortia] == ["lg-ai-research", "sk-telecom", "upstage", "naver-cloud", "nc-ai"]


# --- strict numbers and booleans -------------------------------------------------------------


def test_score_given_as_text_is_rejected_not_coerced() -> None:
    data = _stage1()
    data["consortia"][0]["scores"]["expert"] = "33.6"
    found = _only(Cohort, data)
    assert found.code == "invalid-field"
    assert "`consortia[0].scores.expert`" in found.message and "valid number" in found.message


def test_benchmark_part_given_as_boolean_is_rejected() -> None:
    found = _only(BenchmarkScores, {"nia": 5, "global_common": True, "global_individual": 5})
    assert "`global_common`" in found.message and "valid number" in found.message


def test_boolean_fact_given_as_yes_text_is_rejected() -> None:
    data = _stage1()
    data["consortia"][0]["model"]["team_controls_operation"] = "yes"
    found = _only(Cohort, data)
    assert "`consortia[0].model.team_controls_operation`" in found.message and "valid boolean" in found.message


def test_integer_scores_are_accepted_as_numbers() -> None:
    scores = load_facts(
        Scores, {"benchmark": {"nia": 10, "global_common": 20, "global_individual": 10}, "expert": 35, "user": 25}
    )
    assert scores.expert == 35 and scores.benchmark.global_common == 20


# --- score maxima -----------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "maximum"), [("nia", 10), ("global_common", 20), ("global_individual", 10)])
def test_benchmark_part_above_its_maximum_is_rejected(field: str, maximum: int) -> None:
    parts = {"nia": 5.0, "global_common": 5.0, "global_individual": 5.0}
    assert BenchmarkScores(**{**parts, field: float(maximum)}).model_dump()[field] == maximum
    found = _only(BenchmarkScores, {**parts, field: maximum + 0.1})
    assert found.message == f"`{field}`: input should be less than or equal to {maximum}"


@pytest.mark.parametrize(("field", "maximum"), [("expert", 35), ("user", 25)])
def test_review_score_above_its_maximum_is_rejected(field: str, maximum: int) -> None:
    benchmark = {"nia": 1.0, "global_common": 1.0, "global_individual": 1.0}
    found = _only(Scores, {"benchmark": benchmark, field: maximum + 0.5})
    assert found.message == f"`{field}`: input should be less than or equal to {maximum}"


def test_score_maxima_constants_add_up_to_the_published_totals() -> None:
    assert BenchmarkScores.MAXIMA == {"nia": 10, "global_common": 20, "global_individual": 10}
    assert Scores.MAXIMA == {"benchmark": 40, "expert": 35, "user": 25}
    assert sum(BenchmarkScores.MAXIMA.values()) == Scores.MAXIMA["benchmark"] and sum(Scores.MAXIMA.values()) == 100


def test_negative_score_is_rejected() -> None:
    found = _only(BenchmarkScores, {"nia": -1, "global_common": 1, "global_individual": 1})
    assert found.message == "`nia`: input should be greater than or equal to 0"


# --- provenance of weights --------------------------------------------------------------------


def test_upstream_weights_without_use_are_rejected() -> None:
    found = _only(Weights, {"origin": "upstream", "upstream": UPSTREAM})
    assert "pretrained upstream weights need `upstream`" in found.message and "`use`" in found.message


def test_upstream_weights_without_upstream_are_rejected() -> None:
    found = _only(Weights, {"origin": "upstream", "use": "frozen"})
    assert "pretrained upstream weights need `upstream`" in found.message


def test_team_weights_with_upstream_or_use_are_rejected() -> None:
    found = _only(Weights, {"origin": "team", "use": "frozen"})
    assert "weights trained by the team take no `upstream` or `use`" in found.message


def test_complete_upstream_weights_are_accepted() -> None:
    weights = load_facts(Weights, {"origin": "upstream", "upstream": UPSTREAM, "use": "frozen"})
    assert weights.upstream is not None and str(weights.upstream) == "Qwen2.5-VL (Alibaba Cloud, CN)"


def test_weights_rule_is_enforced_by_the_model_itself() -> None:
    with pytest.raises(ValidationError):
        Weights(origin="upstream")


# --- panel votes, ids, country codes ----------------------------------------------------------


def test_votes_for_above_members_is_rejected() -> None:
    found = _only(Panel, {"members": 3, "votes_for": 4})
    assert "`votes_for` (4) cannot exceed `members` (3)" in found.message


def test_votes_for_equal_to_members_is_accepted() -> None:
    assert load_facts(Panel, {"members": 3, "votes_for": 3}).votes_for == 3


def test_repeated_consortium_ids_are_rejected() -> None:
    data = _stage1()
    data["consortia"][1]["id"] = "lg-ai-research"
    found = _only(Cohort, data)
    assert "consortium ids must be unique: lg-ai-research repeated" in found.message


@pytest.mark.parametrize("country", ["kr", "KOR", "Korea", "K1", ""])
def test_country_code_must_be_two_capital_letters(country: str) -> None:
    found = _only(Organisation, {"name": "NC AI", "country": country, "kind": "company"})
    assert found.message.startswith("`country`: ")


def test_valid_country_code_is_accepted() -> None:
    assert load_facts(Organisation, {"name": "NC AI", "country": "KR", "kind": "company"}).country == "KR"


def test_consortium_id_must_be_a_lower_case_slug() -> None:
    data = _stage1()["consortia"][0]
    data["id"] = "LG AI"
    found = _only(Consortium, data)
    assert found.message.startswith("`id`: ")


def test_every_bad_field_is_reported_at_once() -> None:
    found = _errors(
        Scores, {"benchmark": {"nia": 11, "global_common": 21, "global_individual": 11}, "expert": 36, "user": 26}
    )
    assert sorted(d.message.split(":")[0] for d in found) == sorted(
        ["`benchmark.nia`", "`benchmark.global_common`", "`benchmark.global_individual`", "`expert`", "`user`"]
    )


# --- where errors point -----------------------------------------------------------------------


def test_dict_input_errors_are_located_at_facts_placeholder() -> None:
    data = _stage1()
    data["consortia"][0]["scores"]["expert"] = 36.0
    with pytest.raises(FactError) as caught:
        load_facts(Cohort, data)
    found = caught.value.diagnostics[0]
    assert found.span is not None and found.span.file == "<facts>"
    assert str(caught.value).startswith("<facts>: error[invalid-field]: `consortia[0].scores.expert`")


def test_missing_required_field_names_the_field() -> None:
    data = _stage1()
    del data["consortia"][2]["history"]
    found = _only(Cohort, data)
    assert (found.code, found.message) == ("missing-field", "missing required field `consortia[2].history`")


def test_unknown_fact_field_is_rejected_by_name() -> None:
    data = _stage1()
    data["consortia"][0]["scores"]["experts"] = 30.0
    found = _only(Cohort, data)
    assert (found.code, found.message) == ("unknown-field", "unknown field `consortia[0].scores.experts`")
    assert found.help is None  # `expert` is given beside it: not what it meant


@pytest.mark.parametrize(
    ("where", "wrong", "meant"),
    [
        (("scores",), "expret", "expert"),  # an optional field, named by the fact model
        (("scores", "benchmark"), "global_comon", "global_common"),
        (("lead",), "kindd", "kind"),  # a required field, missing beside it
    ],
)
def test_an_unknown_fact_field_says_which_field_it_may_have_meant(
    where: tuple[str, ...], wrong: str, meant: str
) -> None:
    data = _stage1()
    mapping = data["consortia"][1]
    for key in where:
        mapping = mapping[key]
    mapping[wrong] = mapping.pop(meant)
    diagnostics = _errors(Cohort, data)
    unknown = next(d for d in diagnostics if d.code == "unknown-field")
    assert unknown.message == f"unknown field `consortia[1].{'.'.join(where)}.{wrong}`"
    assert unknown.help == f"did you mean `{meant}`?"


@pytest.mark.parametrize(
    ("old", "new", "line", "column", "message"),
    [
        (
            "      expert: 31.6",
            "      expert: 36.0",
            47,
            15,
            "`consortia[0].scores.expert`: input should be less than or equal to 35",
        ),
        (
            "      expert: 31.6",
            '      expert: "33.6"',
            47,
            15,
            "`consortia[0].scores.expert`: input should be a valid number",
        ),
        (
            "      user: 25.0",
            "      user: 25.5",
            48,
            13,
            "`consortia[0].scores.user`: input should be less than or equal to 25",
        ),
        (
            "{nia: 8.4,",
            "{nia: 10.4,",
            46,
            24,
            "`consortia[0].scores.benchmark.nia`: input should be less than or equal to 10",
        ),
        (
            "global_common: 16.8,",
            "global_common: 20.8,",
            46,
            44,
            "`consortia[0].scores.benchmark.global_common`: input should be less than or equal to 20",
        ),
        (
            "global_individual: 8.4}",
            "global_individual: 10.4}",
            46,
            69,
            "`consortia[0].scores.benchmark.global_individual`: input should be less than or equal to 10",
        ),
        (
            "LG AI Research, country: KR,",
            "LG AI Research, country: Korea,",
            25,
            43,
            "`consortia[0].lead.country`: string should match pattern '^[A-Z]{2}$'",
        ),
        (
            "    panel:\n      members: 10\n",
            "    panel:\n      members: 10\n      votes_for: 11\n",
            162,
            7,
            "`consortia[3].panel`: `votes_for` (11) cannot exceed `members` (10)",
        ),
        (
            "            use: frozen\n            share_of_parameters: 0.12\n",
            "            share_of_parameters: 0.12\n",
            144,
            13,
            (
                "`consortia[3].model.components[1].weights`: pretrained upstream weights need `upstream` "
                "(model, owner, country) and `use` (frozen or fine_tuned)"
            ),
        ),
    ],
    ids=[
        "expert-max",
        "expert-text",
        "user-max",
        "nia-max",
        "global-common-max",
        "global-individual-max",
        "country",
        "votes",
        "upstream-use",
    ],
)
def test_fact_file_error_names_path_line_and_column(
    tmp_path: Path, old: str, new: str, line: int, column: int, message: str
) -> None:
    path = _edited_file(tmp_path, old, new)
    found = _only(Cohort, path)
    assert found.span is not None
    assert (found.span.file, found.span.line, found.span.column) == (str(path), line, column)
    assert found.message == message
    assert found.render() == f"{path}:{line}:{column}: error[invalid-field]: {message}"


def test_repeated_id_in_a_file_points_at_the_repeat(tmp_path: Path) -> None:
    path = _edited_file(tmp_path, "  - id: sk-telecom", "  - id: lg-ai-research")
    found = _only(Cohort, path)
    assert found.span is not None and (found.span.line, found.span.column) == (53, 9)
    assert "`consortia[1].id`" in found.message


def test_fact_file_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n", encoding="utf-8")
    found = _only(Cohort, path)
    assert found.code == "invalid-file" and "`Cohort`" in found.message


def test_fact_file_with_bad_json_is_located(tmp_path: Path) -> None:
    path = tmp_path / "cohort.json"
    path.write_text('{"context": {\n  "stage": }\n}', encoding="utf-8")
    found = _only(Cohort, path)
    assert found.code == "json-syntax" and found.span is not None
    assert (found.span.file, found.span.line) == (str(path), 2)


def test_missing_fact_file_is_an_unreadable_file_error(tmp_path: Path) -> None:
    found = _only(Cohort, tmp_path / "absent.yaml")
    assert (
        found.code == "unreadable-file" and found.span is not None and found.span.file == str(tmp_path / "absent.yaml")
    )


@pytest.mark.parametrize("stage", ["stage1", "additional_call", "stage2"])
def test_a_history_record_names_any_stage_id_the_rule_files_allow(stage: str) -> None:
    data = _stage1()
    data["consortia"][0]["history"]["stages"] = [{"stage": stage, "outcome": "advanced"}]
    assert load_facts(Cohort, data).consortia[0].history.stages[0].stage == stage


@pytest.mark.parametrize("stage", ["Stage1", "stage-1", "1stage", ""])
def test_a_history_record_refuses_what_is_not_a_stage_id(stage: str) -> None:
    data = _stage1()
    data["consortia"][0]["history"]["stages"] = [{"stage": stage, "outcome": "advanced"}]
    with pytest.raises(FactError) as raised:
        load_facts(Cohort, data)
    assert "consortia[0].history.stages[0].stage" in str(raised.value)
