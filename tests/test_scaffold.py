"""`policy init DIR`: a new package that passes `policy check` and `policy test` as generated."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import load_policy
from engine.cli import main
from engine.language.factmodels import ENV_VAR


def test_init_check_test_pass_on_the_generated_package_with_no_trust_set_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)  # the scaffold's facts are a schema file: nothing to trust
    monkeypatch.chdir(tmp_path)
    assert main(["init", "newprog"]) == 0
    assert sorted(p.relative_to("newprog").as_posix() for p in Path("newprog").rglob("*") if p.is_file()) == [
        "examples/applications.yaml",
        "facts.yaml",
        "policy.yaml",
        "rules.yaml",
        "tests/selection.yaml",
    ]
    assert main(["check", "newprog"]) == 0
    out = capsys.readouterr().out
    assert "ok: newprog 0.1" in out and "warning" not in out
    assert main(["test", "newprog"]) == 0
    assert "2 passed, 0 failed" in capsys.readouterr().out
    assert main(["evaluate", "newprog", "newprog/examples/applications.yaml"]) == 0
    table = capsys.readouterr().out
    assert "NAME" in table and "First Applicant" in table  # people read subjects by name, beside the id


@pytest.mark.parametrize("backend", ["generated", "python", "durable"])
def test_the_scaffold_decides_the_same_on_both_backends(tmp_path: Path, backend: str) -> None:
    if backend == "durable":
        pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    assert main(["init", str(tmp_path / "prog")]) == 0
    result = load_policy(tmp_path / "prog", backend=backend).evaluate(tmp_path / "prog/examples/applications.yaml")
    outcomes = {i: d.outcome for i, d in result.decisions.items()}
    assert outcomes == {"a1": "selected", "a2": "selected", "a3": "not_selected", "a4": "ineligible"}


def test_init_refuses_a_folder_that_holds_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("mine", encoding="utf-8")
    assert main(["init", str(tmp_path)]) == 2
    assert "already exists and is not an empty folder" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text(encoding="utf-8") == "mine" and not (tmp_path / "policy.yaml").exists()


def test_init_names_the_policy_after_the_folder(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path / "My Call 2027")]) == 0
    assert load_policy(tmp_path / "My Call 2027").ir.name == "my-call-2027"


def _readme_block(after: str) -> str:
    """The first ```yaml block of the README after the line holding `after`."""
    text = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    rest = text[text.index(after) :]
    start = rest.index("```yaml\n") + len("```yaml\n")
    return rest[start : rest.index("```", start)]


def test_the_readmes_fact_schema_describes_the_gpu_call(tmp_path: Path) -> None:
    """The schema file shown in "Start a new programme" is a working schema for rules/gpu_call."""
    import shutil

    from tests.conftest import EXAMPLES, GPU_HOURS

    folder = tmp_path / "gpu_call"
    shutil.copytree(GPU_HOURS, folder)
    (folder / "facts.yaml").write_text(_readme_block("**Facts without Python: the schema file.**"), encoding="utf-8")
    readme, shipped = load_policy(folder), load_policy(GPU_HOURS)
    assert (
        readme.evaluate(EXAMPLES / "gpu_call.yaml").outcomes()
        == shipped.evaluate(EXAMPLES / "gpu_call.yaml").outcomes()
    )
    assert main(["test", str(folder)]) == 0
    with_history = readme.load_cohort(EXAMPLES / "gpu_call.yaml").model_dump()
    with_history["applicants"][0]["prior_allocations"] = [{"year": 2025, "fee_paid": False}]
    assert readme.load_cohort(with_history).applicants[0].prior_allocations[0].fee_paid is False


def test_the_readmes_policy_test_example_passes_on_the_scaffold(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path / "prog")]) == 0
    (tmp_path / "prog" / "tests" / "selection.yaml").write_text(
        _readme_block("**Policy tests** are YAML files"), encoding="utf-8"
    )
    assert main(["test", str(tmp_path / "prog")]) == 0
