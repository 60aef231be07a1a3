"""A cohort's decisions (`Result.decisions`, a `Decisions` mapping): each outcome settled by the evaluation,
each `Decision` object built the first time it is read and then kept, the same whenever it is read.

That the decisions built on read are the ones a subject decided at once gets (reasons, placement, trace,
grants, allocation) is held by tests/test_scale.py, whose chunked evaluations decide each subject at once.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from engine import EvaluationError, Policy, load_policy
from engine.evaluation import evaluate
from engine.evaluation.result import Decisions
from tests.conftest import EXAMPLES
from tests.test_generated import _CALL_AND_COHORT, _manifest
from tests.test_grants import batch, granting


@pytest.fixture()
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the decisions built from now on, in the order they are built."""
    made: list[str] = []
    original = evaluate._decision

    def counted(*args: Any, **kwargs: Any) -> Any:
        decision = original(*args, **kwargs)
        made.append(decision.id)
        return decision

    monkeypatch.setattr(evaluate, "_decision", counted)
    return made


def test_a_decision_is_built_when_first_read_and_then_kept(policy: Policy, built: list[str]) -> None:
    result = policy.evaluate(EXAMPLES / "stage1.yaml")
    assert isinstance(result.decisions, Decisions)
    assert built == []  # outcomes and the stage summary are settled; no decision object yet
    assert result.outcomes()["naver-cloud"] == "disqualified" and result.summary is not None
    assert built == []
    first = result.decisions["naver-cloud"]
    assert result.decisions["naver-cloud"] is first and built == ["naver-cloud"]
    assert list(result.decisions) == list(result.outcomes()) and len(result.decisions) == 5
    assert "naver-cloud" in result.decisions and "nobody" not in result.decisions
    assert result.decisions.get("nobody") is None
    with pytest.raises(KeyError):
        result.decisions["nobody"]
    assert [d.id for d in result.decisions.values()] == list(result.outcomes())
    assert sorted(built) == sorted(result.outcomes())  # each built once


def test_a_decision_read_late_is_the_one_read_at_once(policy: Policy) -> None:
    """Reading decisions in another order, or after other evaluations, changes nothing they say."""
    now = policy.evaluate(EXAMPLES / "stage1.yaml")
    early = {id: d.to_json() for id, d in now.decisions.items()}
    later = policy.evaluate(EXAMPLES / "stage1.yaml")
    policy.evaluate(EXAMPLES / "wildcard.yaml")
    late = {id: later.decisions[id].to_json() for id in reversed(list(later.decisions))}
    assert late == early
    assert {id: dict(d.trace) for id, d in later.decisions.items()} == {
        id: dict(d.trace) for id, d in now.decisions.items()
    }


def test_decisions_pickle_as_a_plain_dict_of_the_same_decisions(policy: Policy) -> None:
    """What a worker sends back: decisions not attached to a policy (a `Policy` holds closures)."""
    cohort = policy.load_cohort(EXAMPLES / "stage1.yaml")
    compiled, backend = policy.compiled, policy._backend
    date = cohort.context.date
    result = evaluate.evaluate_cohort(compiled, backend, cohort.consortia, cohort.context, date, "stage1")
    assert isinstance(result.decisions, Decisions)
    again = pickle.loads(pickle.dumps(result))
    assert type(again.decisions) is dict and list(again.decisions) == list(result.decisions)
    assert again.decisions == result.decisions and again.to_json() == result.to_json()
    assert all(dict(again.decisions[id].trace) == dict(d.trace) for id, d in result.decisions.items())


def test_a_grant_that_fails_fails_the_evaluation_not_a_later_read(tmp_path: Path) -> None:
    """A grant's quantity is computed when the cohort is decided: an error in it leaves no result behind."""
    policy = load_policy(granting(tmp_path / "g", quantity="grant_amount / (age - 30)"))
    with pytest.raises(EvaluationError, match="division by zero"):
        policy.evaluate(batch())


