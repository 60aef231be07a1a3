"""The HTTP service against a real uvicorn server on a free loopback port: the CLI's JSON, errors
as 422 with field paths, the body limit, the OpenAPI schema, reloads, and the README's curl lines."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from engine import Policy, PolicyStore
from engine.service.server import MAX_BODY, EvaluationOut, ExplainJsonOut, PolicyOut, create_app
from engine.service.server import __all__ as server_all
from tests.conftest import EXAMPLES, ROOT, RULES

STAGE1 = json.loads((EXAMPLES / "stage1.json").read_text())


@contextmanager
def serving(store: PolicyStore, max_body: int = MAX_BODY) -> Iterator[httpx.Client]:
    """A real uvicorn server in a background thread on a free loopback port, stopped at the end."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(store, max_body=max_body), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "the server did not start"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()
    assert not thread.is_alive()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    package = tmp_path_factory.mktemp("served") / "sovereign_ai"
    shutil.copytree(RULES, package)
    with PolicyStore(package) as store, serving(store) as http:
        yield http


def test_the_server_module_lists_its_surface() -> None:
    assert {"create_app", "BodyLimit", "MAX_BODY"} <= set(server_all)


def test_the_json_example_is_the_yaml_example() -> None:
    assert STAGE1 == json.loads(json.dumps(yaml.safe_load((EXAMPLES / "stage1.yaml").read_text()), default=str))


def test_healthz_names_the_version_in_force(client: httpx.Client, policy: Policy) -> None:
    body = client.get("/healthz").json()
    assert body == {
        "status": "ok",
        "name": "sovereign-ai",
        "version": "2026.2.0",
        "digest": policy.identity.digest,
        "generation": 1,
    }


def test_evaluate_returns_the_same_json_as_the_cli(client: httpx.Client, policy: Policy) -> None:
    response = client.post("/v1/evaluate", json=STAGE1)
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(policy.evaluate(STAGE1).to_json()))
    EvaluationOut.model_validate(response.json())  # the documented shape
    outcomes = {d["id"]: d["outcome"] for d in response.json()["decisions"]}
    assert outcomes["naver-cloud"] == "disqualified" and outcomes["nc-ai"] == "eliminated"


def test_evaluate_takes_as_of_and_stage(client: httpx.Client, policy: Policy) -> None:
    params = {"as_of": "2026-08-01", "stage": "stage1", "outside_period": "true"}  # outside stage 1's period
    response = client.post("/v1/evaluate", params=params, json=STAGE1)
    assert response.json() == json.loads(
        json.dumps(policy.evaluate(STAGE1, as_of="2026-08-01", stage="stage1", outside_period=True).to_json())
    )
    assert response.json()["summary"]["slots"] == 3


def test_explain_as_text_json_and_dot(client: httpx.Client, policy: Policy) -> None:
    decision = policy.evaluate(STAGE1).decisions["naver-cloud"]
    text = client.post("/v1/explain", params={"id": "naver-cloud"}, json=STAGE1)
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert text.text == decision.explain().to_text() + "\n"
    data = client.post("/v1/explain", params={"id": "naver-cloud", "format": "json"}, json=STAGE1).json()
    ExplainJsonOut.model_validate(data)
    assert data["decision"] == json.loads(json.dumps(decision.to_json())) and data["graph"]["nodes"]
    assert client.post("/v1/explain", params={"id": "nc-ai", "format": "dot"}, json=STAGE1).text.startswith("digraph")


def test_letter_in_the_language_of_accept_language(client: httpx.Client) -> None:
    korean = client.post(
        "/v1/letter", params={"id": "naver-cloud"}, json=STAGE1, headers={"Accept-Language": "ko-KR,ko"}
    )
    assert korean.status_code == 200 and korean.headers["content-type"].startswith("text/html")
    assert korean.headers["content-language"] == "ko" and "결정: 실격" in korean.text and "이의신청" in korean.text
    english = client.post("/v1/letter", params={"id": "naver-cloud"}, json=STAGE1, headers={"Accept-Language": "fr"})
    assert english.headers["content-language"] == "en" and "Decision: disqualified" in english.text
    missing = client.post("/v1/letter", params={"id": "nobody"}, json=STAGE1)
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "unknown-id"


