"""Decision records on a real SQLite file: record, replay bit for bit, history, the hash chain.

Done when a record made today replays bit for bit after the package folder has been edited or
deleted, and editing (or deleting) one row of the database makes `policy records verify` fail
naming the record. Concurrent recorders (8 threads; two processes on one file) lose nothing and
never interleave a record. PostgreSQL: tests/test_records_pg.py.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import math
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from pydantic import BaseModel

from engine import PolicyStore, load_policy
from engine.cli import main
from engine.core.errors import RecordError
from engine.records import RecordStore, evaluate_and_record, replay_record, verify_chain
from engine.records.canonical import canonical_facts, canonical_json
from engine.service.server import create_app
from tests.conftest import EXAMPLES, GRANTS, ROOT, RULES

STAGE1 = str(EXAMPLES / "stage1.yaml")
WILDCARD = str(EXAMPLES / "wildcard.yaml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


@pytest.fixture()
def package(tmp_path: Path) -> Path:
    """A copy of the Sovereign AI package that a test may edit or delete."""
    folder = tmp_path / "sovereign_ai"
    shutil.copytree(RULES, folder)
    return folder


def _record(capsys: pytest.CaptureFixture[str], package: Path, db: Path, facts: str = STAGE1, *more: str) -> str:
    code, out, err = run(capsys, "evaluate", str(package), facts, "--record", str(db), "--format", "json", *more)
    assert code == 0, err
    return str(json.loads(out)["record"])


def _sql(db: Path, statement: str, *params: Any) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute(statement, params)


# --- record and replay --------------------------------------------------------------------------


def test_a_record_replays_bit_for_bit_after_the_package_is_edited_then_deleted(
    capsys: pytest.CaptureFixture[str], package: Path, tmp_path: Path
) -> None:
    db = tmp_path / "decisions.db"
    first, second = _record(capsys, package, db), _record(capsys, package, db, WILDCARD)
    parameters = package / "parameters.yaml"
    parameters.write_text(parameters.read_text(encoding="utf-8").replace("2026-01-15: 70.0", "2026-01-15: 60.0"))
    causes = [r.rule for r in load_policy(package).evaluate(STAGE1).decisions["nc-ai"].causes]
    assert causes == ["ranked_within_slots"]  # the package now decides otherwise: the minimum is met
    code, out, _ = run(capsys, "replay", str(db), first)
    assert code == 0 and "identical: 5 decision(s), byte for byte" in out
    shutil.rmtree(package)
    for record in (first, second[:12]):
        code, out, _ = run(capsys, "replay", str(db), record)
        assert code == 0 and "identical" in out, out


def test_the_record_id_is_printed_below_the_table(
    capsys: pytest.CaptureFixture[str], package: Path, tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "evaluate", str(package), STAGE1, "--record", str(tmp_path / "r.db"))
    assert code == 0 and "nc-ai" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("record ") and "(number 1 in " in last
    assert len(last.split()[1]) == 64


def test_replay_from_the_library_compares_canonical_decisions(package: Path, tmp_path: Path) -> None:
    policy = load_policy(package)
    with RecordStore.open(str(tmp_path / "r.db"), create=True) as store:
        result, record = evaluate_and_record(store, policy, STAGE1)
        assert [d.subject for d in record.decisions] == list(result.decisions)
        assert record.prev == "0" * 64 and record.seq == 1
        stored = store.get(record.id)
        assert stored == record and stored.digest == record.id
        report = replay_record(store, record.id)
        assert report.identical and report.recorded == report.replayed and report.diff() == ""
        assert report.notes == []


def test_spans_in_a_record_are_relative_to_the_package_folder(package: Path, tmp_path: Path) -> None:
    with RecordStore.open(str(tmp_path / "r.db"), create=True) as store:
        _, record = evaluate_and_record(store, load_policy(package), STAGE1)
    graph = json.loads(record.decisions[3].explanation)
    spans = [n["span"] for n in graph["nodes"] if n.get("span")]
    assert spans and all(not s.startswith(str(package)) and ".yaml:" in s for s in spans)
    assert not any(str(tmp_path) in d.decision + d.explanation for d in record.decisions)


def test_a_record_holds_the_package_files_facts_and_engine(package: Path, tmp_path: Path) -> None:
    with RecordStore.open(str(tmp_path / "r.db"), create=True) as store:
        _, record = evaluate_and_record(store, load_policy(package), STAGE1)
        data = record.to_json()
    assert [f["path"] for f in data["files"]][0] == "policy.yaml"
    assert {f["path"] for f in data["files"]} >= {"parameters.yaml", "stage1.yaml"}
    assert data["fact_models"] == [{"module": "policy.facts", "sha256": data["fact_models"][0]["sha256"]}]
    assert len(data["fact_models"][0]["sha256"]) == 64
    assert [c["id"] for c in data["facts"]["consortia"]][:2] == ["lg-ai-research", "sk-telecom"]
    assert (data["as_of"], data["stage"], data["backend"], data["overrides"]) == (
        "2026-01-15",
        "stage1",
        "generated",
        {},
    )
    assert data["engine_version"] and data["policy"] == "sovereign-ai"
    assert data["decisions"][4]["outcome"] == "eliminated" and data["decisions"][4]["explanation"]["nodes"]


def test_parameter_overrides_are_recorded_and_applied_on_replay(
    capsys: pytest.CaptureFixture[str], package: Path, tmp_path: Path
) -> None:
    db = tmp_path / "r.db"
    record = _record(capsys, package, db, STAGE1, "--set", "minimum_total_score=75")
    code, out, _ = run(capsys, "records", "show", str(db), record)
    assert code == 0 and json.loads(out)["overrides"] == {"minimum_total_score": 75}
    code, out, _ = run(capsys, "replay", str(db), record)
    assert code == 0 and "identical" in out


def test_a_second_programme_records_and_replays_with_its_trusted_fact_module(tmp_path: Path) -> None:
    with RecordStore.open(str(tmp_path / "grants.db"), create=True) as store:
        batch = {
            "context": {"stage": "award", "date": "2026-03-01"},
            "applicants": [{"id": "a", "income": 20000.5, "age": 30}, {"id": "b", "income": None, "age": 40}],
        }
        _, record = evaluate_and_record(store, load_policy(GRANTS), batch)
        assert json.loads(record.fact_models)[0]["module"] == "grants_facts"
        assert replay_record(store, record.id).identical


@pytest.mark.durable
def test_a_record_of_the_durable_backend_replays_on_it(package: Path, tmp_path: Path) -> None:
    pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    with RecordStore.open(str(tmp_path / "r.db"), create=True) as store, load_policy(package, "durable") as policy:
        _, record = evaluate_and_record(store, policy, STAGE1)
        assert record.backend == "durable"
        assert replay_record(store, record.id).identical


def test_replay_of_an_edited_record_fails_with_a_diff(
    capsys: pytest.CaptureFixture[str], package: Path, tmp_path: Path
) -> None:
    db = tmp_path / "r.db"
    record = _record(capsys, package, db)
    _sql(
        db,
        "UPDATE record_decisions SET decision = replace(decision, '\"eliminated\"', '\"advanced\"') "
        "WHERE subject = 'nc-ai'",
    )
    code, out, _ = run(capsys, "replay", str(db), record)
    assert code == 1
    lines = out.splitlines()
    assert "differs from the record:" in lines and "note: the record was edited" in out
    assert any(line.startswith("-") and line.strip("- ") == '"outcome": "advanced",' for line in lines)
    assert any(line.startswith("+") and line.strip("+ ") == '"outcome": "eliminated",' for line in lines)


def test_a_failed_evaluation_writes_no_record(
    capsys: pytest.CaptureFixture[str], package: Path, tmp_path: Path
) -> None:
    db = tmp_path / "r.db"
    _record(capsys, package, db)
    code, _, err = run(capsys, "evaluate", str(package), STAGE1, "--stage", "nope", "--record", str(db))
    assert code == 1 and "unknown stage" in err
    with RecordStore.open(str(db)) as store:
        assert [r.seq for r in store.summaries()] == [1] and verify_chain(store).ok


def test_facts_that_are_not_finite_cannot_be_recorded() -> None:
    class Facts(BaseModel):
        score: float

    assert canonical_facts(Facts(score=1.5)) == '{"score":1.5}'
    with pytest.raises(RecordError, match="`score` is not a finite number"):
        canonical_facts(Facts(score=math.inf))


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": [1, 2.5], "a": "é ✓", "c": None}) == '{"a":"é ✓","b":[1,2.5],"c":null}'


# --- history and listing ------------------------------------------------------------------------


def test_history_lists_a_subjects_decisions_over_time(
    capsys: pytest.CaptureFixture[str], package: Path, tmp_path: Path
) -> None:
    db = tmp_path / "r.db"
    first = _record(capsys, package, db)
    _record(capsys, package, db, WILDCARD)
    third = _record(capsys, package, db, STAGE1, "--set", "minimum_total_score=60")
    code, out, _ = run(capsys, "history", str(db), "nc-ai")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].split()[:3] == ["RECORD", "#", "RECORDED"]
    assert [line.split()[0] for line in lines[1:]] == [first[:12], third[:12]]
    assert all("sovereign-ai  2026.2.0" in line and "2026-01-15" in line for line in lines[1:])
    code, out, _ = run(capsys, "history", str(db), "nc-ai", "--format", "json")
    entries = json.loads(out)["decisions"]
    assert [e["outcome"] for e in entries] == ["eliminated", "eliminated"]
    assert {e["digest"] for e in entries} == {load_policy(package).identity.digest}
    assert [e["seq"] for e in entries] == [1, 3]
    code, out, _ = run(capsys, "history", str(db), "nobody")
    assert code == 0 and "no decision about `nobody`" in out
    code, out, _ = run(capsys, "records", "list", str(db), "--format", "json")
    assert [r["decisions"] for r in json.loads(out)["records"]] == [5, 2, 5]


# --- the chain ----------------------------------------------------------------------------------


@pytest.fixture()
def chain(capsys: pytest.CaptureFixture[str], package: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    db = tmp_path / "chain.db"
    ids = [_record(capsys, package, db, facts) for facts in (STAGE1, WILDCARD, STAGE1)]
    code, out, _ = run(capsys, "records", "verify", str(db))
    assert code == 0 and out.startswith("ok: 3 record(s), chained; head " + ids[-1])
    return db, ids


EDITS = {
    "a decision's outcome": (
        "UPDATE record_decisions SET outcome = 'advanced' WHERE record_seq = 2 AND position = 0",
        2,
    ),
    "a decision's reasons": (
        "UPDATE record_decisions SET decision = replace(decision, 'ranked', 'rankd') WHERE record_seq = 2",
        2,
    ),
    "an explanation": ("UPDATE record_decisions SET explanation = '{}' WHERE record_seq = 1 AND position = 3", 1),
    "the as-of date": ("UPDATE records SET as_of = '2026-01-16' WHERE seq = 3", 3),
    "the facts": ("UPDATE records SET facts = replace(facts, '\"nc-ai\"', '\"nc-ai-2\"') WHERE seq = 1", 1),
    "the overrides": ("UPDATE records SET overrides = '{\"teams_kept\":5}' WHERE seq = 2", 2),
    "the backend": ("UPDATE records SET backend = 'durable' WHERE seq = 1", 1),
    "a package file": ("UPDATE record_files SET content = CAST('x' AS BLOB) WHERE rowid = 2", 1),
    "a record's id": (  # another first character, whatever the id (a digest) begins with
        "UPDATE records SET id = (CASE WHEN substr(id, 1, 1) = 'f' THEN 'e' ELSE 'f' END) || substr(id, 2) "
        "WHERE seq = 2",
        2,
    ),
    "a decision row, deleted": ("DELETE FROM record_decisions WHERE record_seq = 3 AND position = 4", 3),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_editing_one_row_makes_verify_fail_naming_the_record(
    capsys: pytest.CaptureFixture[str], chain: tuple[Path, list[str]], edit: str
) -> None:
    db, ids = chain
    statement, seq = EDITS[edit]
    _sql(db, statement)
    code, out, _ = run(capsys, "records", "verify", str(db))
    assert code == 1 and "failed:" in out
    named = f"record {seq} ({ids[seq - 1][:12]})" if "id" not in edit else f"record {seq} ("
    assert named in out


def test_deleting_a_record_in_the_middle_breaks_the_chain(
    capsys: pytest.CaptureFixture[str], chain: tuple[Path, list[str]]
) -> None:
    db, ids = chain
    _sql(db, "DELETE FROM record_decisions WHERE record_seq = 2")
    _sql(db, "DELETE FROM records WHERE seq = 2")
    code, out, _ = run(capsys, "records", "verify", str(db), "--format", "json")
    report = json.loads(out)
    assert code == 1 and not report["ok"]
    messages = [p["message"] for p in report["problems"] if p["seq"] == 3]
    assert any("record 2 is missing before it (deleted)" in m for m in messages)
    assert any("the chain is broken" in m for m in messages)


def test_deleting_the_last_record_is_seen_at_the_head(
    capsys: pytest.CaptureFixture[str], chain: tuple[Path, list[str]]
) -> None:
    db, ids = chain
    _sql(db, "DELETE FROM records WHERE seq = 3")
    code, out, _ = run(capsys, "records", "verify", str(db))
    assert code == 1
    assert f"the chain's head says 3 record(s) ending with {ids[2][:12]}, but the last record is 2" in out
    assert "decisions of record 3 remain, but record 3 is gone" in out


# --- bad input ----------------------------------------------------------------------------------


def test_bad_databases_and_ids_are_usage_errors(
    capsys: pytest.CaptureFixture[str], chain: tuple[Path, list[str]], tmp_path: Path, package: Path
) -> None:
    db, ids = chain
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 100, encoding="utf-8")
    empty = tmp_path / "other.db"
    sqlite3.connect(empty).execute("CREATE TABLE t (x)").connection.close()
    cases = [
        (("records", "verify", str(tmp_path / "missing.db")), "no record database at"),
        (("records", "verify", str(text)), "file is not a database"),
        (("records", "verify", str(empty)), "holds no decision records"),
        (("records", "verify", str(tmp_path)), "is a folder"),
        (("records", "verify", "mysql://user@host/db"), "unsupported record database"),
        (("history", "nowhere://", "x"), "unsupported record database `nowhere://`"),
        (("replay", str(db), "0" * 64), "no record `" + "0" * 64 + "`"),
        (("replay", str(db), "abc"), "is not a record id"),
        (("records", "show", str(db), "xyz12345"), "is not a record id"),
        (("evaluate", str(package), STAGE1, "--record", str(tmp_path / "no" / "r.db")), "does not exist"),
    ]
    for argv, message in cases:
        code, out, err = run(capsys, *argv)
        assert (code, out) == (2, ""), argv
        assert err.startswith("error: ") and message in err, (argv, err)


# --- concurrency --------------------------------------------------------------------------------


def _assert_linear(db: Path, count: int, decisions: int) -> None:
    with RecordStore.open(str(db)) as store:
        report = verify_chain(store)
        assert report.ok, report.problems
        assert report.records == count
        records = list(store.scan())
    assert [r.seq for r in records] == list(range(1, count + 1))
    assert all(len(r.decisions) == decisions for r in records)
    assert all(r.prev == (records[i - 1].id if i else "0" * 64) for i, r in enumerate(records))


def test_eight_threads_recording_on_one_file_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    policy = load_policy(RULES)
    stores = [RecordStore.open(str(db), create=True) for _ in range(2)]  # one shared by 4 threads, and another
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def record(index: int) -> None:
        try:
            start.wait()
            for _ in range(5):
                evaluate_and_record(stores[index % 2], policy, STAGE1)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=record, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert errors == []
    _assert_linear(db, 40, 5)


RECORDER = """
import sys, time
from pathlib import Path
from engine import load_policy
from engine.records import RecordStore, evaluate_and_record
db, rules, facts, count, go = sys.argv[1:]
policy = load_policy(rules)
with RecordStore.open(db, create=True) as store:
    while not Path(go).exists():
        time.sleep(0.01)
    for _ in range(int(count)):
        evaluate_and_record(store, policy, facts)
