"""Many threads at once give exactly the sequential results, on both backends; `evaluate_many`
gives the same results sequentially, on threads, on any pickling executor and on processes."""

from __future__ import annotations

import datetime as dt
import gc
import json
import multiprocessing
import pickle
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import engine
from engine import EngineError, EvaluationError, FactError, Policy, Result, evaluate_many, load_policy
from engine.embedding.batch import __all__ as batch_all
from tests.conftest import EXAMPLES, RULES

BACKENDS = ["generated", "python", pytest.param("durable", marks=pytest.mark.durable)]
THREADS, PER_THREAD = 8, 200


def _needs(backend: str) -> None:
    if backend == "durable":
        pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")


def _stage1() -> dict[str, Any]:
    return load_policy(RULES).load_cohort(EXAMPLES / "stage1.yaml").model_dump(mode="json")


def jobs() -> list[tuple[Any, str | None]]:
    """Cohorts that decide differently: stages, dates in force, subsets, a tie, missing facts.

    Mostly small cohorts as dicts (no file reading), so 1,600 durable evaluations stay quick.
    """
    full = _stage1()
    wildcard = load_policy(RULES).load_cohort(EXAMPLES / "wildcard.yaml").model_dump(mode="json")
    tied = _stage1()
    tied["consortia"][4]["scores"] = tied["consortia"][2]["scores"]  # NC AI ties Upstage
    tied["consortia"] = tied["consortia"][2:]
    missing = _stage1()
    missing["consortia"][1]["scores"]["expert"] = None  # SK Telecom's total is unknown
    missing["consortia"] = missing["consortia"][:2]
    return [
        (full, None),
        ({**full, "consortia": full["consortia"][:3]}, "2026-08-01"),  # three places from August
        ({**full, "consortia": full["consortia"][:3]}, "2026-12-01"),  # two places from December
        (wildcard, None),
        ({**full, "consortia": full["consortia"][3:4]}, None),
        (tied, None),
        (missing, None),
        ({**full, "consortia": full["consortia"][4:]}, None),
    ]


