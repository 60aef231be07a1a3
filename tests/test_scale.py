"""One cohort across processes: `evaluate_many(..., chunk_size=)` decides a cohort in the three steps of
`evaluate_cohort` (survey chunks, rank and allocate over plain data, decide chunks) with the decisions a
single-process evaluation gives, decision by decision and as JSON; on a pickling executor, on a process
pool, on threads and on a Dask `distributed` LocalCluster of process workers.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import pickle
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import FactError, Policy, Result, evaluate_many, load_policy
from engine.core.collector import collector_paused
from engine.evaluation.compiler import Scope
from engine.evaluation.evaluate import Surveyed, place_at, stand, survey
from engine.evaluation.result import Decisions
from tests.conftest import EXAMPLES, GPU_HOURS, GRANTS, ROOT, RULES
from tests.strategies import cohorts, gpu_cohorts, ranked_cohorts
from tests.test_concurrency import PicklingExecutor, jobs

GPU_CALL = GPU_HOURS / "tests" / "facts" / "call_2026.yaml"


def _same(expected: Result, got: Result) -> None:
    """Equal as JSON, and decision by decision (reasons, placement, grants, allocation, trace, facts)."""
    assert got.to_json() == expected.to_json()
    assert list(got.decisions) == list(expected.decisions)
    for id, decision in expected.decisions.items():
        other = got.decisions[id]
        assert other == decision and other.reasons == decision.reasons
        assert dict(other.trace) == dict(decision.trace) and other.parameters == decision.parameters
        assert other.subject == decision.subject and other.context == decision.context
    assert got.summary == expected.summary


@pytest.mark.parametrize("size", [1, 2, 3, 100])
def test_chunks_of_any_size_give_the_single_process_decisions(policy: Policy, size: int) -> None:
    executor = PicklingExecutor()
    for cohort, as_of in jobs():
        expected = policy.evaluate(cohort, as_of, outside_period=True)
        [got] = evaluate_many(policy, [cohort], executor=executor, as_of=as_of, chunk_size=size, outside_period=True)
        _same(expected, got)
        assert all(d.policy is policy for d in got.decisions.values())
    assert executor.sent and all(len(p) < 200_000 for p in executor.sent)  # chunks of facts, never the policy


def test_the_ranking_step_sees_plain_data_only(policy: Policy) -> None:
    """What the workers send back after the survey is ids, pool, keys and requests: no facts, no scope."""
    executor = PicklingExecutor()
    evaluate_many(policy, [EXAMPLES / "wildcard.yaml"], executor=executor, chunk_size=2)
    sent_back = []
    for payload in executor.sent:
        fn, args, kwargs = pickle.loads(payload)
        if fn.__name__ == "_survey_chunk":
            sent_back += [seen for seen, _ in fn(*args, **kwargs)]
    assert sent_back and all(isinstance(s, Surveyed) for s in sent_back)
    assert all(len(pickle.dumps(s)) < 2_000 for s in sent_back)
    assert "Consortium" not in repr(sent_back)


def test_the_decision_step_sends_back_plain_data_not_decisions(policy: Policy) -> None:
    """A worker's decide step answers with what it settled (values, rows, the deciding row, quantities): no
    facts, no `Decision`, no reasons; the caller builds each decision when it is read."""
    executor = PicklingExecutor()
    [result] = evaluate_many(policy, [EXAMPLES / "stage1.yaml"], executor=executor, chunk_size=2)
    sent_back = []
    for payload in executor.sent:
        fn, args, kwargs = pickle.loads(payload)
        if fn.__name__ == "_decide_chunk":
            sent_back += fn(*args, **kwargs)
    assert len(sent_back) == 5 and all(isinstance(at, tuple) for at in sent_back)
    text = repr(sent_back)
    assert "Consortium" not in text and "Decision" not in text and "Reason" not in text
    assert isinstance(result.decisions, Decisions)
    assert {id: d.row for id, d in result.decisions.items()} == {
        id: d.row for id, d in policy.evaluate(EXAMPLES / "stage1.yaml").decisions.items()
    }


@pytest.mark.parametrize("row", ["not within_grants", "not within_grants or age > 60"])
def test_the_decision_step_is_sent_facts_only_where_the_rows_read_them(tmp_path: Path, row: str) -> None:
    """After the ranking a worker needs a subject's facts only if phase 2 or the rows read them (here `age`);
    otherwise its chunk goes out as ids, and the decisions are the single-process ones either way."""
    package = tmp_path / "grants"
    shutil.copytree(GRANTS, package, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = package / "policy.yaml"
    manifest.write_text(manifest.read_text().replace("when: not within_grants", f"when: {row}"))
    policy = load_policy(package)
    reads = "age" in row
    assert policy.compiled.stages["award"].facts_after is reads
    people = [{"id": f"p{i}", "income": 1000.0 * i, "age": 20 + 15 * i, "documents": []} for i in range(5)]
    cohort = {"context": {"stage": "award", "date": "2026-03-01"}, "applicants": people}
    executor = PicklingExecutor()
    [got] = evaluate_many(policy, [cohort], executor=executor, chunk_size=2)
    _same(policy.evaluate(cohort), got)
    sent = [pickle.loads(payload) for payload in executor.sent]
    chunks = [args[2] for fn, args, _ in sent if fn.__name__ == "_decide_chunk"]
    assert len(chunks) == 3 and all(isinstance(c, bytes) is reads for c in chunks)
    assert reads or [c for chunk in chunks for c in chunk] == [p["id"] for p in people]


@pytest.mark.durable
def test_chunks_on_the_durable_backend_give_its_single_process_decisions() -> None:
    pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    durable = load_policy(RULES, backend="durable")
    for cohort, as_of in jobs()[:4]:
        expected = durable.evaluate(cohort, as_of, outside_period=True)
        [got] = evaluate_many(
            durable, [cohort], executor=PicklingExecutor(), as_of=as_of, chunk_size=2, outside_period=True
        )
        _same(expected, got)
        assert got.backend == "durable"
    durable.close()


def test_chunks_decide_allocation_and_tracks_as_one_process_does() -> None:
    gpu = load_policy(GPU_HOURS)
    expected = gpu.evaluate(GPU_CALL)
    for size in (1, 2, 5):
        [got] = evaluate_many(gpu, [GPU_CALL], executor=PicklingExecutor(), chunk_size=size)
        _same(expected, got)


@given(cohort=st.one_of(cohorts(), ranked_cohorts("stage1"), ranked_cohorts("additional_call")), size=st.integers(1, 4))
@settings(max_examples=25)
def test_a_cohort_in_chunks_is_decided_as_in_one_process(policy: Policy, cohort: dict[str, Any], size: int) -> None:
    """Any cohort (missing facts, ties, open ranks) split in chunks of any size gets the single-process decisions."""
    try:
        expected = policy.evaluate(cohort)
    except FactError:
        return
    [got] = evaluate_many(policy, [cohort], executor=PicklingExecutor(), chunk_size=size)
    _same(expected, got)


@given(cohort=gpu_cohorts(), size=st.integers(1, 3))
@settings(max_examples=15)
def test_an_allocation_in_chunks_is_decided_as_in_one_process(cohort: dict[str, Any], size: int) -> None:
    """Capacity and reserved tracks decided over chunks give the single-process decisions and summary."""
    gpu = load_policy(GPU_HOURS)
    expected = gpu.evaluate(cohort)
    [got] = evaluate_many(gpu, [cohort], executor=PicklingExecutor(), chunk_size=size)
    _same(expected, got)


def test_chunks_without_an_executor_and_on_threads_and_without_the_trace(policy: Policy) -> None:
    cohort = EXAMPLES / "stage1.yaml"
    for trace in (True, False):
        expected = policy.evaluate(cohort, trace=trace)
        [alone] = evaluate_many(policy, [cohort], chunk_size=2, trace=trace)
        with ThreadPoolExecutor(2) as pool:
            [threaded] = evaluate_many(policy, [cohort], executor=pool, chunk_size=2, trace=trace)
        _same(expected, alone)
        _same(expected, threaded)
        assert bool(alone.decisions["naver-cloud"].trace) is trace


def test_errors_in_chunks_come_back_as_engine_errors(policy: Policy) -> None:
    bad = policy.load_cohort(EXAMPLES / "stage1.yaml").model_dump(mode="json")
    bad["consortia"][4]["scores"]["expert"] = 40.0
    with pytest.raises(FactError):
        evaluate_many(policy, [bad], executor=PicklingExecutor(), chunk_size=2)
    [error, fine] = evaluate_many(
        policy, [bad, EXAMPLES / "stage1.yaml"], executor=PicklingExecutor(), chunk_size=2, return_exceptions=True
    )
    assert isinstance(error, FactError) and isinstance(fine, Result)
    with pytest.raises(ValueError, match="chunk_size"):
        evaluate_many(policy, [bad], chunk_size=0)


def test_a_place_travels_as_plain_data(policy: Policy) -> None:
    """What a worker is sent of a subject's place (`place_at`: its id, `stage.*`, rank range and what would
    settle it) and a decision's placement (its ties computed) come back from a pickle equal."""
    cohort = policy.load_cohort(EXAMPLES / "stage1.yaml")
    compiled, context = policy.compiled, cohort.context
    stage, params = compiled.stages["stage1"], compiled.parameters_on(context.date)
    surveyed = [survey(compiled, policy._backend, stage, Scope(s, context, params)) for s in cohort.consortia]
    at = place_at(stand(compiled, stage, surveyed, context, params).ranking, "lg-ai-research")
    assert at[0] == "lg-ai-research" and at[1].rank is not None
    assert pickle.loads(pickle.dumps(at)) == at
    placement = policy.evaluate(cohort).decisions["lg-ai-research"].placement
    assert placement is not None and pickle.loads(pickle.dumps(placement)) == placement


