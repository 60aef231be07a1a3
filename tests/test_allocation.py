"""Allocation beyond places: a stage fills places in rank order until a capacity runs out, with
places reserved for tracks, on the GPU-hour call of rules/gpu_call.

Held on both backends: the fixture's own policy tests (a golden table of the 2026 call), the
Hypothesis properties (capacity never exceeded; reserved places never go to another track while
reserved; no award above the request; both backends agree), explanations and why-not, the checks.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from engine import PolicyError, Result, load_policy
from engine.cli import main
from engine.evaluation.allocation import Claim, TrackPlaces, allocate
from engine.explanation.cohort_explain import explain_cohort
from engine.verification.casefile import run_file
from engine.verification.verify import search_invariants
from tests.conftest import GPU_HOURS
from tests.strategies import gpu_cohorts

CALL = GPU_HOURS / "tests" / "facts" / "call_2026.yaml"
GOLDEN = Path(__file__).parent / "golden" / "allocate" / "call_2026.txt"
BACKENDS = ["generated", "python", pytest.param("durable", marks=pytest.mark.durable)]


def _policy(backend: str = "python") -> Any:
    if backend == "durable":
        pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    return load_policy(GPU_HOURS, backend=backend)


@pytest.fixture(scope="module")
def python() -> Any:
    return _policy()


@pytest.fixture(scope="module")
def durable() -> Any:
    return _policy("durable")


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_fixtures_policy_tests_pass_on_both_backends(backend: str) -> None:
    policy = _policy(backend)
    results = [r for path in sorted((GPU_HOURS / "tests").glob("*.yaml")) for r in run_file(policy, path)]
    assert len(results) >= 10
    assert all(r.passed for r in results), [(r.name, r.failures) for r in results if not r.passed]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_2026_call_matches_its_golden_table(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Golden decision case: the table of `policy evaluate` for the 2026 call, with awards and tracks."""
    if backend == "durable":
        pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    assert main(["evaluate", str(GPU_HOURS), str(CALL), "--backend", backend]) == 0
    table = capsys.readouterr().out.replace(f"backend {backend}", "backend python")
    assert table == GOLDEN.read_text(encoding="utf-8")


def test_decisions_and_summary_carry_what_was_awarded(python: Any) -> None:
    result: Result = python.evaluate(CALL)
    skipped = result.decisions["a2-institute"].to_json()
    assert skipped["awarded"] == 0.0 and skipped["allocation"]["allotment"] == "does_not_fit"
    assert skipped["allocation"]["note"] == "capacity left 1,000 GPU-hours < requested 3,000 GPU-hours; skipped"
    reserved = result.decisions["a5-tinylab"]
    assert (reserved.awarded, reserved.allocation.track, reserved.allocation.reserved) == (1500.0, "sme", True)  # type: ignore[union-attr]
    assert reserved.grants[0].quantity == 1500.0
    summary = result.to_json()["summary"]
    assert (summary["capacity"], summary["capacity_used"], summary["capacity_left"]) == (10000.0, 9500.0, 500.0)
    assert summary["tracks"][0] == {
        "id": "sme",
        "title": "small and medium firms",
        "reserved": 2,
        "filled": 2,
        "unfilled": 0,
        "unfilled_to": "release",
        "members": 3,
    }
    assert result.summary is not None and result.summary.cut_off is None  # places go by allocation, not by rank


def test_the_stage_explanation_and_why_not_know_capacity_and_tracks(python: Any) -> None:
    result = python.evaluate(CALL)
    text = explain_cohort(python, result).to_text()
    assert "capacity: 10,000 GPU-hours; awarded 9,500 GPU-hours; left 500 GPU-hours" in text
    assert "track `university` (universities): 1 place(s) reserved for its 1 subject(s) in the pool; 1 filled" in text
    answer = result.decisions["a2-institute"].why_not("allocated")
    assert "allocation: capacity left 1,000 GPU-hours < requested 3,000 GPU-hours; skipped" in answer.needs
    assert [c.describe() for s in answer.suggestions for c in s.changes][0] == (
        "requested_gpu_hours: 3000.0 → 1000.0 (-2000.0)"  # the change and its size, signed
    )
    tree = result.decisions["a1-foundry"].explain().to_text()
    assert "allocation: awarded 4,000 GPU-hours of the 5,000 GPU-hours left" in tree
    assert "parameter `gpu_hour_pool` = 10000, in force since 2026-03-01" in tree


