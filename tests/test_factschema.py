"""Facts declared without Python: a package's fact schema file (records, fields, types, bounds, choices)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import FactError, PolicyError, load_policy
from engine.language.factpaths import field_info
from tests.conftest import EXAMPLES, GPU_HOURS


def _package(tmp_path: Path, schema: str, manifest_edit: tuple[str, str] | None = None) -> Path:
    folder = tmp_path / "gpu_call"
    shutil.copytree(GPU_HOURS, folder, ignore=shutil.ignore_patterns("tests"))
    (folder / "facts.yaml").write_text(schema, encoding="utf-8")
    if manifest_edit is not None:
        manifest = folder / "policy.yaml"
        manifest.write_text(manifest_edit[1].join(manifest.read_text().split(manifest_edit[0])), encoding="utf-8")
    return folder


def _errors(folder: Path) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy(folder)
    return [
        f"{Path(d.span.file).name}:{d.span.line}:{d.span.column}: {d.code}: {d.message} | {d.help}"
        for d in caught.value.diagnostics
    ]


SCHEMA = (GPU_HOURS / "facts.yaml").read_text(encoding="utf-8")


def test_the_gpu_call_decides_with_models_built_from_its_schema_file() -> None:
    policy = load_policy(GPU_HOURS)
    schema = policy.ir.schema
    assert schema.subject.__name__ == "Applicant" and schema.cohort.__name__ == "Cohort"
    result = policy.evaluate(EXAMPLES / "gpu_call.yaml")
    assert result.decisions["a1-foundry"].outcome == "allocated"
    assert result.decisions["a8-abroad"].outcome == "ineligible"


def test_schema_models_validate_bounds_choices_and_optional_fields() -> None:
    cohort = load_policy(GPU_HOURS).ir.schema.cohort
    good = {
        "context": {"stage": "allocation", "date": "2026-06-15"},
        "applicants": [{"id": "a", "lead": {"name": "A", "kind": "sme", "domestic": True}}],
    }
    assert cohort.model_validate(good).applicants[0].score is None  # optional: missing is None
    for field, value, words in [
        ("score", 101, "less than or equal to 100"),
        ("requested_gpu_hours", 0, "greater than 0"),
        ("colour", "red", "extra"),
    ]:
        bad = {**good, "applicants": [{**good["applicants"][0], field: value}]}
        with pytest.raises(ValueError, match=words):
            cohort.model_validate(bad)
    bad_kind = {
        **good,
        "applicants": [{**good["applicants"][0], "lead": {"name": "A", "kind": "guild", "domestic": True}}],
    }
    with pytest.raises(ValueError, match="sme"):
        cohort.model_validate(bad_kind)


def test_a_fact_file_error_names_the_field_path_and_line(tmp_path: Path) -> None:
    facts = tmp_path / "call.yaml"
    text = (EXAMPLES / "gpu_call.yaml").read_text(encoding="utf-8").replace("score: 95", "score: 195")
    facts.write_text(text, encoding="utf-8")
    with pytest.raises(FactError) as caught:
        load_policy(GPU_HOURS).evaluate(facts)
    (found,) = caught.value.diagnostics
    assert "`applicants[0].score`" in found.message and found.span.line == 5


def test_fixed_and_described_fields_carry_into_the_models() -> None:
    subject = load_policy(GPU_HOURS).ir.schema.subject
    assert field_info(subject, "lead.domestic")[0] is False  # fixed: why-not never proposes changing it
    assert field_info(subject, "score")[0] is True
    assert subject.model_fields["score"].description == "review score"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("lead: Lead", "lead: Laed"),
            "facts.yaml:17:13: unknown-type: field `Applicant.lead` has an unknown type `Laed` | did you mean `Lead`?",
        ),
        (
            ("name: {type: text, fixed: true}", "name: {type: text, fixed: true, min: 1}"),
            "facts.yaml:9:13: bad-field: field `Lead.name` has bounds, but its type `text` is not a number | None",
        ),
        (
            ("stage: text", "stage: {type: number, choices: [a, b]}"),
            "facts.yaml:25:38: bad-field: field `Call.stage` has choices, but its type `number` is not text | None",
        ),
        (
            ("lead: Lead", "lead: Applicant"),
            "facts.yaml:13:3: record-cycle: record `Applicant` contains itself: Applicant → Applicant | a fact file",
        ),
        (
            ("date: date", "date: date\n      hour: {type: integer, min: 5, max: 1}"),
            "facts.yaml:27:13: invalid-field: `records.Call.fields.hour`: the lower bound 5 is above the upper bound 1",
        ),
        (
            ("fixed: true}", "fixd: true}"),
            "facts.yaml:9:26: unknown-field: unknown field `records.Lead.fields.name.fixd` | did you mean `fixed`?",
        ),
        (
            ("stage: text", "stage: os.system"),
            "facts.yaml:25:14: unknown-type: field `Call.stage` has an unknown type `os.system` | the types are",
        ),
    ],
)
def test_a_bad_schema_file_is_reported_at_its_line_and_column(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    assert edit[0] in SCHEMA
    (found, *_) = _errors(_package(tmp_path, SCHEMA.replace(edit[0], edit[1], 1)))
    assert found.startswith(expected), found


def test_the_manifest_names_a_record_the_schema_lacks(tmp_path: Path) -> None:
    folder = _package(tmp_path, SCHEMA, ("subject: Applicant", "subject: Aplicant"))
    (found,) = _errors(folder)
    assert found == (
        "policy.yaml:6:12: bad-fact-model: the fact schema file `facts.yaml` has no record `Aplicant` "
        "| did you mean `Applicant`?"
    )


def test_a_missing_or_outside_schema_file_is_reported(tmp_path: Path) -> None:
    folder = _package(tmp_path, SCHEMA, ("schema: facts.yaml", "schema: fact.yaml"))
    assert _errors(folder)[0].startswith(
        "policy.yaml:5:11: missing-fact-schema: fact schema file `fact.yaml` not found"
    )
    other = _package(tmp_path / "b", SCHEMA, ("schema: facts.yaml", "schema: ../facts.yaml"))
    assert "leads out of the package folder" in _errors(other)[0]


def test_with_a_schema_file_subject_and_cohort_are_record_names(tmp_path: Path) -> None:
    folder = _package(tmp_path, SCHEMA, ("subject: Applicant", "subject: mod:Applicant"))
    assert "name records of the schema file, not `mod:Applicant`" in _errors(folder)[0]


def test_the_schema_file_is_part_of_the_package_digest_and_its_recorded_files(tmp_path: Path) -> None:
    folder = _package(tmp_path, SCHEMA)
    before = load_policy(folder)
    assert "facts.yaml" in before.sources
    (folder / "facts.yaml").write_text(SCHEMA.replace("max: 100", "max: 90"), encoding="utf-8")
    after = load_policy(folder)
    assert after.ir.digest != before.ir.digest


def test_schema_models_pickle_and_decide_in_worker_processes() -> None:
    """Instances of the models built from a schema file cross process boundaries (evaluate_many)."""
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    from engine import evaluate_many

    policy = load_policy(GPU_HOURS)
    cohort = policy.load_cohort(EXAMPLES / "gpu_call.yaml")
    assert pickle.loads(pickle.dumps(cohort)) == cohort
    assert load_policy(GPU_HOURS).ir.schema.cohort is policy.ir.schema.cohort  # the same bytes, the same classes
    with ProcessPoolExecutor(max_workers=1) as executor:
        (result,) = evaluate_many(policy, [EXAMPLES / "gpu_call.yaml"], executor)
    assert result.outcomes() == policy.evaluate(EXAMPLES / "gpu_call.yaml").outcomes()


def test_a_decision_of_a_schema_file_package_replays_from_the_record_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The schema file is one of the package files a record keeps: replay needs nothing else."""
    import json

    from engine.cli import main

    folder, database = tmp_path / "gpu_call", tmp_path / "decisions.db"
    shutil.copytree(GPU_HOURS, folder)
    facts = str(EXAMPLES / "gpu_call.yaml")
    assert main(["evaluate", str(folder), facts, "--record", str(database), "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)["record"]
    shutil.rmtree(folder)
    assert main(["replay", str(database), record]) == 0
    assert "identical: 11 decision(s), byte for byte" in capsys.readouterr().out


@settings(max_examples=60)
@given(
    low=st.integers(-100, 100),
    width=st.integers(0, 100),
    value=st.one_of(st.integers(-300, 300).map(float), st.floats(-300, 300, allow_nan=False)),
    exclusive=st.booleans(),
    kind=st.sampled_from(["number", "integer"]),
)
def test_a_fields_bounds_accept_exactly_the_values_between_them(
    low: int, width: int, value: float, exclusive: bool, kind: str
) -> None:
    """A numeric field of a schema file accepts a value exactly when it lies within its bounds (inclusive or not)."""
    from pydantic import ValidationError

    from engine.source.document import SourceMap
    from engine.source.factschema import FactSchemaFile, build_models

    high = low + width + (2 if exclusive else 0)
    field = {"type": kind, **({"above": low, "below": high} if exclusive else {"min": low, "max": high})}
    schema = FactSchemaFile.model_validate({"records": {"R": {"fields": {"x": field}}}})
    models, problems = build_models(schema, SourceMap("facts.yaml"))
    assert problems == []
    given = int(value) if kind == "integer" else value
    inside = low < given < high if exclusive else low <= given <= high
    try:
        models["R"].model_validate({"x": given})
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == inside
