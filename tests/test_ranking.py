"""Ranking on several keys: later keys break ties on earlier ones, never the order of the file or the ids.

A copy of the grants package ranks by income (ascending), then age (descending), then verified
documents (descending), with one place. In each case the subject that should win is last in the
file and last by id, so neither the file order nor the ids can pick it by accident.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from engine import load_policy

GRANTS = Path(__file__).parent / "fixtures" / "grants"

RANK_BY = """    rank_by:
      - key: income
        order: ascending
      - key: age
        order: descending
      - key: verified_documents
        order: descending
"""


@pytest.fixture(scope="module")
def three_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    package = tmp_path_factory.mktemp("ranking") / "grants"
    shutil.copytree(GRANTS, package)
    text = (package / "policy.yaml").read_text(encoding="utf-8")
    old = "    rank_by:\n      - key: income\n        order: ascending\n"
    assert old in text
    text = text.replace(old, RANK_BY).replace("    value: 2\n", "    value: 1\n")
    (package / "policy.yaml").write_text(text, encoding="utf-8")
    return package


def person(id: str, income: float, age: int, verified: int) -> dict[str, Any]:
    docs = [{"kind": "tax_return", "verified": True}] * verified
    return {"id": id, "income": income, "age": age, "documents": docs}


def decide(package: Path, backend: str, *people: dict[str, Any]) -> Any:
    if backend == "durable":
        pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    policy = load_policy(package, backend=backend)
    return policy.evaluate({"context": {"stage": "award", "date": "2026-03-01"}, "applicants": list(people)})


BACKENDS = ["generated", "python", pytest.param("durable", marks=pytest.mark.durable)]


def ranks(result: Any) -> dict[str, int | None]:
    return {i: d.placement.rank if d.placement else None for i, d in result.decisions.items()}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_tie_on_the_first_key_is_broken_by_the_second_not_by_file_order(three_keys: Path, backend: str) -> None:
    people = [person("a", 1000.0, 30, 1), person("z", 1000.0, 40, 1), person("m", 5000.0, 60, 3)]
    for order in (people, people[::-1]):
        result = decide(three_keys, backend, *order)
        assert ranks(result) == {"z": 1, "a": 2, "m": 3}
        assert result.outcomes() == {"z": "granted", "a": "waiting_list", "m": "waiting_list"}
        assert result.summary is not None and not result.summary.tie_at_cut_off
        assert result.summary.filled == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_tie_on_the_first_two_keys_is_broken_by_the_third(three_keys: Path, backend: str) -> None:
    people = [person("a", 1000.0, 30, 1), person("b", 1000.0, 30, 1), person("z", 1000.0, 30, 2)]
    for order in (people, people[::-1]):
        result = decide(three_keys, backend, *order)
        assert ranks(result) == {"z": 1, "a": 2, "b": 2}
        assert result.outcomes() == {"z": "granted", "a": "waiting_list", "b": "waiting_list"}
        assert result.summary is not None and not result.summary.tie_at_cut_off


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_tie_on_every_key_across_the_last_place_shares_the_rank_and_is_reported(
    three_keys: Path, backend: str
) -> None:
    people = [person("m", 2000.0, 30, 1), person("a", 1000.0, 30, 1), person("b", 1000.0, 30, 1)]
    for order in (people, people[::-1]):
        result = decide(three_keys, backend, *order)
        assert ranks(result) == {"a": 1, "b": 1, "m": 3}
        assert result.summary is not None and result.summary.tie_at_cut_off
        assert result.summary.ranking == (("a", 1), ("b", 1), ("m", 3))  # equals listed by id, whatever the file
        assert result.outcomes()["m"] == "waiting_list"
        assert result.outcomes()["a"] == result.outcomes()["b"]


def test_the_better_key_wins_whatever_the_ids(three_keys: Path) -> None:
    """Renaming the subjects (so that the ids sort the other way) changes no rank."""
    first = decide(three_keys, "python", person("a", 1000.0, 30, 1), person("z", 1000.0, 40, 1))
    renamed = decide(three_keys, "python", person("z", 1000.0, 30, 1), person("a", 1000.0, 40, 1))
    assert ranks(first) == {"z": 1, "a": 2}
    assert ranks(renamed) == {"a": 1, "z": 2}


@pytest.mark.parametrize("slots", ["1", "1.0", "grants - 1"])
def test_a_stage_may_count_its_places_with_a_number_or_an_expression(tmp_path: Path, slots: str) -> None:
    """`slots: 1` (a YAML number, not text) is read as the expression `1`, as `slots: grants - 1` is."""
    package = tmp_path / "grants"
    shutil.copytree(GRANTS, package)
    text = (package / "policy.yaml").read_text(encoding="utf-8")
    (package / "policy.yaml").write_text(text.replace("    slots: grants\n", f"    slots: {slots}\n"), "utf-8")
    result = decide(package, "python", person("a", 1000.0, 30, 1), person("b", 2000.0, 30, 1))
    assert result.outcomes() == {"a": "granted", "b": "waiting_list"}
    assert result.summary is not None and result.summary.slots == 1


def test_ranks_beyond_256_behind_an_uncertain_subject_are_known_when_it_surely_comes_first() -> None:
    """A subject whose key is missing but bounded above every other key is surely first: each of the
    300 others has a known rank, one behind its place among them (ranks past 256 are compared by
    value, not by identity), and no rank is left open."""
    from engine.evaluation.compiler import Missing
    from engine.evaluation.stages import Entry, rank_pool
    from engine.evaluation.uncertain import Interval

    others = [Entry(f"s{i:03d}", True, (float(i),)) for i in range(300)]
    first = Entry("u", True, Missing(frozenset({"score"})), intervals=(Interval(1000.0, 2000.0),))
    ranking = rank_pool("stage", [first, *others], [True], None)
    assert ranking.ranges == {} and ranking.settling == {}
    assert ranking.infos["u"].rank == 1
    assert {ranking.infos[e.id].rank for e in others} == set(range(2, 302))
    assert ranking.infos["s000"].rank == 301


def test_a_tie_across_a_last_place_beyond_256_is_reported_as_across() -> None:
    """With 280 places, the 280th and 281st of a ranking that share their first key are a tie across
    the last place (positions compared by value, not identity), and no other neighbours are."""
    from engine.evaluation.stages import Entry, rank_pool, ties_of

    keys = [(float(1000 - i), float(i)) for i in range(300)]
    keys[280] = (keys[279][0], 0.0)  # the 281st shares the 280th's first key, loses on the second
    entries = [Entry(f"s{i:03d}", True, k) for i, k in enumerate(keys)]
    ranking = rank_pool("stage", entries, [True, True], 280)
    ties = ties_of(ranking, 280)
    assert set(ties) == {"s279", "s280"}
    (tie,) = ties["s279"]
    assert tie.other == "s280" and tie.across_last_place and tie.key == 1


def test_a_tie_broken_by_an_ascending_key_names_that_key_and_both_values() -> None:
    """A tie on the first key (descending) broken by the second, ascending (the earlier application first):
    the tie names the second key, with each side's value, as for a descending one."""
    from engine.evaluation.stages import Entry, rank_pool, ties_of

    entries = [Entry("late", True, (80.0, 20.0)), Entry("early", True, (80.0, 3.0)), Entry("low", True, (70.0, 1.0))]
    ranking = rank_pool("stage", entries, [True, False], 1)
    assert ranking.order == (("early", 1), ("late", 2), ("low", 3))
    ties = ties_of(ranking, 1)
    assert set(ties) == {"early", "late"}
    (early,), (late,) = ties["early"], ties["late"]
    assert (early.other, early.key, early.mine, early.theirs, early.across_last_place) == ("late", 1, 3.0, 20.0, True)
    assert (late.other, late.key, late.mine, late.theirs, late.shared) == ("early", 1, 20.0, 3.0, 80.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_pool_without_ranking_keys_ranks_every_member_first(tmp_path: Path, backend: str) -> None:
    """A stage with a pool and no `rank_by` (no slots): its members tie on no keys, each ranked 1 of the pool."""
    package = tmp_path / "grants"
    shutil.copytree(GRANTS, package)
    text = (package / "policy.yaml").read_text(encoding="utf-8")
    for part in (
        "    rank_by:\n      - key: income\n        order: ascending\n",
        "    slots: grants\n",
        "    fills_slot: granted\n",
        "      - outcome: waiting_list\n        when: not within_grants\n",
    ):
        assert part in text
        text = text.replace(part, "")
    (package / "policy.yaml").write_text(text, encoding="utf-8")
    result = decide(package, backend, person("a", 20000.0, 30, 1), person("b", 10000.0, 40, 1))
    assert ranks(result) == {"a": 1, "b": 1} and result.outcomes() == {"a": "granted", "b": "granted"}
    assert all(d.placement and d.placement.pool_size == 2 for d in result.decisions.values())