def test_the_collector_is_paused_during_an_evaluation_and_restored_after(policy: Policy) -> None:
    seen: list[bool] = []
    policy.evaluate(EXAMPLES / "stage1.yaml", tick=lambda: seen.append(gc.isenabled()))
    assert seen and not any(seen) and gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("an evaluation that fails")
    assert gc.isenabled()


_CYCLE = """
import gc, json, weakref
from engine import load_policy

class Node:
    other = None

policy = load_policy("rules/sovereign_ai")
gc.collect()
first, second = Node(), Node()
first.other, second.other = second, first  # a reference cycle, dropped: only the collector frees it
alive = weakref.ref(first)
del first, second
policy.evaluate("examples/stage1.yaml")  # validating and evaluating each pause the collector
gc.collect(1)  # the young generations only
print(json.dumps({"freed": alive() is None, "on": gc.isenabled()}))
"""


def test_a_cycle_dropped_before_an_evaluation_is_freed_by_a_young_collection() -> None:
    """A pause leaves the generations as they were: garbage made before it is freed by the next young
    collections, not left for a full one (a server that reloads its policy and evaluates grew without bound
    when a pause filed everything young as old)."""
    done = subprocess.run([sys.executable, "-c", _CYCLE], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"freed": True, "on": True}


_FILED = """
import gc, json, weakref
from pydantic import BaseModel
from engine.core.collector import MANY
from engine.source.facts import load_facts

class Item(BaseModel):
    x: int

class Cohort(BaseModel):
    items: list[Item]

class Node:
    other = None

def generation_of(thing):
    return next((g for g in range(3) if any(o is thing for o in gc.get_objects(g))), None)

gc.collect()
first, second = Node(), Node()
first.other, second.other = second, first  # a reference cycle, dropped just before a large cohort is read
alive = weakref.ref(first)
del first, second
large = load_facts(Cohort, {"items": [{"x": n} for n in range(MANY)]})
freed = alive() is None
small = load_facts(Cohort, {"items": [{"x": n} for n in range(MANY - 1)]})
young = generation_of(small.items[0]) < 2  # walked by young collections as usual (and promoted by them), not filed
print(json.dumps({"freed": freed, "large": generation_of(large.items[0]), "young": young,
                  "on": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


def test_a_large_cohorts_facts_are_filed_as_old_and_no_garbage_made_before_with_them() -> None:
    """The fact models of a cohort of `MANY` subjects or more go to the oldest generation once validated, after
    the young generations were collected (a cycle dropped before is freed, not filed); a smaller cohort's stay
    young."""
    done = subprocess.run([sys.executable, "-c", _FILED], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found == {"freed": True, "large": 2, "young": True, "on": True, "frozen": 0}


_DECIDED = """
import gc, json, weakref
from engine import load_policy
from engine.core.collector import MANY_DECIDED
from tests.benchmarks.scale import synthetic