def test_unknown_subject_and_unknown_route_are_json_errors(client: httpx.Client) -> None:
    missing = client.post("/v1/explain", params={"id": "nobody"}, json=STAGE1)
    assert missing.status_code == 404 and missing.json()["errors"][0]["path"] == "query.id"
    assert "lg-ai-research" in missing.json()["errors"][0]["message"]
    assert client.get("/v2/nothing").json() == {"errors": [{"path": None, "message": "Not Found", "code": "http"}]}


def test_invalid_facts_are_422_with_field_paths(client: httpx.Client) -> None:
    cohort = json.loads(json.dumps(STAGE1))
    cohort["consortia"][4]["scores"]["expert"] = 40.0
    del cohort["consortia"][0]["history"]
    cohort["consortia"][1]["scores"]["user"] = "20.6"
    response = client.post("/v1/evaluate", json=cohort)
    assert response.status_code == 422
    paths = {e["path"]: e for e in response.json()["errors"]}
    assert set(paths) == {
        "body.consortia[4].scores.expert",
        "body.consortia[0].history",
        "body.consortia[1].scores.user",
    }
    assert (
        paths["body.consortia[0].history"]["code"] == "missing-field"
        and "35" in paths["body.consortia[4].scores.expert"]["message"]
    )
    assert all("help" not in e for e in paths.values())  # only an error with a suggestion carries one


def test_a_misspelled_fact_field_is_422_with_what_it_may_have_meant(client: httpx.Client) -> None:
    cohort = json.loads(json.dumps(STAGE1))
    scores = cohort["consortia"][2]["scores"]
    scores["expret"] = scores.pop("expert")
    response = client.post("/v1/evaluate", json=cohort)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "path": "body.consortia[2].scores.expret",
            "message": "unknown field `consortia[2].scores.expret`",
            "code": "unknown-field",
            "help": "did you mean `expert`?",
        }
    ]


def test_bad_parameters_and_bodies_are_422(client: httpx.Client) -> None:
    date = client.post("/v1/evaluate", params={"as_of": "15/01/2026"}, json=STAGE1)
    assert date.status_code == 422 and date.json()["errors"][0]["path"] == "query.as_of"
    explain = client.post("/v1/explain", params={"format": "pdf"}, json=STAGE1)
    assert explain.status_code == 422 and {e["path"] for e in explain.json()["errors"]} == {"query.id", "query.format"}
    garbled = client.post("/v1/evaluate", content=b"{not json", headers={"content-type": "application/json"})
    assert garbled.status_code == 422 and garbled.json()["errors"][0]["code"] == "invalid-json"
    assert client.post("/v1/evaluate", json=[1, 2]).json()["errors"][0]["code"] == "invalid-body"
    stage = client.post("/v1/evaluate", params={"stage": "stage9"}, json=STAGE1)
    assert stage.status_code == 422 and "unknown stage `stage9`" in stage.json()["errors"][0]["message"]


def test_bodies_over_the_limit_are_413_with_or_without_a_length(client: httpx.Client) -> None:
    big = b"[" + b" " * MAX_BODY + b"]"
    assert client.post("/v1/evaluate", content=big).status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 65536

    streamed = client.post("/v1/evaluate", content=chunks())
    assert streamed.status_code == 413 and streamed.json()["errors"][0]["code"] == "body-too-large"
    assert client.get("/healthz").status_code == 200


