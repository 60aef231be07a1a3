"""The HTTP service at its edges: dates only as YYYY-MM-DD, 405 with `Allow`, located unknown
stages, strict JSON (no `Infinity`/`NaN`) on the wire and on the command line.

tests/test_schemathesis.py checks the rest: no request answers 500, and every answer conforms to
the app's own OpenAPI schema.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine import PolicyStore
from engine.cli import main
from tests.conftest import EXAMPLES, GRANTS, RULES
from tests.test_server import serving

STAGE1 = json.loads((EXAMPLES / "stage1.json").read_text())
BATCH = {
    "context": {"stage": "award", "date": "2026-08-01"},
    "applicants": [
        {"id": "ada", "income": 1000, "age": 30},
        {"id": "bob", "income": 2000, "age": 40},
    ],
}


def strict(text: str) -> Any:
    """JSON as RFC 8259 has it: `Infinity`, `-Infinity` and `NaN` are not JSON."""
    return json.loads(text, parse_constant=lambda token: pytest.fail(f"non-standard JSON token `{token}`"))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    package = tmp_path_factory.mktemp("edges") / "sovereign_ai"
    shutil.copytree(RULES, package)
    with PolicyStore(package) as store, serving(store) as http:
        yield http


@pytest.fixture(scope="module")
def grants() -> Iterator[httpx.Client]:
    with PolicyStore(GRANTS) as store, serving(store) as http:
        yield http


# --- dates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1785542400", "20260801", "2026-08-01T00:00:00", "2026-8-1", "٢٠٢٦-٠٨-٠١", ""])
def test_as_of_is_only_ever_yyyy_mm_dd(client: httpx.Client, value: str) -> None:
    for method, path, body in (("POST", "/v1/evaluate", STAGE1), ("GET", "/v1/policy", None)):
        response = client.request(method, path, params={"as_of": value}, json=body)
        assert response.status_code == 422, (path, value, response.text)
        (error,) = response.json()["errors"]
        assert error["path"] == "query.as_of", error
        if value:
            assert error["code"] == "invalid-date" and "YYYY-MM-DD" in error["message"]


def test_an_impossible_date_is_a_located_422(client: httpx.Client) -> None:
    response = client.post("/v1/evaluate", params={"as_of": "2026-02-30"}, json=STAGE1)
    assert response.status_code == 422 and response.json()["errors"][0]["path"] == "query.as_of"


def test_a_good_date_still_works(client: httpx.Client) -> None:
    params = {"as_of": "2026-08-01", "outside_period": "true"}  # stage 1 as of August: a what-if
    assert client.post("/v1/evaluate", params=params, json=STAGE1).status_code == 200
    assert client.get("/v1/policy", params={"as_of": "2026-08-01"}).json()["as_of"] == "2026-08-01"


# --- methods -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("GET", "/v1/evaluate", "POST"), ("DELETE", "/v1/explain", "POST"), ("POST", "/healthz", "GET")],
)
def test_405_keeps_the_allow_header(client: httpx.Client, method: str, path: str, allowed: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405 and allowed in response.headers["allow"]
    assert response.json()["errors"][0]["code"] == "http"


# --- stages --------------------------------------------------------------------------------------


def test_unknown_stages_are_located(client: httpx.Client) -> None:
    response = client.post("/v1/evaluate", params={"stage": "stage9"}, json=STAGE1)
    assert response.status_code == 422 and response.json()["errors"][0]["path"] == "query.stage"
    cohort = json.loads(json.dumps(STAGE1))
    cohort["context"]["stage"] = "stage9"
    response = client.post("/v1/evaluate", params={"stage": "stage1"}, json=cohort)
    assert response.status_code == 422 and response.json()["errors"][0]["path"] == "body.context.stage"


def test_the_schema_lists_the_stages(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    (stage,) = [p for p in schema["paths"]["/v1/evaluate"]["post"]["parameters"] if p["name"] == "stage"]
    assert stage["schema"]["anyOf"][0]["enum"] == ["stage1", "additional_call", "stage2", "final"]
    assert schema["components"]["schemas"]["facts.StageContext"]["properties"]["stage"]["enum"] == [
        "stage1",
        "additional_call",
        "stage2",
        "final",
    ]


# --- strict JSON ---------------------------------------------------------------------------------


def _infinite_income(body: dict[str, Any]) -> bytes:
    text = json.dumps(body)
    return text.replace('"income": 1000', '"income": -1e999').encode()  # Python reads -1e999 as -inf


def test_no_infinity_or_nan_in_any_response(grants: httpx.Client) -> None:
    headers = {"content-type": "application/json"}
    for path, params in (("/v1/evaluate", {}), ("/v1/explain", {"id": "ada", "format": "json"})):
        response = grants.post(path, params=params, content=_infinite_income(BATCH), headers=headers)
        assert response.status_code in (200, 422), response.text  # 422 if the body reader refuses it
        assert "Infinity" not in response.text and "NaN" not in response.text
        strict(response.text)
        if response.status_code == 200 and path == "/v1/evaluate":
            ranking = {d["id"]: d["placement"]["keys"] for d in response.json()["decisions"]}
            assert ranking["ada"] == [None]  # a non-finite number is written as null


@pytest.mark.parametrize("argv", [["evaluate", "--format", "json"], ["explain", "ada", "--format", "json"]])
def test_the_cli_prints_strict_json(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]) -> None:
    facts = tmp_path / "batch.yaml"
    facts.write_text(
        "context: {stage: award, date: 2026-08-01}\n"
        "applicants:\n  - {id: ada, income: -.inf, age: 30}\n  - {id: bob, income: .nan, age: 40}\n",
        encoding="utf-8",
    )
    code = main([argv[0], str(GRANTS), str(facts), *argv[1:]])
    out, _ = capsys.readouterr()
    assert code == 0 and "Infinity" not in out and "NaN" not in out
    strict(out)
