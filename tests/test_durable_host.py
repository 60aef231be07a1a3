"""Pins the behaviour of engine.evaluation.durable._host against durable_rules 2.0.28.

See shared/notes/durable-rules.md for the defects these tests guard against.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("durable")

from engine.evaluation.durable._host import (  # noqa: E402
    MAX_CONDITIONS,
    PRIME_RULE,
    DurableEngineError,
    DurableRuleset,
    DurableUnavailable,
    Firing,
    available,
)

THRESHOLD: dict[str, Any] = {"all": [{"m": {"$and": [{"kind": "subject"}, {"$gt": {"x": 3}}]}}]}

# Rule B joins a subject with the conclusion about it: {"subj": {"first": "pid"}} is the dict
# form of `m.subj == c.first.pid` (lang.py: avalue.define() -> {alias: field}).
CHAIN: dict[str, dict[str, Any]] = {
    "A": THRESHOLD,
    "B": {
        "all": [
            {"first": {"kind": "subject"}},
            {"second": {"$and": [{"kind": "conclusion"}, {"subj": {"first": "pid"}}]}},
        ]
    },
}


def conclude(firing: Firing) -> list[dict[str, Any]]:
    if firing.rule == "A":
        return [{"kind": "conclusion", "rule": "A", "value": True, "subj": firing.facts["m"]["pid"]}]
    return []


@pytest.fixture
def chain() -> Iterator[DurableRuleset]:
    rs = DurableRuleset(CHAIN)
    yield rs
    rs.close()


def test_available() -> None:
    assert available() == (True, "")


def test_single_fact_and_fires_and_missing_field_never_matches() -> None:
    with DurableRuleset(
        {
            "in_range": {"all": [{"m": {"$and": [{"$gte": {"x": 3}}, {"$lt": {"x": 10}}]}}]},
            "not_five": {"all": [{"m": {"$neq": {"x": 5}}}]},
        }
    ) as rs:
        assert rs.run([{"x": 4}]) == [Firing("in_range", {"m": {"x": 4}}), Firing("not_five", {"m": {"x": 4}})]
        assert rs.run([{"x": 12}]) == [Firing("not_five", {"m": {"x": 12}})]
        assert rs.run([{"y": 4}]) == []  # missing field: no match, $neq included; no exception
        assert rs.run([]) == []


@pytest.mark.parametrize(
    "cond, hits",
    [
        ({"$lt": {"x": 5}}, [4]),
        ({"$lte": {"x": 5}}, [4, 5]),
        ({"$gt": {"x": 5}}, [6]),
        ({"$gte": {"x": 5}}, [5, 6]),
        ({"x": 5}, [5]),
        ({"$eq": {"x": 5}}, [5]),
        ({"$neq": {"x": 5}}, [4, 6]),
        ({"$or": [{"x": 4}, {"x": 6}]}, [4, 6]),
    ],
)
def test_comparison_operators(cond: dict[str, Any], hits: list[int]) -> None:
    with DurableRuleset({"r": {"all": [{"m": cond}]}}) as rs:
        assert [x for x in (4, 5, 6, None) if rs.run([{} if x is None else {"x": x}])] == hits


def test_chaining_join_on_shared_field(chain: DurableRuleset) -> None:
    firings = chain.run(
        [{"kind": "subject", "pid": "p1", "x": 5}, {"kind": "subject", "pid": "p2", "x": 1}], on_fire=conclude
    )
    assert [f.rule for f in firings] == ["A", "B"]
    assert firings[1].facts == {
        "first": {"kind": "subject", "pid": "p1", "x": 5},
        "second": {"kind": "conclusion", "rule": "A", "value": True, "subj": "p1"},
    }
    assert chain.run([{"kind": "subject", "pid": "p1", "x": 5}]) == [  # no on_fire: no chaining
        Firing("A", {"m": {"kind": "subject", "pid": "p1", "x": 5}})
    ]


def test_join_on_id_field_does_not_work() -> None:
    """Surprise: `id` is durable's fact identity; a join on it never matches."""
    rules = {"B": {"all": [{"first": {"kind": "s"}}, {"second": {"$and": [{"kind": "c"}, {"subj": {"first": "id"}}]}}]}}
    with DurableRuleset(rules) as rs:
        assert rs.run([{"kind": "s", "id": "p1"}, {"kind": "c", "subj": "p1"}]) == []