def test_the_stage_state_of_an_evaluation_has_every_field_rules_may_read() -> None:
    """`stage.*` is typed from `ir.StageInfo` and read at evaluation from a `StageState`: the same fields,
    copied and compared as the pydantic model is."""
    from engine.evaluation.compiler import StageState
    from engine.language.ir import StageInfo

    assert StageState.__slots__ == tuple(StageInfo.model_fields)
    state = StageState(id="s", in_pool=True, rank=2, pool_size=5, slots=4)
    assert state == StageInfo(id="s", in_pool=True, rank=2, pool_size=5, slots=4)
    moved = state.model_copy(update={"rank": 3})
    assert moved.rank == 3 and state.rank == 2 and moved != state
    assert pickle.loads(pickle.dumps(moved)) == moved and "rank=3" in repr(moved)


def test_a_traces_get_reads_as_its_items_do(policy: Policy) -> None:
    """`trace.get(name)` gives what `trace[name]` gives: a value the stage settled, one of another stage's settled
    on that read, and the default for a name the trace does not hold."""
    settled = policy.evaluate(EXAMPLES / "stage1.yaml").decisions["naver-cloud"].trace
    read = policy.evaluate(EXAMPLES / "stage1.yaml").decisions["naver-cloud"].trace
    assert settled.get("sovereign") is False and settled.get("sovereign") == read["sovereign"]
    other = "in_programme_for_stage2"  # another stage's rule: settled when the trace is first read for it
    assert settled.get(other) == read[other] and other in dict(settled)
    assert settled.get("no_such_name") is None and settled.get("no_such_name", 7) == 7
    assert settled.get("row:1") == read["row:1"]


def test_a_scope_rebuilt_from_a_trace_holds_every_traced_name_before_it_is_read(policy: Policy) -> None:
    """`scope_of` (why-not, invariants) answers `name in scope.known` from the trace, read or not yet read."""
    decision = policy.evaluate(EXAMPLES / "stage1.yaml").decisions["naver-cloud"]
    known = evaluate.scope_of(policy.compiled, decision).known
    assert "sovereign" in known and "total_score" in known and "no_such_name" not in known
    assert known["sovereign"] is False and "sovereign" in known and known.get("no_such_name", 7) == 7


_ROWS_FACTS = (
    """\
description: two optional facts, for the outcomes an undetermined decision may still reach
records:
  Subject:
    fields:
      id: {type: text, fixed: true}
      a: {type: number, optional: true}
      label: {type: text, optional: true}
"""
    + _CALL_AND_COHORT
)

_ROWS_POLICY = (
    _manifest("rows", "Rows after the first that holds")
    + """\
rules:
  - {id: large, title: a number over one, reference: test, when: a > 1}
  - {id: labelled, title: labelled yes, reference: test, when: label == 'yes'}
stages:
  - id: only
    title: the only stage
    reference: test
    pool: true
    outcomes:
      - {outcome: large, when: large}
      - {outcome: labelled, when: labelled}
      - {outcome: unlabelled, when: not labelled}
      - {outcome: other, when: true}
"""
)


def test_an_undetermined_decision_may_reach_the_rows_up_to_the_first_that_holds_and_no_further(
    tmp_path: Path,
) -> None:
    """`a` missing leaves the first row open; the second holds, so the decision is one of those two: the rows
    after the one that holds are never reached, whatever they would say."""
    (tmp_path / "facts.yaml").write_text(_ROWS_FACTS, encoding="utf-8")
    (tmp_path / "policy.yaml").write_text(_ROWS_POLICY, encoding="utf-8")
    cohort = {
        "context": {"stage": "only", "date": "2026-07-01"},
        "subjects": [{"id": "open", "label": "yes"}, {"id": "open_then_no", "label": "no"}, {"id": "given", "a": 2}],
    }
    for backend in ("generated", "python"):
        decisions = load_policy(tmp_path, backend=backend).evaluate(cohort).decisions
        assert (decisions["open"].outcome, decisions["open"].possible) == ("undetermined", ("large", "labelled"))
        assert decisions["open_then_no"].possible == ("large", "unlabelled")
        assert (decisions["given"].outcome, decisions["given"].possible) == ("large", ()), backend