def test_policy_lists_parameters_in_force_with_references_and_stages(client: httpx.Client) -> None:
    data = client.get("/v1/policy", params={"as_of": "2026-08-01"}).json()
    PolicyOut.model_validate(data)
    params = {p["name"]: p for p in data["parameters"]}
    assert (
        params["teams_kept"]["value"] == 3
        and params["teams_kept"]["since"] == "2026-08-01"
        and "MSIT" in params["teams_kept"]["reference"]
    )
    assert {s["id"] for s in data["stages"]} == {"stage1", "additional_call", "stage2", "final"}
    periods = {s["id"]: s["period"] for s in data["stages"]}
    assert periods["stage1"] == {"from": "2026-01-15", "until": "2026-01-25"}
    assert periods["stage2"]["from"] == "2026-08-01"
    early = {p["name"]: p for p in client.get("/v1/policy", params={"as_of": "2025-01-01"}).json()["parameters"]}
    assert early["teams_kept"]["in_force"] is False and "no value in force" in early["teams_kept"]["note"]


def test_openapi_schema_documents_the_endpoints_and_the_fact_model(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/v1/evaluate", "/v1/explain", "/v1/policy", "/v1/reload", "/healthz"} <= set(schema["paths"])
    body = schema["paths"]["/v1/evaluate"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/facts.Cohort"}
    assert "consortia" in schema["components"]["schemas"]["facts.Cohort"]["properties"]
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(schema)))
    assert refs <= set(schema["components"]["schemas"])  # every reference resolves


def _improve(package: Path) -> None:
    (package / "policy.yaml").write_text(
        (package / "policy.yaml").read_text().replace('version: "2026.2.0"', 'version: "2026.2.1"')
    )
    parameters = (package / "parameters.yaml").read_text()
    (package / "parameters.yaml").write_text(
        parameters.replace("      2026-01-15: 70.0", "      2026-01-15: 65.0").replace(
            "      2026-01-15: 4\n", "      2026-01-15: 5\n"
        )
    )


def test_reload_rejects_a_broken_package_then_swaps_in_a_good_one(tmp_path: Path) -> None:
    package = tmp_path / "sovereign_ai"
    shutil.copytree(RULES, package)
    stage1 = package / "stage1.yaml"
    with PolicyStore(package) as store, serving(store) as http:
        assert http.post("/v1/reload").json()["status"] == "unchanged"
        stage1.write_text(stage1.read_text().replace("when: total_score >=", "when: total_scor >="))
        rejected = http.post("/v1/reload")
        assert rejected.status_code == 422 and rejected.json()["status"] == "rejected"
        assert any(
            re.search(r"stage1\.yaml:\d+:\d+$", e["path"]) and e["code"] == "unknown-name"
            for e in rejected.json()["errors"]
        )
        old = http.post("/v1/evaluate", json=STAGE1).json()
        assert old["version"] == "2026.2.0" and http.get("/healthz").json()["generation"] == 1
        stage1.write_text(stage1.read_text().replace("when: total_scor >=", "when: total_score >="))
        _improve(package)
        swapped = http.post("/v1/reload").json()
        assert (
            swapped["status"] == "reloaded"
            and swapped["in_force"]["version"] == "2026.2.1"
            and swapped["in_force"]["generation"] == 2
        )
        new = http.post("/v1/evaluate", json=STAGE1).json()
        assert {d["id"]: d["outcome"] for d in new["decisions"]}["nc-ai"] == "advanced"
        assert http.get("/openapi.json").json()["info"]["version"] == "2026.2.1"