"""


def test_two_processes_recording_on_one_file_lose_nothing(tmp_path: Path) -> None:
    db, go = tmp_path / "processes.db", tmp_path / "go"
    argv = [sys.executable, "-c", RECORDER, str(db), str(RULES), WILDCARD, "15", str(go)]
    workers = [subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    go.touch()
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    _assert_linear(db, 30, 2)


# --- HTTP ---------------------------------------------------------------------------------------


class Client:
    """A synchronous client of the app, in process over ASGI."""

    def __init__(self, app: Any) -> None:
        self.transport = httpx.ASGITransport(app=app)

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url="http://test") as http:
                return await http.request(method, url, **kwargs)

        return asyncio.run(call())

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._call("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self._call("POST", url, **kwargs)


@pytest.fixture()
def client(tmp_path: Path) -> Any:
    records = RecordStore.open(str(tmp_path / "http.db"), create=True)
    store = PolicyStore(RULES)
    yield Client(create_app(store, records=records))
    store.close()
    records.close()


def _cohort(path: str) -> dict[str, Any]:
    return load_policy(RULES).load_cohort(path).model_dump(mode="json")


def test_http_evaluate_with_record_answers_the_record_id(client: Any) -> None:
    answer = client.post("/v1/evaluate", params={"record": "true"}, json=_cohort(STAGE1))
    assert answer.status_code == 200
    data = answer.json()
    assert len(data["record"]) == 64 and data["decisions"][4]["outcome"] == "eliminated"
    plain = client.post("/v1/evaluate", json=_cohort(STAGE1)).json()
    assert "record" not in plain
    record = client.get(f"/v1/records/{data['record']}")
    assert record.status_code == 200
    body = record.json()
    assert body["id"] == data["record"] and body["seq"] == 1 and body["stage"] == "stage1"
    assert [d["decision"] for d in body["decisions"]] == data["decisions"]
    assert client.get(f"/v1/records/{data['record'][:8]}").json()["id"] == data["record"]


def test_http_lists_records_and_a_subjects_history(client: Any) -> None:
    ids = [
        client.post("/v1/evaluate?record=true", json=_cohort(f)).json()["record"] for f in (STAGE1, WILDCARD, STAGE1)
    ]
    listing = client.get("/v1/records").json()["records"]
    assert [r["id"] for r in listing] == ids and [r["decisions"] for r in listing] == [5, 2, 5]
    assert [r["id"] for r in client.get("/v1/records?limit=2").json()["records"]] == ids[1:]
    history = client.get("/v1/records", params={"subject": "nc-ai"}).json()["records"]
    assert [(r["id"], r["outcome"]) for r in history] == [(ids[0], "eliminated"), (ids[2], "eliminated")]


def test_http_record_errors(client: Any) -> None:
    unknown = client.get("/v1/records/" + "ab" * 32)
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "unknown-record"
    assert client.get("/v1/records/xyz").status_code == 422
    assert client.get("/v1/records?limit=0").status_code == 422
    refused = client.post("/v1/evaluate?record=true&stage=nope", json=_cohort(STAGE1))
    assert refused.status_code == 422
    assert client.get("/v1/records").json()["records"] == []  # a refused evaluation writes nothing


def test_http_without_records_says_so() -> None:
    store = PolicyStore(RULES)
    http = Client(create_app(store))
    refused = http.post("/v1/evaluate?record=true", json=_cohort(STAGE1))
    assert refused.status_code == 409 and refused.json()["errors"][0]["code"] == "records-disabled"
    assert http.get("/v1/records").status_code == 404
    assert http.get("/v1/records/" + "ab" * 4).status_code == 404
    assert http.post("/v1/evaluate", json=_cohort(STAGE1)).status_code == 200
    store.close()


# --- the OpenAPI schema, with records kept --------------------------------------------------------

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install -e '.[test]')")
RECORDS_DB = Path(tempfile.mkdtemp(prefix="policy-records-api-")) / "api.db"
atexit.register(shutil.rmtree, RECORDS_DB.parent, True)
RECORDING_API = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(PolicyStore(RULES), records=RecordStore.open(str(RECORDS_DB), create=True))
).include(path_regex="^/v1/(records|evaluate)")


@RECORDING_API.parametrize()
@settings(max_examples=25, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_nothing_on_the_record_endpoints(case: Any) -> None:
    """The record endpoints and `POST /v1/evaluate?record=` answer as their schema declares (25 examples each)."""
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    from tests.test_schemathesis import _only_unexpressible_refusals

    case.call_and_validate(excluded_checks=[positive_data_acceptance], additional_checks=[_only_unexpressible_refusals])