def test_unmatched_and_duplicate_facts_do_not_fail(chain: DurableRuleset) -> None:
    subject = {"kind": "subject", "pid": "p1", "x": 5}
    firings = chain.run([{"kind": "nothing"}, subject, dict(subject), {"other": 1}])
    assert firings == [Firing("A", {"m": subject})]
    assert "sid" not in subject  # caller's facts are not mutated


def test_firings_without_the_matched_facts(chain: DurableRuleset) -> None:
    """`matched=False`: the same firings, in the same order, naming their rules only."""
    facts = [{"kind": "subject", "pid": f"p{i}", "x": i} for i in range(6)]
    full = chain.run(facts)
    seen: list[Firing] = []
    bare = chain.run(facts, on_fire=seen.append, matched=False)
    assert [f.rule for f in full] == [f.rule for f in bare] == ["A", "A"]
    assert all(f.facts for f in full) and all(f.facts == {} for f in bare) and seen == bare


def test_sessions_are_deleted(chain: DurableRuleset) -> None:
    fact = {"kind": "subject", "pid": "p1", "x": 5}
    for _ in range(2000):  # > 1,024 live-session limit
        assert len(chain.run([fact], on_fire=conclude)) == 2


def test_create_close_cycles() -> None:
    names = set()
    for _ in range(1000):
        rs = DurableRuleset(CHAIN)
        names.add(rs.name)
        assert len(rs.run([{"kind": "subject", "pid": "p", "x": 9}])) == 1
        rs.close()
        rs.close()  # idempotent
    assert len(names) == 1000
    with pytest.raises(DurableEngineError, match="closed"):
        rs.run([])


def test_exception_in_on_fire_reaches_caller(chain: DurableRuleset) -> None:
    def boom(firing: Firing) -> list[dict[str, Any]]:
        raise ValueError("boom in callback")

    with pytest.raises(DurableEngineError, match="boom in callback") as info:
        chain.run([{"kind": "subject", "pid": "p1", "x": 5}], on_fire=boom)
    assert isinstance(info.value.__cause__, ValueError)
    assert len(chain.run([{"kind": "subject", "pid": "p1", "x": 5}], on_fire=conclude)) == 2


