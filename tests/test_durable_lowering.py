"""The durable backend's lowering: one ruleset per stage and phase, each condition lowered once.

What Rete is asked, counted: which rulesets exist, which durable rules fire for which subject. The
answers themselves are held to the compiled evaluator's by the golden cases and the Hypothesis
properties (tests/test_properties.py) on both backends.
"""

from __future__ import annotations

import collections
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import Policy, load_policy
from tests.conftest import EXAMPLES, RULES

pytestmark = pytest.mark.durable


@pytest.fixture(scope="module")
def durable() -> Iterator[Policy]:
    pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    policy = load_policy(RULES, backend="durable")
    yield policy
    policy.close()


@pytest.fixture
def fired(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The durable rules fired, by ruleset name, while the test runs (firings in order)."""
    from engine.evaluation.durable import _host

    seen: dict[str, list[str]] = collections.defaultdict(list)
    original = _host.DurableRuleset._on_action

    def spy(self: Any, rule: str, c: Any) -> None:
        seen[self.name].append(rule)
        original(self, rule, c)

    monkeypatch.setattr(_host.DurableRuleset, "_on_action", spy)
    return seen


def _cohort() -> dict[str, Any]:
    policy = load_policy(RULES)
    return json.loads(policy.load_cohort(EXAMPLES / "stage1.yaml").model_dump_json())


def test_each_phase_of_a_stage_has_its_own_ruleset_with_only_what_that_phase_settles(durable: Policy) -> None:
    """Stage 1 builds two rulesets (before and after the ranking), holding the rules its pool, keys and
    rows read, its pool, and its outcome rows; no rule of another stage is in them. The rules it does
    not need are lowered apart, before any subject (so a rule durable cannot take fails the
    evaluation), and run only when a decision's trace is read for them."""
    durable.evaluate(EXAMPLES / "stage1.yaml")
    backend: Any = durable._backend
    stage = durable.compiled.stages["stage1"]
    built = {(key[1], key[2]): compiled for key, compiled in backend._rulesets.items() if key[1] is not None}
    assert set(built) == {("stage1", False), ("stage1", True)}
    rest = {key[3]: compiled for key, compiled in backend._rulesets.items() if key[1] is None}
    assert {name for names in rest for name in names} == set(stage.others)
    before, after = built[("stage1", False)], built[("stage1", True)]
    rules = set(durable.ir.rules)
    assert {item.name for item in before.items} == ({*stage.phase1} & rules) | {"pool"}
    assert {item.name for item in after.items} == ({*stage.phase2} & rules) | {f"row:{r.index}" for r, _ in stage.rows}
    assert [len(before.levels), len(after.levels)] == [1, 1]
    assert "qualifies_for_additional_call" not in {name for name, _, _ in before.levels[0].meaning.values()}


def test_a_subject_with_every_fact_fires_at_most_once_per_condition_and_never_behind_a_gate(
    durable: Policy, fired: dict[str, list[str]]
) -> None:
    """Every field present: each condition fires on its lowered side at most once (the other side
    holds when it does not fire), and no gated rule fires. A team of the examples that meets every
    requirement, given a panel that confirms the core requirements, fires nothing at all: each rule
    and the pool hold, it ranks first, the last row (`true`) was decided when the ruleset was built.
    The team that fails sovereignty in four ways fires each failing rule, and each rule that reads
    it, once."""
    cohort = _cohort()
    good = next(c for c in cohort["consortia"] if c["id"] == "lg-ai-research")
    good["panel"] = {"members": 10, "findings": [], "core_requirements_met": True}
    result = durable.evaluate({**cohort, "consortia": [good]})
    assert result.decisions["lg-ai-research"].outcome == "advanced"
    assert [rule for rules in fired.values() for rule in rules] == []
    bad = next(c for c in cohort["consortia"] if c["id"] == "naver-cloud")
    result = durable.evaluate({**cohort, "consortia": [bad]})
    assert result.decisions["naver-cloud"].outcome == "disqualified"
    firings = [rule for rules in fired.values() for rule in rules]
    assert all("g" not in rule.rsplit("__", 1)[1] for rule in firings), firings
    counts = collections.Counter(rule.rsplit("__", 1)[0] for rule in firings)
    assert counts["sovereign"] == counts["meets_core_requirements"] == counts["row__2"] == 1, counts
    assert all(n == 1 for n in counts.values()), counts


def test_a_subject_missing_a_fact_is_decided_through_the_gated_side_as_the_compiled_evaluator_decides(
    durable: Policy, fired: dict[str, list[str]]
) -> None:
    """No panel on record: the committee's conclusion is missing, so `not_rejected_by_committee`
    (which holds: there is no panel) and what reads it are decided by their other side, behind the
    gate; decisions and traces equal the compiled evaluator's."""
    cohort = _cohort()
    python = load_policy(RULES).evaluate(cohort)
    result = durable.evaluate(cohort)
    assert result.outcomes() == python.outcomes()
    for key, decision in result.decisions.items():
        assert dict(decision.trace) == dict(python.decisions[key].trace)
    firings = [rule for rules in fired.values() for rule in rules]
    assert "not_rejected_by_committee__tg0" in firings
    # only the gates of conditions that read the missing field open: the committee's rule, the rule it is
    # inlined into, and the additional call's rule that reads the panel (settled when the trace is read)
    gated = {rule.split("__")[0] for rule in firings if re.search(r"__[tf]g\d+$", rule)}
    assert gated == {"not_rejected_by_committee", "meets_core_requirements", "qualifies_for_additional_call"}


def test_a_condition_too_wide_with_what_it_reads_inlined_is_decided_by_a_next_ruleset(tmp_path: Path) -> None:
    """`both` holds when `p` (9 alternatives) and `q` (9) do: 81 alternatives, inlined, more than a
    condition may have. It is lowered in a second ruleset that reads `p` and `q` as decided by the
    first; both backends agree on every rule, with every fact given or some missing."""
    from tests.test_logic_table import BASE_RULES, SUBJECT, _package

    pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    rules = {
        "p": " or ".join(f"age == {18 + i}" for i in range(9)),
        "q": " or ".join(f"income == {1000 * i}" for i in range(1, 10)),
        "both": "p and q",
        "either": "not both or t",
    }
    package = _package(tmp_path / "pkg", dict(BASE_RULES) | rules, {})
    people = [
        dict(SUBJECT, id="in", age=20, income=3000.0),
        dict(SUBJECT, id="out", age=40, income=3000.0),
        dict(SUBJECT, id="gone", age=20),
    ]
    cohort = {"context": {"stage": "award", "date": "2026-03-01"}, "applicants": people}
    durable, python = load_policy(package, backend="durable"), load_policy(package)
    got, expected = durable.evaluate(cohort), python.evaluate(cohort)
    for key in ("in", "out", "gone"):
        assert {n: got.decisions[key].trace[n] for n in rules} == {n: expected.decisions[key].trace[n] for n in rules}
    assert [got.decisions[k].trace["both"] for k in ("in", "out")] == [True, False]
    backend: Any = durable._backend
    assert max(len(compiled.levels) for compiled in backend._rulesets.values()) == 2
    durable.close()


def test_an_outcome_row_with_or_is_lowered_as_alternatives_on_the_side_that_holds(tmp_path: Path) -> None:
    """Outcome rows are lowered on the side that holds: an `or` there is alternatives (any one fires
    the row), an `and` inside it one conjunction; the durable backend reaches the reference's outcome
    for a subject that meets one alternative, the other, both or neither."""
    from tests.test_logic_table import BASE_RULES, SUBJECT, _package

    package = _package(tmp_path / "pkg", dict(BASE_RULES), {})
    policy_file = package / "policy.yaml"
    text = policy_file.read_text(encoding="utf-8")
    row = "      - outcome: refused\n        when: not eligible\n"
    assert row in text
    wider = '      - outcome: refused\n        when: "age > 60 or (age < 20 and income > 0)"\n'
    policy_file.write_text(text.replace(row, wider, 1), encoding="utf-8")
    people = [
        dict(SUBJECT, id="old", age=70, income=1000.0),
        dict(SUBJECT, id="young", age=19, income=1000.0),
        dict(SUBJECT, id="middle", age=40, income=1000.0),
        dict(SUBJECT, id="young-unknown", age=19),
    ]
    cohort = {"context": {"stage": "award", "date": "2026-03-01"}, "applicants": people}
    durable, python = load_policy(package, backend="durable"), load_policy(package, backend="python")
    got, expected = durable.evaluate(cohort), python.evaluate(cohort)
    assert {k: d.outcome for k, d in got.decisions.items()} == {k: d.outcome for k, d in expected.decisions.items()}
    assert [expected.decisions[k].outcome == "refused" for k in ("old", "young", "middle")] == [True, True, False]
    assert expected.decisions["young-unknown"].outcome == "undetermined"
    durable.close()


def test_conditions_are_packed_into_as_few_part_facts_as_the_stack_allows(durable: Policy) -> None:
    """A part fact takes conditions until one more would pass `PART_SIZE` stack places: each stage-1
    ruleset (30 and 8 fields tested) needs one part fact per subject, and a part's places count one
    per ungated condition, one per gate and the conditions behind the fullest gate."""
    from engine.evaluation.durable.backend import PART_SIZE, _load

    durable.evaluate(EXAMPLES / "stage1.yaml")
    backend: Any = durable._backend
    levels = [level for key, compiled in backend._rulesets.items() if key[1] == "stage1" for level in compiled.levels]
    assert len(levels) == 2 and [len(level.parts) for level in levels] == [1, 1]
    assert _load((0, {}), None) == 1
    assert _load((3, {}), None) == 4
    assert _load((3, {}), "g1") == 3 + 1 + 1
    assert _load((3, {"g1": 2, "g2": 5}), "g1") == 3 + 2 + 5
    assert _load((3, {"g1": 2, "g2": 5}), "g2") == 3 + 2 + 6
    assert _load((PART_SIZE - 1, {}), None) == PART_SIZE


def test_two_values_for_one_field_are_contradictory_wherever_their_operators_come_from() -> None:
    """A conjunction asking one field for two values never holds and is dropped, whether its `==`
    came from the parsed rule or from the lowering's own negation (equal strings, not the same
    object); one value asked twice, or a value and its negation's other value, is no contradiction."""
    from engine.evaluation.durable.backend import _Cmp, _contradictory

    parsed = "".join(["=", "="])  # an operator as a parser builds it: equal to "==", another object
    assert parsed == "==" and id(parsed) != id("==")  # the point of the test
    assert _contradictory(frozenset({_Cmp("kind", parsed, "a"), _Cmp("kind", "==", "b")}))
    assert _contradictory(frozenset({_Cmp("kind", parsed, "a"), _Cmp("kind", "!=", "a")}))
    assert not _contradictory(frozenset({_Cmp("kind", parsed, "a"), _Cmp("kind", "!=", "b")}))
    # whichever of the two a set yields first (its order follows hashes): every pair of values
    for low in range(6):
        for high in range(low + 1, 6):
            assert _contradictory(frozenset({_Cmp("size", "==", low), _Cmp("size", parsed, high)})), (low, high)
            assert _contradictory(frozenset({_Cmp("size", "==", high), _Cmp("size", parsed, low)})), (high, low)
    assert not _contradictory(frozenset({_Cmp("kind", parsed, "a"), _Cmp("size", "==", "b")}))


OVERLAPPING = {
    # alternatives on one fact that meet at the boundary value
    "gt_or_ge": "age > 30 or age >= 30",
    "lt_or_le": "age < 30 or age <= 30",
    "ge_or_eq": "age >= 30 or age == 30",
    "eq_or_ge": "age == 30 or age >= 30",
    "ne_or_eq": "age != 30 or age == 30",
    "le_or_ge": "age <= 30 or age >= 30",
    "gt_or_eq_or_lt": "age > 30 or age == 30 or age < 30",
    "not_le_or_ge": "not (age <= 30) or age >= 30",
}


CONJOINED = {
    # rules lowered on the side where they fail: their negation's alternatives overlap on one field
    "le_and_lt": "age <= 30 and age < 30",  # fails at 30 through `age >= 30` with `age <= 30`
    "ge_and_gt": "age >= 30 and age > 30",
    "in_range": "age > 30 and age <= 40",  # fails above 40 through `age > 40` with `age > 30`
    "ne_and_le": "age != 30 and age <= 40",
    "lt_or_gt_and_le": "(age < 30 or age > 30) and age <= 40",
}


def test_alternatives_on_one_field_meet_at_the_boundary_on_both_backends(tmp_path: Path) -> None:
    """A condition whose alternatives (or whose negation's alternatives) compare one field with
    constants holds at each boundary and on either side exactly as the reference evaluator says (no
    satisfiable alternative is dropped as contradictory), and is undetermined without the field."""
    from tests.test_logic_table import BASE_RULES, SUBJECT, _package

    pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    rules = OVERLAPPING | CONJOINED
    package = _package(tmp_path / "pkg", dict(BASE_RULES) | rules, {})
    ages = (29, 30, 31, 39, 40, 41, 50)
    people = [dict(SUBJECT, id=f"age-{age}", age=age) for age in ages] + [dict(SUBJECT, id="unknown", age=None)]
    cohort = {"context": {"stage": "award", "date": "2026-03-01"}, "applicants": people}
    durable, python = load_policy(package, backend="durable"), load_policy(package, backend="python")
    got, expected = durable.evaluate(cohort), python.evaluate(cohort)
    for person in people:
        key = person["id"]
        assert {n: got.decisions[key].trace[n] for n in rules} == {
            n: expected.decisions[key].trace[n] for n in rules
        }, key
    assert [expected.decisions[f"age-{age}"].trace["in_range"] for age in ages] == [
        False,
        False,
        True,
        True,
        True,
        False,
        False,
    ]
    assert [expected.decisions[f"age-{age}"].trace["le_and_lt"] for age in ages] == [True] + [False] * 6
    at_30 = expected.decisions["age-30"].trace
    assert all(at_30[n] is True for n in OVERLAPPING)
    assert expected.decisions["age-29"].trace["gt_or_ge"] is False
    durable.close()


def test_absorption_keeps_only_the_smallest_alternatives() -> None:
    """An alternative that a smaller one implies is dropped (`a or (a and b)` is `a`), whatever the
    number of alternatives; repeats are dropped; unrelated alternatives all stay."""
    from engine.evaluation.durable.backend import _Cmp, _minimal

    a, b, c = _Cmp("a", "==", True), _Cmp("b", "==", True), _Cmp("c", "==", True)
    assert _minimal([frozenset({a}), frozenset({a, b})]) == [frozenset({a})]
    assert _minimal([frozenset({a, b}), frozenset({a})]) == [frozenset({a})]
    assert _minimal([frozenset({a}), frozenset({a})]) == [frozenset({a})]
    assert _minimal([frozenset({a}), frozenset({b}), frozenset({a, b, c})]) == [frozenset({a}), frozenset({b})]
    assert _minimal([frozenset({a}), frozenset({b})]) == [frozenset({a}), frozenset({b})]


def test_a_rule_too_wide_for_durable_that_the_stage_does_not_need_fails_the_evaluation_not_the_trace(
    tmp_path: Path,
) -> None:
    """A rule whose negation has 2^7 alternatives cannot be lowered; the stage does not read it, so its
    value is settled only if a decision's trace is read for it. The durable backend says so when the
    cohort is evaluated with its trace (a clear error, no result), not later on reading the trace;
    without the trace the evaluation runs, and the python backend decides the rule."""
    from engine import BackendError
    from tests.test_logic_table import BASE_RULES, SUBJECT, _package

    pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    wide = " or ".join(f"(age == {20 + i} and income == {1000 * (i + 1)})" for i in range(7))
    package = _package(tmp_path / "pkg", dict(BASE_RULES) | {"wide": wide}, {})
    cohort = {
        "context": {"stage": "award", "date": "2026-03-01"},
        "applicants": [dict(SUBJECT, id="match", age=22, income=3000.0)],
    }
    durable, python = load_policy(package, backend="durable"), load_policy(package, backend="python")
    assert python.evaluate(cohort).decisions["match"].trace["wide"] is True
    with pytest.raises(BackendError, match="more than 64 alternatives"):
        durable.evaluate(cohort)
    lean = durable.evaluate(cohort, trace=False)
    assert lean.decisions["match"].outcome == python.evaluate(cohort).decisions["match"].outcome
    durable.close()


def test_each_alternative_excludes_the_earlier_ones_by_their_own_literals() -> None:
    """Rewritten so that at most one alternative holds, `a or b` becomes `a`, `b and not a`: each
    later alternative is joined with the negation of what an earlier one has beyond its own
    literals; where those are all fields never missing (`x is None` tests), no witness can be hidden."""
    from engine.evaluation.durable.backend import _Cmp, _Lowering

    policy = load_policy(RULES)
    compiled = policy.compiled
    lowering = _Lowering(compiled, compiled.parameters_on(compiled.ir.stages["stage1"].dates[0]))  # type: ignore[index]
    a, b = _Cmp("a", "==", True), _Cmp("b", "==", True)
    lowering.always.add("a")
    for safe in (False, True):
        found, hides = lowering._first_witness([frozenset({a}), frozenset({b})], safe=safe)
        assert found == [frozenset({a}), frozenset({b, _Cmp("a", "!=", True)})] and not hides, safe
    found, hides = lowering._first_witness([frozenset({a, b}), frozenset({a})], safe=False)
    assert found == [frozenset({a, b}), frozenset({a, _Cmp("b", "!=", True)})] and hides