@contextmanager
def policy_serve(*options: str, package: Path = RULES) -> Iterator[tuple[int, subprocess.Popen[str], list[str]]]:
    """`policy serve` itself, in a subprocess on a port the system picks when it binds (`--port 0`;
    the port is read from uvicorn's log, never chosen beforehand); stopped with SIGTERM.

    Yields the port, the process and its stderr lines so far (a thread keeps reading them)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "engine", "serve", str(package), "--port", "0", "--log-level", "info", *options]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    bound = threading.Event()

    def read() -> None:
        for line in process.stderr or ():
            lines.append(line)
            if "running on http://" in line:
                bound.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert bound.wait(30) and process.poll() is None, "".join(lines)
        port = int(re.findall(r"running on http://[^:]+:(\d+)", "".join(lines))[0])
        yield port, process, lines
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait(5)
        reader.join(10)
        errors = "".join(lines)
        assert code in (0, -signal.SIGTERM) and "Traceback" not in errors, errors  # uvicorn re-raises SIGTERM


@pytest.fixture(scope="module")
def cli_server() -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """`policy serve` on the shipped package, shared by the tests that only read from it."""
    with policy_serve() as (port, process, _):
        yield port, process


def test_policy_serve_binds_to_loopback_and_stops_cleanly(cli_server: tuple[int, subprocess.Popen[str]]) -> None:
    port, process = cli_server
    assert httpx.get(f"http://127.0.0.1:{port}/v1/policy", timeout=10).json()["name"] == "sovereign-ai"
    listening = Path("/proc/net/tcp").read_text() if Path("/proc/net/tcp").exists() else ""
    if listening:
        local = {line.split()[1] for line in listening.splitlines()[1:] if line.split()[3] == "0A"}  # LISTEN
        assert f"0100007F:{port:04X}" in local and f"00000000:{port:04X}" not in local


def _readme_curl_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## HTTP service", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines() if line.startswith("curl ")]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_readme_curl_examples_work(cli_server: tuple[int, subprocess.Popen[str]]) -> None:
    port, _ = cli_server
    lines = _readme_curl_lines()
    assert len(lines) >= 5
    for line in lines:
        command = line.replace("curl ", "curl --fail --max-time 30 ", 1).replace("localhost:8181", f"127.0.0.1:{port}")
        done: Any = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stdout.strip(), f"{line}\n{done.stderr}"


def test_policy_serve_refuses_a_broken_package_without_a_traceback(tmp_path: Path) -> None:
    package = tmp_path / "sovereign_ai"
    shutil.copytree(RULES, package)
    (package / "stage1.yaml").write_text(
        (package / "stage1.yaml").read_text().replace("when: total_score >=", "when: total_scor >=")
    )
    done = subprocess.run(
        [sys.executable, "-m", "engine", "serve", str(package), "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "error[unknown-name]" in done.stderr and "Traceback" not in done.stderr


def test_policy_serve_warns_when_it_listens_beyond_loopback() -> None:
    with policy_serve("--host", "0.0.0.0") as (port, _, lines):
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()["status"] == "ok"
        shown = "".join(lines)
    assert "warning: listening on 0.0.0.0: reachable from other machines" in shown
    with policy_serve() as (_, _, lines):
        assert "warning: listening" not in "".join(lines)


def test_policy_serve_watch_reloads_an_edited_package_and_keeps_a_broken_edit_out(tmp_path: Path) -> None:
    package = tmp_path / "sovereign_ai"
    shutil.copytree(RULES, package)
    manifest = package / "policy.yaml"
    original = manifest.read_text()
    with policy_serve("--watch", "0.1", package=package) as (port, _, _):
        url = f"http://127.0.0.1:{port}/v1/policy"
        first = httpx.get(url, timeout=10).json()

        def version_becomes(wanted: str) -> bool:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if httpx.get(url, timeout=10).json()["version"] == wanted:
                    return True
                time.sleep(0.1)
            return False

        manifest.write_text(original.replace(f'version: "{first["version"]}"', 'version: "2099.1.0"'))
        assert version_becomes("2099.1.0")
        manifest.write_text(original.replace("policy:", "policy: [", 1))  # broken: rejected
        time.sleep(1.0)
        assert httpx.get(url, timeout=10).json()["version"] == "2099.1.0"


def test_policy_serve_max_body_refuses_larger_bodies_with_413() -> None:
    with policy_serve("--max-body", "2000") as (port, _, _):
        big = json.dumps(STAGE1)
        assert len(big) > 2000
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/evaluate", content=big, timeout=30)
        assert answer.status_code == 413 and answer.json()["errors"][0]["code"] == "body-too-large"
        small = httpx.post(f"http://127.0.0.1:{port}/v1/evaluate", content="{}", timeout=30)
        assert small.status_code == 422