class Node:
    other = None

def generation_of(thing):
    return next((g for g in range(3) if any(o is thing for o in gc.get_objects(g))), None)

policy = load_policy("rules/sovereign_ai")
# validated first (a pause of its own)
large, small = synthetic(policy, MANY_DECIDED), synthetic(policy, MANY_DECIDED - 1)
gc.collect()
first, second = Node(), Node()
first.other, second.other = second, first  # a reference cycle, dropped just before a large cohort is decided
alive = weakref.ref(first)
del first, second
decided = policy.evaluate(large)
freed = alive() is None
kept = generation_of(decided)
young = generation_of(policy.evaluate(small)) < 2
del decided
print(json.dumps({"freed": freed, "large": kept, "young": young, "on": gc.isenabled(), "frozen": gc.get_freeze_count(),
                  "garbage": gc.collect()}))
"""


def test_a_large_cohorts_decisions_are_filed_as_old_and_leave_no_garbage() -> None:
    """What deciding a cohort of `MANY_DECIDED` subjects or more builds goes to the oldest generation, after the young
    generations were collected (a cycle dropped before is freed, not filed); a smaller cohort's result stays
    young; and a large result dropped leaves nothing for the collector (no cycle is filed with it)."""
    done = subprocess.run([sys.executable, "-c", _DECIDED], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found == {"freed": True, "large": 2, "young": True, "on": True, "frozen": 0, "garbage": 0}


@pytest.fixture(scope="module")
def processes() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def test_a_cohort_in_chunks_on_a_process_pool_equals_one_process(processes: ProcessPoolExecutor) -> None:
    policy = load_policy(RULES)
    for cohort, as_of in jobs():
        expected = policy.evaluate(cohort, as_of, outside_period=True)
        [got] = evaluate_many(policy, [cohort], executor=processes, as_of=as_of, chunk_size=2, outside_period=True)
        _same(expected, got)


def _synthetic(policy: Policy, size: int) -> Any:
    from tests.benchmarks.scale import synthetic

    return synthetic(policy, size)


def test_a_cohort_on_a_dask_local_cluster_of_process_workers_equals_one_process() -> None:
    distributed = pytest.importorskip(
        "distributed", reason="dask[distributed] is not installed (pip install -e '.[scale]')"
    )
    policy = load_policy(RULES)
    cohort = _synthetic(policy, 600)
    expected = policy.evaluate(cohort)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        [got] = evaluate_many(policy, [cohort], executor=client.get_executor(), chunk_size=150)
        [missing] = evaluate_many(policy, [jobs()[6][0]], executor=client.get_executor(), chunk_size=1)
        workers = client.run(lambda: __import__("os").getpid())
    _same(expected, got)
    _same(policy.evaluate(jobs()[6][0]), missing)
    assert len(workers) == 2
    assert {"advanced", "eliminated", "disqualified"} <= {d.outcome for d in got.decisions.values()}


def test_a_rank_left_open_by_a_missing_score_is_decided_in_chunks_as_in_one_process(policy: Policy) -> None:
    """A subject whose rank is a range (another's score missing) is decided at every rank it may have on the
    worker, as in one process: the same outcome, the same facts named as missing."""
    import yaml

    data = yaml.safe_load((EXAMPLES / "stage1.yaml").read_text(encoding="utf-8"))
    del data["consortia"][0]["scores"]["expert"]  # a ranking key of one team: the others' ranks are ranges
    expected = policy.evaluate(data)
    assert any(d.placement and d.placement.rank_range for d in expected.decisions.values())
    for size in (1, 2):
        [got] = evaluate_many(policy, [data], executor=PicklingExecutor(), chunk_size=size)
        _same(expected, got)
