"""Decision records on PostgreSQL: the same schema, chain, replay and concurrency as on SQLite.

A throwaway server is started for the session where PostgreSQL is installed (Debian's
`postgresql`, whose binaries live in /usr/lib/postgresql/*/bin; `.ci/run` installs it): `initdb`
in a temporary folder, on a free localhost port, run as the `postgres` user when the tests run
as root (initdb refuses root), and stopped after the tests. Without PostgreSQL the tests skip
and say why.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import load_policy
from engine.records import RecordStore, evaluate_and_record, verify_chain
from tests.conftest import ROOT, RULES
from tests.test_records import RECORDER, STAGE1, WILDCARD, _assert_linear, run

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'psycopg[binary]')")


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """The URL of a throwaway PostgreSQL server (skips when PostgreSQL is not installed)."""
    binaries = _binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed here (apt-get install postgresql); its record tests skip")
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a `postgres` user, so initdb cannot run")
    folder = Path(tempfile.mkdtemp(prefix="policy-pg-"))
    if os.geteuid() == 0:
        os.chown(folder, user.pw_uid, user.pw_gid)
    data = folder / "data"
    init = [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
    subprocess.run(_as_postgres(init), check=True, capture_output=True)
    for _ in range(5):  # a free port can be taken by someone else before PostgreSQL binds it: try another
        port = _free_port()
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        ctl = [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-o", options]
        started = subprocess.run(_as_postgres([*ctl, "start"]), capture_output=True, text=True)
        log = (folder / "log").read_text(errors="replace") if (folder / "log").exists() else ""
        if started.returncode == 0 or "could not bind" not in log:
            break
    if started.returncode != 0:
        log = (folder / "log").read_text(errors="replace") if (folder / "log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {started.stderr}{log}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(_as_postgres([*ctl[:3], "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture()
def database(server: str, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database on the server, for one test."""
    name = "records_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def test_record_replay_history_and_verify_on_postgresql(
    capsys: pytest.CaptureFixture[str], database: str, tmp_path: Path
) -> None:
    package = tmp_path / "sovereign_ai"
    shutil.copytree(RULES, package)
    ids = []
    for facts in (STAGE1, WILDCARD):
        code, out, err = run(capsys, "evaluate", str(package), facts, "--record", database, "--format", "json")
        assert code == 0, err
        ids.append(out.split('"record": "')[1][:64])
    shutil.rmtree(package)
    code, out, _ = run(capsys, "replay", database, ids[0])
    assert code == 0 and "identical: 5 decision(s), byte for byte" in out
    code, out, _ = run(capsys, "history", database, "motif-technologies", "--format", "json")
    assert code == 0 and '"seq": 2' in out
    code, out, _ = run(capsys, "records", "verify", database)
    assert code == 0 and out.startswith(f"ok: 2 record(s), chained; head {ids[1]}")
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute("UPDATE record_decisions SET outcome = 'selected' WHERE record_seq = 1 AND position = 4")
    code, out, _ = run(capsys, "records", "verify", database)
    assert code == 1 and f"record 1 ({ids[0][:12]}): its stored content no longer matches its digest" in out


def test_eight_threads_and_two_processes_on_postgresql_lose_nothing(database: str) -> None:
    policy = load_policy(RULES)
    go = Path(tempfile.mkdtemp(prefix="policy-pg-go-")) / "go"
    argv = [sys.executable, "-c", RECORDER, database, str(RULES), STAGE1, "5", str(go)]
    workers = [subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    with RecordStore.open(database, create=True) as store:
        errors: list[BaseException] = []

        def record() -> None:
            try:
                for _ in range(5):
                    evaluate_and_record(store, policy, STAGE1)
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=record) for _ in range(8)]
        go.touch()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    shutil.rmtree(go.parent)
    _assert_linear(database, 50, 5)  # type: ignore[arg-type]
    with RecordStore.open(database) as store:
        assert verify_chain(store).ok


def test_a_postgresql_url_that_cannot_be_reached_is_a_usage_error_without_its_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as held:  # bound, never listening: connections are refused, and no one else can take it
        held.bind(("127.0.0.1", 0))
        url = f"postgresql://someone:s3cret@127.0.0.1:{held.getsockname()[1]}/records"
        code, out, err = run(capsys, "records", "verify", url)
    assert (code, out) == (2, "") and err.startswith("error: record database `postgresql://someone:***@127.0.0.1")
    assert "s3cret" not in err
