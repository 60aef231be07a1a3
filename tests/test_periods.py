"""Stage periods are enforced: a stage that declares `dates: {from, until}` refuses to decide as of a
date outside them, unless a what-if outside the period is asked for; on the Python API, the CLI,
HTTP (a 422 at `query.as_of`), in policy tests, and in decision records (replayed the same way).

A copy of the grants fixture with `dates:` added keeps these tests apart from the shipped package.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine import EvaluationError, PolicyStore, load_policy
from engine.cli import main
from engine.core.errors import OutsidePeriod
from engine.records import RecordStore, evaluate_and_record, replay_record
from tests.conftest import GRANTS
from tests.test_server import serving

PERIOD = "    dates: {from: 2026-01-01, until: 2026-06-30}\n"


@pytest.fixture()
def dated(tmp_path: Path) -> Path:
    """The grants package with its stage `award` in force from 1 January to 30 June 2026."""
    folder = tmp_path / "grants"
    shutil.copytree(GRANTS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = folder / "policy.yaml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.replace("    fills_slot: granted\n", "    fills_slot: granted\n" + PERIOD), "utf-8")
    return folder


def batch(date: str = "2026-03-01") -> dict[str, Any]:
    applicants = [{"id": "a", "income": 20000.0, "age": 30}, {"id": "b", "income": 25000.0, "age": 40}]
    return {"context": {"stage": "award", "date": date}, "applicants": applicants}


def test_a_date_inside_the_period_decides_and_the_summary_names_the_period(dated: Path) -> None:
    result = load_policy(dated).evaluate(batch())
    assert not result.outside_period
    assert result.summary is not None and result.summary.to_json()["period"] == {
        "from": "2026-01-01",
        "until": "2026-06-30",
    }
    assert "outside_period" not in result.to_json()


@pytest.mark.parametrize("date", ["2025-12-31", "2026-07-01"])
def test_a_date_outside_the_period_is_refused_naming_the_period_and_the_way_out(dated: Path, date: str) -> None:
    policy = load_policy(dated)
    with pytest.raises(OutsidePeriod) as caught:
        policy.evaluate(batch(date))
    message = str(caught.value)
    assert message.startswith(f"stage `award` applies from 2026-01-01 until 2026-06-30; {date} is outside it")
    assert "--outside-period" in message and isinstance(caught.value, EvaluationError)
    assert (caught.value.stage, str(caught.value.as_of)) == ("award", date)
    with pytest.raises(OutsidePeriod):
        policy.decide(batch(date)["applicants"][0], as_of=date, stage="award")


def test_the_refusal_names_the_stage_in_force_on_that_date(dated: Path) -> None:
    manifest = dated / "policy.yaml"
    text = manifest.read_text(encoding="utf-8")
    second = (
        text.split("stages:\n", 1)[1]
        .replace("id: award", "id: second_round")
        .replace(PERIOD, "    dates: {from: 2026-07-01}\n")
    )
    manifest.write_text(text + second, "utf-8")
    with pytest.raises(OutsidePeriod, match=r"evaluate the stage in force on that date \(`second_round`\)"):
        load_policy(dated).evaluate(batch("2026-08-01"), stage="award")


def test_the_override_decides_outside_the_period_and_says_so(dated: Path) -> None:
    policy = load_policy(dated)
    result = policy.evaluate(batch("2026-08-01"), outside_period=True)
    assert result.outside_period and result.to_json()["outside_period"] is True
    assert result.summary is not None and result.summary.to_json()["outside_period"] is True
    assert result.decisions["b"].outcome == "granted"  # the income cap of July applies
    assert policy.decide(batch()["applicants"][0], as_of="2026-08-01", stage="award", outside_period=True)


def test_why_not_of_a_decision_made_outside_the_period_still_verifies_its_changes(dated: Path) -> None:
    changed = batch("2026-08-01")
    changed["applicants"][1]["age"] = 17
    decision = load_policy(dated).evaluate(changed, outside_period=True).decisions["b"]
    answer = decision.why_not("granted")
    assert answer.suggestions, answer.to_text()  # re-evaluated with the same override


def test_the_cli_refuses_with_exit_1_and_decides_with_outside_period(
    dated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    facts = tmp_path / "batch.json"
    facts.write_text(json.dumps(batch("2026-08-01")), "utf-8")
    assert main(["evaluate", str(dated), str(facts)]) == 1
    assert "is outside it" in capsys.readouterr().err
    assert main(["evaluate", str(dated), str(facts), "--outside-period"]) == 0
    out = capsys.readouterr().out
    assert "what-if: stage `award` decided as of 2026-08-01, outside its period" in out
    for command in (["explain"], ["explain", "a", "--why-not", "granted"], ["report", "-o", str(tmp_path / "r.html")]):
        assert main([command[0], str(dated), str(facts), *command[1:]]) == 1
        assert main([command[0], str(dated), str(facts), *command[1:], "--outside-period"]) == 0
    capsys.readouterr()


def test_diff_takes_outside_period_too(dated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    facts = tmp_path / "batch.json"
    facts.write_text(json.dumps(batch("2026-08-01")), "utf-8")
    assert main(["diff", str(dated), str(facts), "--set", "grants=1"]) == 1
    assert main(["diff", str(dated), str(facts), "--set", "grants=1", "--outside-period"]) == 0
    capsys.readouterr()


def test_http_refuses_with_a_422_at_query_as_of_and_decides_with_the_flag(dated: Path) -> None:
    with PolicyStore(dated) as store, serving(store) as http:
        refused = http.post("/v1/evaluate", params={"as_of": "2026-08-01"}, json=batch())
        assert refused.status_code == 422
        error = refused.json()["errors"][0]
        assert (error["path"], error["code"]) == ("query.as_of", "outside-period")
        ok = http.post("/v1/evaluate", params={"as_of": "2026-08-01", "outside_period": "true"}, json=batch())
        assert ok.status_code == 200 and ok.json()["outside_period"] is True
        explain = http.post("/v1/explain", params={"id": "a", "as_of": "2026-08-01"}, json=batch())
        assert explain.status_code == 422 and explain.json()["errors"][0]["path"] == "query.as_of"
        params = {"id": "a", "as_of": "2026-08-01", "outside_period": "true"}
        assert http.post("/v1/explain", params=params, json=batch()).status_code == 200


def test_a_record_keeps_the_override_and_replay_applies_it(dated: Path, tmp_path: Path) -> None:
    with RecordStore.open(str(tmp_path / "r.db"), create=True) as store:
        policy = load_policy(dated)
        _, inside = evaluate_and_record(store, policy, batch())
        _, outside = evaluate_and_record(store, policy, batch("2026-08-01"), outside_period=True)
        assert (inside.outside_period, outside.outside_period) == (False, True)
        assert outside.to_json()["outside_period"] is True
        assert replay_record(store, inside.id).identical
        assert replay_record(store, outside.id).identical
        with pytest.raises(OutsidePeriod):
            evaluate_and_record(store, policy, batch("2026-08-01"))


def test_a_policy_test_case_may_ask_for_a_date_outside_the_period(dated: Path) -> None:
    tests = dated / "tests"
    tests.mkdir()
    case = {"context": {"stage": "award", "date": "2026-08-01"}, "applicants": batch()["applicants"]}
    (tests / "period.yaml").write_text(
        json.dumps(
            {
                "cases": [
                    {"name": "refused", "cohort": case, "expect": [{"id": "a", "outcome": "granted"}]},
                    {
                        "name": "what-if",
                        "cohort": case,
                        "outside_period": True,
                        "expect": [{"id": "a", "outcome": "granted"}],
                    },
                ]
            }
        ),
        "utf-8",
    )
    from engine.verification.casefile import run_file

    first, second = run_file(load_policy(dated), tests / "period.yaml")
    assert not first.passed and "is outside it" in first.failures[0]
    assert second.passed, second.failures


def test_evaluate_many_passes_the_override_to_every_executor(dated: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from engine import evaluate_many
    from tests.test_concurrency import PicklingExecutor

    policy = load_policy(dated)
    cohorts = [batch("2026-08-01")]
    with pytest.raises(OutsidePeriod):
        evaluate_many(policy, cohorts)
    with ThreadPoolExecutor(2) as pool:
        threaded = evaluate_many(policy, cohorts, executor=pool, outside_period=True)
    shipped = evaluate_many(policy, cohorts, executor=PicklingExecutor(), outside_period=True)
    assert threaded[0].outside_period and shipped[0].outside_period
    assert threaded[0].outcomes() == shipped[0].outcomes()
    refused = evaluate_many(policy, cohorts, executor=PicklingExecutor(), return_exceptions=True)
    assert isinstance(refused[0], OutsidePeriod)