def test_why_not_when_nothing_was_left_proposes_no_request_and_no_rank(python: Any) -> None:
    """With the pool used up exactly before its turn, a subject that did not fit is told so, and is
    neither offered a request of 0 nor told that every place was taken (places were left)."""
    cohort = python.load_cohort(CALL).model_dump()
    cohort["applicants"][5]["requested_gpu_hours"] = 2000  # the university's track takes 1,000 more
    answer = python.evaluate(cohort).decisions["a2-institute"].why_not("allocated")
    assert answer.needs == ("allocation: capacity left 0 GPU-hours < requested 3,000 GPU-hours; skipped",)
    assert all("requested_gpu_hours" not in c.path for s in answer.suggestions for c in s.changes)


def test_why_not_another_outcome_than_the_one_that_takes_a_place_says_nothing_of_the_allocation(python: Any) -> None:
    """The allocation is explained only on the way to the outcome that fills a place (`allocated`)."""
    answer = python.evaluate(CALL).decisions["a2-institute"].why_not("ineligible")
    assert answer.needs and not any(n.startswith("allocation:") or "would have fitted" in n for n in answer.needs)


def test_why_not_when_the_request_is_a_formula_gives_the_request_that_fits_and_no_change(tmp_path: Path) -> None:
    """`takes` written as a formula (not one fact): the request that would have fitted is given, and no
    change is proposed for the formula itself."""
    folder = tmp_path / "gpu"
    shutil.copytree(GPU_HOURS, folder, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    rules = folder / "allocation.yaml"
    text = rules.read_text(encoding="utf-8")
    rules.write_text(text.replace("takes: requested_gpu_hours", "takes: requested_gpu_hours * 1"), "utf-8")
    answer = load_policy(folder).evaluate(CALL).decisions["a2-institute"].why_not("allocated")
    assert answer.needs == (
        "allocation: capacity left 1,000 GPU-hours < requested 3,000 GPU-hours; skipped",
        "a request of at most 1000.0 GPU-hours would have fitted when its turn came",
    )
    assert answer.suggestions == ()


def test_does_not_fit_partial_gives_what_is_left(tmp_path: Path) -> None:
    folder = tmp_path / "gpu"
    shutil.copytree(GPU_HOURS, folder, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    rules = folder / "allocation.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("does_not_fit: skip", "does_not_fit: partial"), "utf-8")
    result = load_policy(folder).evaluate(CALL)
    partial = result.decisions["a2-institute"]
    assert (partial.outcome, partial.awarded, partial.allocation.allotment) == ("allocated", 1000.0, "partial")  # type: ignore[union-attr]
    assert result.summary is not None and result.summary.capacity_left == 0.0


def test_a_missing_request_in_the_pool_leaves_the_allocation_undetermined_naming_it(python: Any) -> None:
    data = python.load_cohort(CALL).model_dump(mode="json")
    data["applicants"][0]["requested_gpu_hours"] = None
    data["applicants"][0]["score"] = 95.0
    result = python.evaluate(data)
    # without a request a1's eligibility is undetermined: it may be in the pool, ranked first (95
    # points), and take hours; with tracks, what each eligible applicant gets waits for its request
    assert result.decisions["a1-foundry"].outcome == "undetermined"
    assert result.decisions["a1-foundry"].missing == ("requested_gpu_hours",)
    waiting = {i: d.missing for i, d in result.decisions.items() if d.outcome == "undetermined" and i != "a1-foundry"}
    assert waiting and all("a1-foundry: requested_gpu_hours" in m for m in waiting.values())
    # what allocation gives (`stage.awarded`, `stage.placed`...) is named by the facts it waits for
    assert not [t for d in result.decisions.values() for t in d.missing if t.startswith("stage.")]
    assert result.decisions["a8-abroad"].outcome == "ineligible"  # what a1 cannot change stays decided
    assert result.summary is not None and result.summary.open == 0 and result.summary.pending


def test_with_a_capacity_alone_those_ranked_surely_before_an_uncertain_subject_are_allotted(tmp_path: Path) -> None:
    folder = tmp_path / "gpu"
    shutil.copytree(GPU_HOURS, folder, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    rules = folder / "allocation.yaml"
    text = rules.read_text(encoding="utf-8")
    start, end = text.index("    tracks:"), text.index("    fills_slot:")
    rules.write_text(text[:start] + text[end:], "utf-8")
    policy = load_policy(folder)
    complete = policy.evaluate(CALL)
    data = policy.load_cohort(CALL).model_dump(mode="json")
    late = next(a for a in data["applicants"] if a["id"] == "a10-late")
    late["requested_gpu_hours"] = None  # 62 points: every eligible applicant but a11 is surely ranked before it
    result = policy.evaluate(data)
    before = [i for i, r in complete.summary.ranking if r is not None and r < 8]  # type: ignore[union-attr]
    assert before and all(result.decisions[i].outcome == complete.decisions[i].outcome for i in before)
    assert all(result.decisions[i].awarded == complete.decisions[i].awarded for i in before)
    assert result.decisions["a10-late"].outcome == "undetermined"
    edge = result.decisions["a11-edge"]  # ranked after a10: what is left for it depends on a10's request
    assert edge.outcome == "undetermined" and "a10-late: requested_gpu_hours" in edge.missing


def test_an_undetermined_track_leaves_every_allocation_undetermined() -> None:
    claims = {"a": Claim("a", 10.0, "sme"), "b": Claim("b", 10.0, _missing("lead.kind"))}
    found = allocate(
        ["a", "b"], claims, slots=2, capacity=100.0, partial=False, tracks=[TrackPlaces("sme", 1, "release")]
    )
    assert found.per == {} and found.missing == ("b: lead.kind",)


def _missing(path: str) -> Any:
    from engine.evaluation.compiler import Missing

    return Missing(frozenset({path}))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("capacity: gpu_hour_pool", "capacity: gpu_hour_pool + score", "error[slots-uses-facts]: `capacity` of stage"),
        ("takes: requested_gpu_hours", "takes: stage.rank", "error[stage-cycle]: the takes of stage `allocation`"),
        ("reserved: sme_places", "reserved: score", "error[slots-uses-facts]: `reserved` of stage `allocation`"),
        ('when: lead.kind == "sme"', 'when: lead.kind == "smee"', "error[impossible-value]: `smee` is never"),
        ("    slots: places\n", "", "`tracks` reserve places out of `slots`"),
        ("    takes: requested_gpu_hours\n", "", "`capacity` and `takes` go together"),
        ("does_not_fit: skip", "does_not_fit: squeeze", "does_not_fit"),
    ],
)
def test_allocation_mistakes_are_located_diagnostics(tmp_path: Path, old: str, new: str, expected: str) -> None:
    folder = tmp_path / "gpu"
    shutil.copytree(GPU_HOURS, folder, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    rules = folder / "allocation.yaml"
    text = rules.read_text(encoding="utf-8")
    assert old in text
    rules.write_text(text.replace(old, new), "utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(folder)
    found = [f"{d.severity}[{d.code}]: {d.message}" for d in caught.value.diagnostics]
    assert any(expected in f for f in found), found
    assert all(d.span.file.endswith("allocation.yaml") for d in caught.value.diagnostics if d.severity == "error")


def test_the_invariant_search_reads_capacity_and_tracks_and_finds_them_holding(python: Any) -> None:
    report = search_invariants(python, examples=30)
    assert report.violations == [], [v.message for v in report.violations]


def test_policy_test_mutate_kills_every_mutant(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(GPU_HOURS), "--mutate", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    mutation = data["mutation"]
    assert mutation["total"] >= 40 and mutation["survived"] == [], mutation["survived"]


def _checked(result: Result) -> None:
    """Capacity never exceeded; reserved places only to their track, general places never into the
    reservation; no award above the request or below zero."""
    s = result.summary
    assert s is not None and s.capacity is not None
    awards = [d.awarded for d in result.decisions.values() if d.awarded is not None]
    assert sum(awards) <= s.capacity + 1e-9 and all(a >= 0 for a in awards)
    if s.capacity_used is not None:
        assert s.capacity_used == pytest.approx(sum(awards)) and s.capacity_left == pytest.approx(
            s.capacity - sum(awards)
        )
    placed = [d for d in result.decisions.values() if d.allocation and d.allocation.allotment in ("awarded", "partial")]
    for d in placed:
        assert d.allocation is not None and d.allocation.awarded is not None and d.allocation.requested is not None
        assert d.allocation.awarded <= d.allocation.requested
        if d.allocation.reserved:
            assert d.allocation.track in ("sme", "university")
    general = sum(1 for d in placed if d.allocation and not d.allocation.reserved)
    released = sum(t.unfilled for t in s.tracks if t.unfilled_to == "release")
    assert s.slots is not None and general <= s.slots - sum(t.reserved for t in s.tracks) + released
    for t in s.tracks:
        taken = sum(1 for d in placed if d.allocation and d.allocation.reserved and d.allocation.track == t.id)
        assert taken + t.unfilled == t.reserved


@given(cohort=gpu_cohorts())
def test_capacity_and_reservations_hold_on_generated_cohorts(python: Any, cohort: dict[str, Any]) -> None:
    """On every generated cohort: capacity never exceeded, reserved places never go to another track."""
    _checked(python.evaluate(cohort))


@pytest.mark.durable
@given(cohort=gpu_cohorts())
def test_durable_backend_allocates_the_same(python: Any, durable: Any, cohort: dict[str, Any]) -> None:
    """Both backends give the same outcomes, awards, allocations, grants and summary."""
    a, b = python.evaluate(cohort), durable.evaluate(cohort)
    _checked(b)

    def view(r: Result) -> Any:
        return {i: (d.outcome, d.reasons, d.awarded, d.allocation, d.grants) for i, d in r.decisions.items()}

    assert view(a) == view(b) and a.summary == b.summary


@pytest.mark.parametrize("reads", ["stage.awarded > 0", "stage.allotment == 'awarded'", "stage.capacity_left > 0"])
def test_a_row_waiting_for_what_allocation_gives_names_the_facts_it_waits_for(tmp_path: Path, reads: str) -> None:
    """A rule that reads what allocation gives (`stage.awarded`, `stage.allotment`, `stage.capacity_left`)
    is undetermined while an applicant ranked before may still take hours; the decisions name that
    applicant's missing request (`a1-foundry: requested_gpu_hours`), never the `stage.*` term."""
    folder = tmp_path / "gpu"
    shutil.copytree(GPU_HOURS, folder, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    rules = folder / "allocation.yaml"
    text = rules.read_text(encoding="utf-8")
    assert "    when: stage.placed\n" in text
    rules.write_text(text.replace("    when: stage.placed\n", f'    when: "{reads}"\n', 1), "utf-8")
    policy = load_policy(folder)
    data = policy.load_cohort(CALL).model_dump(mode="json")
    data["applicants"][0]["requested_gpu_hours"] = None
    data["applicants"][0]["score"] = 95.0
    result = policy.evaluate(data)
    waiting = {i: d.missing for i, d in result.decisions.items() if d.outcome == "undetermined" and i != "a1-foundry"}
    assert waiting and all("a1-foundry: requested_gpu_hours" in m for m in waiting.values())
    assert not [t for m in waiting.values() for t in m if t.startswith("stage.")]
