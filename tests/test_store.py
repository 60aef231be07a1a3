"""Hot reload: a good version swaps in atomically, a broken one is rejected with its diagnostics
while the previous version keeps answering, evaluations in flight finish on the version they
started with, and the durable backend frees the rulesets of versions swapped out."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import Policy, PolicyError, PolicyStore, ReloadReport, Result, load_policy
from engine.embedding.store import __all__ as store_all
from engine.embedding.store import package_fingerprint
from tests.conftest import EXAMPLES, RULES

BACKENDS = ["generated", "python", pytest.param("durable", marks=pytest.mark.durable)]
GRANTS = Path(__file__).parent / "fixtures" / "grants"


def _needs(backend: str) -> None:
    if backend == "durable":
        pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A private copy of the sovereign_ai package that a test may edit."""
    target = tmp_path / "sovereign_ai"
    shutil.copytree(RULES, target)
    return target


def edit(package: Path, name: str, old: str, new: str) -> None:
    path = package / name
    text = path.read_text()
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new))


def break_it(package: Path) -> None:
    """An unknown name in a rule: the checker rejects the package."""
    edit(package, "stage1.yaml", "when: total_score >= minimum_total_score", "when: total_scor >= minimum_total_score")


def improve_it(package: Path) -> None:
    """Version 2026.2.1: five places and a minimum of 65, so NC AI advances."""
    edit(package, "policy.yaml", 'version: "2026.2.0"', 'version: "2026.2.1"')
    edit(package, "parameters.yaml", "      2026-01-15: 70.0", "      2026-01-15: 65.0")
    edit(package, "parameters.yaml", "      2026-01-15: 4\n", "      2026-01-15: 5\n")


def test_store_module_lists_its_surface() -> None:
    assert {"PolicyStore", "ReloadReport", "package_fingerprint"} <= set(store_all)


def test_policy_reload_is_a_new_object_and_a_broken_package_raises_with_diagnostics(package: Path) -> None:
    policy = load_policy(package)
    improve_it(package)
    newer = policy.reload()
    assert (
        newer is not policy and newer.identity.version == "2026.2.1" and newer.identity.digest != policy.identity.digest
    )
    break_it(package)
    with pytest.raises(PolicyError) as raised:
        newer.reload()
    assert any(
        d.code == "unknown-name" and d.span and d.span.file.endswith("stage1.yaml") for d in raised.value.diagnostics
    )
    assert newer.evaluate(EXAMPLES / "stage1.yaml").decisions["nc-ai"].outcome == "advanced"
    assert policy.evaluate(EXAMPLES / "stage1.yaml").decisions["nc-ai"].outcome == "eliminated"


def _hammer(
    store: PolicyStore, cohort: Any, rounds: int, threads: int = 4
) -> tuple[list[Result], list[BaseException], threading.Event, list[threading.Thread]]:
    """Threads evaluating `store.current` while the test reloads; returns what they saw."""
    results: list[Result] = []
    failures: list[BaseException] = []
    started = threading.Event()

    def run() -> None:
        for _ in range(rounds):
            try:
                results.append(store.current.evaluate(cohort))
            except BaseException as error:  # noqa: BLE001 - every failure is a failed request
                failures.append(error)
            started.set()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    return results, failures, started, workers


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_broken_package_is_rejected_under_concurrent_evaluation_and_the_old_version_answers(
    package: Path, backend: str
) -> None:
    _needs(backend)
    cohort = load_policy(RULES).load_cohort(EXAMPLES / "stage1.yaml")
    with PolicyStore(package, backend=backend) as store:
        before, expected = store.current, store.current.evaluate(cohort)
        results, failures, started, workers = _hammer(store, cohort, rounds=25)
        assert started.wait(30)
        break_it(package)
        reports = [store.reload_report() for _ in range(5)]
        for w in workers:
            w.join(60)
        assert failures == []
        assert len(results) == 4 * 25 and all(r == expected for r in results)
        assert [r.status for r in reports] == ["rejected"] * 5 and all(r.generation == 1 for r in reports)
        errors = reports[0].diagnostics
        assert any(
            d.code == "unknown-name" and "total_scor" in d.message and d.span and d.span.line > 0 for d in errors
        )
        assert store.current is before and store.generation == 1 and not before.closed
        assert store.current.evaluate(cohort) == expected
        assert store.reload() == list(errors)  # the plain API: the same diagnostics


class Gate:
    """Wraps a backend so that the first evaluation stops half-way until the test opens the gate."""

    def __init__(self, backend: Any) -> None:
        self.inner, self.name = backend, backend.name
        self.reached, self.open = threading.Event(), threading.Event()

    def run(self, *args: Any, **kwargs: Any) -> Any:
        if not self.reached.is_set():
            self.reached.set()
            assert self.open.wait(30)
        return self.inner.run(*args, **kwargs)

    def close(self) -> None:
        getattr(self.inner, "close", lambda: None)()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_good_version_swaps_in_and_an_evaluation_in_flight_finishes_on_the_old_one(
    package: Path, backend: str
) -> None:
    _needs(backend)
    seen: list[ReloadReport] = []
    with PolicyStore(package, backend=backend, on_reload=seen.append) as store:
        old = store.current
        gate = Gate(old._backend)
        old._backend = gate
        in_flight: list[Result] = []
        worker = threading.Thread(target=lambda: in_flight.append(old.evaluate(EXAMPLES / "stage1.yaml")))
        worker.start()
        assert gate.reached.wait(30)  # the evaluation has started on the old version
        improve_it(package)
        assert store.reload() == []  # swapped in, no warnings
        new = store.current
        assert new is not old and new.identity.version == "2026.2.1" and store.generation == 2 and old.closed
        assert new.evaluate(EXAMPLES / "stage1.yaml").decisions["nc-ai"].outcome == "advanced"
        gate.open.set()
        worker.join(60)
        assert len(in_flight) == 1 and in_flight[0].policy.version == "2026.2.0"
        assert in_flight[0].decisions["nc-ai"].outcome == "eliminated"
        assert [(r.status, r.version, r.generation) for r in seen] == [("reloaded", "2026.2.1", 2)]
        assert store.reload_report().status == "unchanged" and store.generation == 2