def test_threads_match_sequential(chain: DurableRuleset) -> None:
    facts = [{"kind": "subject", "pid": f"p{i}", "x": i} for i in range(8)]
    expected = chain.run(facts, on_fire=conclude)
    assert len(expected) == 8  # 4 x A + 4 x B
    results: list[list[Firing]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(100):
                results.append(chain.run(facts, on_fire=conclude))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 800 and all(r == expected for r in results)


def test_no_background_threads() -> None:
    before = threading.active_count()
    with DurableRuleset(CHAIN) as rs:
        rs.run([{"kind": "subject", "pid": "p1", "x": 5}], on_fire=conclude)
        assert threading.active_count() == before


def test_condition_limit() -> None:
    """511 conditions work (510 of the caller's and the host's priming rule); 512 (single-fact rules
    or 256 two-alias rules) hang the C engine."""
    assert MAX_CONDITIONS == 510
    many = {f"r{i}": {"all": [{"m": {"x": i}}]} for i in range(MAX_CONDITIONS)}
    with DurableRuleset(many) as rs:
        assert rs.run([{"x": 509}]) == [Firing("r509", {"m": {"x": 509}})]
    many["one_more"] = {"all": [{"m": {"x": -1}}]}
    with pytest.raises(DurableEngineError, match="at most 510 conditions"):
        DurableRuleset(many)
    joins = {f"j{i}": {"all": [{"a": {"x": i}}, {"b": {"y": {"a": "x"}}}]} for i in range(256)}
    with pytest.raises(DurableEngineError, match="256 rules with 512 conditions"):
        DurableRuleset(joins)


def test_sessions_that_fire_nothing_do_not_crash_the_process() -> None:
    """A session in which no action starts used to free uninitialised pointers when deleted
    (`free(): invalid pointer`, or a segfault, within a few runs): thousands of such runs (facts
    that match part of a rule, no rule, or nothing at all), mixed with runs that fire, now pass.
    Run in a child process, so that a crash fails this test instead of ending the test session."""
    script = """
import sys
from engine.evaluation.durable._host import DurableRuleset
rules = {"r": {"all": [{"m": {"$and": [{"kind": "s"}, {"x": True}]}}]},
         "q": {"all": [{"m": {"$and": [{"kind": "s"}, {"y": True}]}}]}}
quiet = [[{"kind": "s", "y": False}], [{"kind": "t"}], [{"kind": "s", "x": False, "y": False}], []]
for round in range(3):
    with DurableRuleset(rules) as rs:
        for i in range(4000):
            assert rs.run(quiet[i % 4]) == [], i
            if i % 97 == 0:
                assert [f.rule for f in rs.run([{"kind": "s", "x": True}])] == ["r"]
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr[-2000:]


def test_a_nested_run_of_the_same_ruleset_is_refused(chain: DurableRuleset) -> None:
    """Sessions of one ruleset never overlap (priming relies on it): running it from its own action fails."""

    def nested(firing: Firing) -> None:
        chain.run([{"kind": "subject", "pid": "p2", "x": 7}])

    with pytest.raises(DurableEngineError, match="already running"):
        chain.run([{"kind": "subject", "pid": "p1", "x": 5}], on_fire=nested)
    assert len(chain.run([{"kind": "subject", "pid": "p1", "x": 5}], on_fire=conclude)) == 2


def test_the_host_rule_name_is_reserved() -> None:
    with pytest.raises(DurableEngineError, match="host's own"):
        DurableRuleset({PRIME_RULE: THRESHOLD})


def test_one_fact_matches_at_most_64_conditions() -> None:
    rules = {f"r{i}": {"all": [{"m": {"$gt": {"x": i}}}]} for i in range(65)}
    with DurableRuleset(rules) as rs:
        assert len(rs.run([{"x": 64}])) == 64  # matches r0..r63
        with pytest.raises(DurableEngineError, match="at most 64 rule conditions"):
            rs.run([{"x": 65}])
        assert len(rs.run([{"x": 64}])) == 64  # still usable afterwards


@pytest.mark.parametrize(
    ("ungated", "gates", "behind_one", "fits"), [(32, 17, 10, True), (50, 4, 10, True), (55, 5, 10, False)]
)
def test_the_stack_places_one_fact_may_take(ungated: int, gates: int, behind_one: int, fits: bool) -> None:
    """The durable backend sizes its part facts by this (backend._Lowering._part): a fact matching
    every condition takes a place per condition not behind a gate, per gate it sets, and per condition
    behind one gate at a time; 64 places at most (error 303)."""
    rules: dict[str, dict[str, Any]] = {f"u{i}": {"all": [{"s": {f"u{i}": True}}]} for i in range(ungated)}
    for k in range(gates):
        for j in range(behind_one):
            rules[f"g{k}_{j}"] = {"all": [{"s": {"$and": [{f"g{k}": True}, {f"v{k}_{j}": True}]}}]}
    fact = {
        f: True
        for rule in rules.values()
        for test in rule["all"][0]["s"].get("$and", [rule["all"][0]["s"]])
        for f in test
    }
    with DurableRuleset(rules) as rs:
        if fits:
            assert len(rs.run([fact], matched=False)) == len(rules)
        else:
            with pytest.raises(DurableEngineError, match="303"):
                rs.run([fact])


def test_bad_definitions_give_readable_errors() -> None:
    with pytest.raises(DurableEngineError, match=r"202 \(cannot parse string"):
        DurableRuleset({"r": {"all": [{"m": {"$foo": {"x": 1}}}]}})
    with pytest.raises(DurableEngineError, match="no 'run'"):
        with_run: dict[str, Any] = {"all": [{"m": {"x": 1}}], "run": print}
        DurableRuleset({"r": with_run})
    with DurableRuleset({"r": {"all": [{"m": {"x": 1}}]}}) as rs:
        with pytest.raises(DurableEngineError, match="too many properties"):
            rs.run([{"x": 1, **{f"p{i}": i for i in range(300)}}])
        with pytest.raises(DurableEngineError, match="'sid' is reserved"):
            rs.run([{"x": 1, "sid": "s"}])
        assert rs.run([{"x": 1}]) == [Firing("r", {"m": {"x": 1}})]


def test_unavailable_is_reported_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.evaluation.durable import _host as host

    monkeypatch.setattr(host, "_import_result", None)
    monkeypatch.setitem(sys.modules, "durable_rules_engine", None)  # import now raises
    ok, reason = available()
    assert not ok and reason.startswith("durable_rules cannot be imported on Python 3.")
    with pytest.raises(DurableUnavailable, match="cannot be imported"):
        DurableRuleset(CHAIN)