def _same(a: Result, b: Result) -> bool:
    """Every outcome and reason, placement, summary and identity (dataclass equality)."""
    return (
        a.outcomes() == b.outcomes()
        and all(a.decisions[i].reasons == b.decisions[i].reasons for i in a.decisions)
        and a == b
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_eight_threads_times_200_evaluations_equal_the_sequential_results(backend: str) -> None:
    _needs(backend)
    policy = load_policy(RULES, backend=backend)
    work = jobs()
    expected = [policy.evaluate(cohort, as_of=as_of, outside_period=True) for cohort, as_of in work]
    assert len({(str(r.outcomes()), r.as_of, r.stage) for r in expected}) == len(work)  # the jobs differ
    assert {"advanced", "eliminated", "disqualified", "selected", "undetermined"} <= {
        d.outcome for r in expected for d in r.decisions.values()
    }
    start = threading.Barrier(THREADS)
    got: list[list[tuple[int, Result]]] = [[] for _ in range(THREADS)]
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            start.wait(timeout=30)
            for k in range(PER_THREAD):
                index = (n + k) % len(work)
                cohort, as_of = work[index]
                got[n].append((index, policy.evaluate(cohort, as_of=as_of, outside_period=True)))
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert failures == []
    assert sum(len(g) for g in got) == THREADS * PER_THREAD
    wrong = [
        (n, index) for n, results in enumerate(got) for index, result in results if not _same(result, expected[index])
    ]
    assert wrong == []
    policy.close()


@pytest.mark.durable
def test_threads_racing_on_new_dates_build_one_durable_ruleset_per_parameter_set() -> None:
    _needs("durable")
    from engine.evaluation.durable._host import live_rulesets

    # Policies other tests left behind are freed by the cyclic collector, which would change the
    # count of live rulesets under this test: collect them now and hold the collector off until the end.
    gc.collect()
    gc.disable()
    try:
        policy = load_policy(RULES, backend="durable")
        before = live_rulesets()
        dates = ["2026-01-15", "2026-08-01", "2026-12-01", "2026-02-20"] * 4
        sets = {
            json.dumps(sorted(policy.compiled.parameters_on(dt.date.fromisoformat(d)).items()), default=str)
            for d in dates
        }
        with ThreadPoolExecutor(8) as pool:
            results = list(
                pool.map(lambda d: policy.evaluate(EXAMPLES / "stage1.yaml", as_of=d, outside_period=True), dates)
            )
        # per set of parameter values in force: one ruleset per phase (before and after the ranking) of
        # the stage, and one for the rules of other stages, which a decision's trace settles when read
        assert live_rulesets() - before == 3 * len(sets)
        assert [r.summary.slots for r in results[:4] if r.summary] == [4, 3, 2, 4]
        policy.close()
        assert live_rulesets() == before
    finally:
        gc.enable()


class PicklingExecutor(Executor):
    """Runs each task here, but only after a pickle round trip, as a cluster's executor would."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        payload = pickle.dumps((fn, args, kwargs))
        self.sent.append(payload)
        fn, args, kwargs = pickle.loads(payload)
        answer = pickle.loads(pickle.dumps(fn(*args, **kwargs)))
        future: Future[Any] = Future()
        future.set_result(answer)
        return future


def test_evaluate_many_is_exported_and_sequential_by_default(policy: Policy) -> None:
    assert "evaluate_many" in engine.__all__ and "PolicyStore" in engine.__all__ and batch_all
    work = jobs()
    results = evaluate_many(policy, [c for c, _ in work])
    assert [r.to_json() for r in results] == [policy.evaluate(c).to_json() for c, _ in work]


@pytest.mark.parametrize("backend", BACKENDS)
def test_evaluate_many_on_threads_and_on_a_pickling_executor_equals_sequential(backend: str) -> None:
    _needs(backend)
    policy = load_policy(RULES, backend=backend)
    cohorts = [c for c, _ in jobs()]
    expected = evaluate_many(policy, cohorts)  # each cohort as of its own date, inside its stage's period
    with ThreadPoolExecutor(4) as pool:
        threaded = evaluate_many(policy, cohorts, executor=pool)
    remote = PicklingExecutor()
    shipped = evaluate_many(policy, cohorts, executor=remote)
    assert all(_same(a, b) for a, b in zip(expected, threaded, strict=True))
    assert all(_same(a, b) for a, b in zip(expected, shipped, strict=True))
    assert len(remote.sent) == len(cohorts) and all(len(p) < 100_000 for p in remote.sent)  # data, not the policy
    naver = shipped[0].decisions["naver-cloud"]
    assert naver.policy is policy and "disqualified" in naver.explain().to_text()
    policy.close()


def test_engine_errors_come_back_from_workers_with_their_diagnostics(policy: Policy) -> None:
    bad = _stage1()
    bad["consortia"][4]["scores"]["expert"] = 40.0
    with pytest.raises(FactError) as raised:
        evaluate_many(policy, [bad], executor=PicklingExecutor())
    assert "consortia[4].scores.expert" in raised.value.diagnostics[0].message
    mixed = evaluate_many(policy, [bad, _stage1()], executor=PicklingExecutor(), return_exceptions=True)
    assert isinstance(mixed[0], FactError) and isinstance(mixed[1], Result)
    local = evaluate_many(policy, [bad, _stage1()], return_exceptions=True)
    assert isinstance(local[0], EngineError) and isinstance(local[1], Result)


def test_a_worker_refuses_a_package_that_changed_since_it_was_loaded(tmp_path: Path) -> None:
    package = tmp_path / "sovereign_ai"
    shutil.copytree(RULES, package)
    policy = load_policy(package)
    (package / "policy.yaml").write_text(
        (package / "policy.yaml").read_text().replace('version: "2026.2.0"', 'version: "2026.2.9"')
    )
    with pytest.raises(EvaluationError, match="changed since it was loaded"):
        evaluate_many(policy, [EXAMPLES / "stage1.yaml"], executor=PicklingExecutor())
    assert (
        evaluate_many(policy, [EXAMPLES / "stage1.yaml"])[0].policy.version == "2026.2.0"
    )  # the caller's copy still answers


@pytest.fixture(scope="module")
def processes() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


@pytest.mark.parametrize("backend", BACKENDS)
def test_evaluate_many_on_a_process_pool_equals_sequential(backend: str, processes: ProcessPoolExecutor) -> None:
    _needs(backend)
    policy = load_policy(RULES, backend=backend)
    cohorts = [c for c, _ in jobs()] * 2
    expected = evaluate_many(policy, cohorts)
    pooled = evaluate_many(policy, cohorts, executor=processes)
    assert all(_same(a, b) for a, b in zip(expected, pooled, strict=True))
    assert pooled[0].backend == backend
    policy.close()


def test_a_worker_loads_a_package_once_per_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README: each worker loads the package once per digest (a new digest: loaded again)."""
    import collections

    import engine.embedding.batch as batch

    loads: list[str] = []
    real = batch.load_policy

    def counting(path: Any, **options: Any) -> Policy:
        loads.append(str(path))
        return real(path, **options)

    monkeypatch.setattr(batch, "_cache", collections.OrderedDict())
    monkeypatch.setattr(batch, "load_policy", counting)
    package = tmp_path / "sovereign_ai"
    shutil.copytree(RULES, package)
    policy = load_policy(package)
    executor = PicklingExecutor()  # every task goes through pickle, as to another process, and runs here
    first = evaluate_many(policy, [EXAMPLES / "stage1.yaml"] * 4, executor=executor)
    again = evaluate_many(policy, [EXAMPLES / "stage1.yaml"] * 2, executor=executor)
    assert len(executor.sent) == 6 and loads == [str(package)]
    assert all(r.outcomes() == first[0].outcomes() for r in first + again)
    manifest = package / "policy.yaml"
    manifest.write_text(manifest.read_text().replace('version: "2026.2.0"', 'version: "2026.2.9"'))
    edited = load_policy(package)
    assert evaluate_many(edited, [EXAMPLES / "stage1.yaml"] * 3, executor=executor)[0].policy.version == "2026.2.9"
    assert loads == [str(package)] * 2