@pytest.mark.durable
def test_the_durable_rulesets_of_a_version_in_flight_are_freed_when_it_finishes(package: Path) -> None:
    _needs("durable")
    from engine.evaluation.durable._host import live_rulesets

    with PolicyStore(package, backend="durable") as store:
        start = live_rulesets()
        store.current.evaluate(EXAMPLES / "stage1.yaml")
        baseline = live_rulesets()
        built = baseline - start  # one per phase of the stage, one for the other stages' rules (traces)
        assert built == 3
        old = store.current
        gate = Gate(old._backend)
        old._backend = gate
        worker = threading.Thread(target=old.evaluate, args=(EXAMPLES / "stage1.yaml",))
        worker.start()
        assert gate.reached.wait(30)
        improve_it(package)
        store.reload()
        assert live_rulesets() == baseline  # closed, but not freed under the running evaluation
        gate.open.set()
        worker.join(60)
        assert live_rulesets() == baseline - built  # freed once it finished
        old.evaluate(EXAMPLES / "stage1.yaml")  # a closed policy still answers, and frees again
        assert live_rulesets() == baseline - built


@pytest.fixture
def watched(package: Path) -> Iterator[tuple[PolicyStore, list[ReloadReport], threading.Semaphore]]:
    reports: list[ReloadReport] = []
    arrived = threading.Semaphore(0)

    def on_reload(report: ReloadReport) -> None:
        reports.append(report)
        arrived.release()

    store = PolicyStore(package, on_reload=on_reload)
    store.watch(interval=0.02)
    yield store, reports, arrived
    store.close()
    assert not store.watching


def test_watching_rejects_a_broken_edit_then_swaps_in_the_fixed_version(package: Path, watched: Any) -> None:
    store, reports, arrived = watched
    first = store.current
    fingerprint = package_fingerprint(package)
    break_it(package)
    assert package_fingerprint(package) != fingerprint
    assert arrived.acquire(timeout=20)
    assert reports[-1].status == "rejected" and store.current is first
    edit(package, "stage1.yaml", "total_scor >=", "total_score >=")
    improve_it(package)
    assert arrived.acquire(timeout=20)
    assert reports[-1].status == "reloaded" and store.current.identity.version == "2026.2.1"
    assert not arrived.acquire(timeout=0.2)  # nothing changed since: no further reload
    with pytest.raises(RuntimeError):
        store.watch(0.02)


def test_a_store_on_a_broken_package_does_not_start(package: Path) -> None:
    break_it(package)
    with pytest.raises(PolicyError):
        PolicyStore(package)
    with pytest.raises(ValueError):
        PolicyStore(RULES).watch(0)


@pytest.mark.durable
def test_a_thousand_reloads_on_the_durable_backend_leave_no_ruleset_behind(tmp_path: Path) -> None:
    """Every reload swaps in a new version (alternating caps) that builds its own ruleset."""
    _needs("durable")
    from engine.evaluation.durable._host import live_rulesets

    package = tmp_path / "grants"
    shutil.copytree(GRANTS, package, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = package / "policy.yaml"
    caps = [manifest.read_text(), manifest.read_text().replace("2026-01-01: 30000", "2026-01-01: 15000")]
    batch = {
        "context": {"stage": "award", "date": "2026-03-01"},
        "applicants": [{"id": "a", "income": 20000.0, "age": 30, "documents": []}],
    }
    # settle=0: each edit is complete before its reload, so a reload need not wait for the files to rest
    with PolicyStore(package, backend="durable", settle=0) as store:
        start = live_rulesets()
        store.current.evaluate(batch)
        baseline = live_rulesets()
        built = baseline - start  # one per phase of the stage, one for the other stages' rules (traces)
        assert built == 3
        counts, outcomes = set(), []
        for n in range(1, 1001):
            manifest.write_text(caps[n % 2])
            assert store.reload_report().status == "reloaded"
            outcomes.append(store.current.evaluate(batch).decisions["a"].outcome)
            counts.add(live_rulesets())
        assert store.generation == 1001
        assert counts == {baseline}
        assert outcomes[:2] == ["refused", "granted"] and len(set(outcomes[::2])) == 1 and len(set(outcomes[1::2])) == 1
    assert live_rulesets() == baseline - built


def test_a_closed_policy_still_answers(policy: Policy) -> None:
    twin = policy.with_backend("python")
    twin.close()
    assert (
        twin.closed
        and twin.evaluate(EXAMPLES / "stage1.yaml").outcomes() == policy.evaluate(EXAMPLES / "stage1.yaml").outcomes()
    )
