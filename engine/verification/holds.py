"""Evaluate invariants against evaluation results: the views they read, and what each finds.

`InvariantRunner(policy)` compiles every invariant of the package once. `subject_and_cohort(result)`
checks the invariants that read one result; `monotonic(...)` and `permutation(...)` compare two
results. Each returns `Breach`es: which subject, what it got, and why the statement is not true
(false, or undetermined with the facts that were missing: an invariant must be shown to hold).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from engine.evaluation.compiled import settle
from engine.evaluation.compiler import ExpressionCompiler, Fn, Missing, Scope
from engine.evaluation.evaluate import MAX_RANK_SPREAD, PythonBackend, scope_of
from engine.evaluation.result import Decision, Result
from engine.language.expr import render
from engine.language.invariants import VIEW_NAMES
from engine.language.ir import Invariant

if TYPE_CHECKING:
    from engine.embedding.policy import Policy

__all__ = ["Breach", "InvariantRunner", "decided_record"]


@dataclass(frozen=True)
class Breach:
    """One way an invariant failed on one result (or pair of results)."""

    invariant: Invariant
    subject: str | None
    message: str


def _plain(value: Any) -> Any:
    return None if isinstance(value, Missing) else value


def decided_record(decision: Decision, policy: Policy) -> SimpleNamespace:
    """The `Decided` view of a decision (what cohort and monotonic invariants read)."""
    ir = policy.ir
    trace, place = decision.trace, decision.placement
    rules = SimpleNamespace(**{n: _plain(trace.get(n)) for n in ir.rules})
    values = SimpleNamespace(**{n: _plain(trace.get(n)) for n in ir.values})
    rank = place.rank if place else None
    return SimpleNamespace(
        id=decision.id,
        outcome=decision.outcome,
        row=decision.row,
        rank=rank,
        in_pool=place.in_pool if place else None,
        pool_size=place.pool_size if place else None,
        slots=place.slots if place else None,
        facts=decision.subject,
        rules=rules,
        values=values,
        missing=list(decision.missing),
        **_allocation_record(decision),
    )


def _allocation_record(decision: Decision) -> dict[str, Any]:
    """What a stage that allocates tells cohort invariants about one decision (None elsewhere)."""
    a = decision.allocation
    known = a is not None and a.allotment != "undetermined"
    return {
        "awarded": decision.awarded,
        "placed": (a.allotment in ("awarded", "partial")) if known and a else None,
        "allotment": a.allotment if known and a else None,
        "track": a.track if a else None,
        "reserved": a.reserved if known and a else None,
    }


def _summary_record(result: Result, subjects: int) -> SimpleNamespace:
    s = result.summary
    slots, filled, open_, tie = (s.slots, s.filled, s.open, s.tie_at_cut_off) if s else (None, 0, None, False)
    tracks = [SimpleNamespace(**t.to_json()) for t in s.tracks] if s else []
    return SimpleNamespace(
        stage=result.stage,
        subjects=subjects,
        slots=slots,
        filled=filled,
        open=open_,
        tie_at_cut_off=tie,
        capacity=s.capacity if s else None,
        capacity_used=s.capacity_used if s else None,
        capacity_left=s.capacity_left if s else None,
        tracks=tracks,
    )


def _verdict(value: Any) -> str:
    if isinstance(value, Missing):
        return "undetermined (missing " + ", ".join(sorted(value.paths)) + ")"
    return "false"


class InvariantRunner:
    """Every invariant of a policy, compiled once, with the views each kind reads."""

    def __init__(self, policy: Policy, invariants: tuple[Invariant, ...] | None = None) -> None:
        self.policy = policy
        self.invariants = policy.ir.invariants if invariants is None else invariants
        self.fns: dict[str, tuple[Fn | None, Fn | None]] = {}
        for invariant in self.invariants:
            compiler = ExpressionCompiler(policy.ir)
            compiler.variables.update(VIEW_NAMES[invariant.kind])
            compiled = tuple(compiler.compile(n) if n is not None else None for n in (invariant.when, invariant.holds))
            self.fns[invariant.id] = compiled  # type: ignore[assignment]

    def of_kind(self, stage: str | None, *kinds: str) -> list[Invariant]:
        return [i for i in self.invariants if i.kind in kinds and (stage is None or stage in i.stages)]

    def _judge(self, invariant: Invariant, scope: Scope, subject: str | None, what: str) -> Breach | None:
        when, holds = self.fns[invariant.id]
        if when is not None and settle(when, scope) is not True:
            return None
        value = settle(holds, scope) if holds is not None else True
        if value is True:
            return None
        return Breach(invariant, subject, f"{what}: `{render(invariant.holds)}` is {_verdict(value)}")  # type: ignore[arg-type]

    def _states(self, decision: Decision, params: Any) -> list[tuple[Scope, str]]:
        """The states a decision was made in: one, or one per rank it may have (its rank not known).

        A decision whose rank is an interval holds at every rank of it (that is how it was decided),
        so an invariant must hold at each: what reads the stage is settled again at each rank.
        """
        place = decision.placement
        span = place.rank_range if place is not None and place.rank is None else None
        if span is None or span[1] - span[0] >= MAX_RANK_SPREAD:
            return [(scope_of(self.policy.compiled, decision, params), "")]
        states = []
        for rank in range(span[0], span[1] + 1):
            scope = scope_of(self.policy.compiled, decision, params)
            assert scope.stage is not None
            scope.stage = scope.stage.model_copy(update={"rank": rank})
            PythonBackend().run(self.policy.compiled, scope, self.policy.compiled.phase2, None, rows=False)
            states.append((scope, f" (at rank {rank}, one it may have)"))
        return states

    def _scope(self, result: Result, decision: Decision | None, params: Any) -> Scope:
        context = (
            decision.context if decision is not None else next((d.context for d in result.decisions.values()), None)
        )
        return Scope(decision.subject if decision is not None else None, context, params)

    def subject_and_cohort(self, result: Result, subjects: int) -> list[Breach]:
        """Breaches of the `subject` and `cohort` invariants that apply to the result's stage."""
        params = self.policy.compiled.parameters_on(result.as_of)
        found: list[Breach] = []
        for invariant in self.of_kind(result.stage, "subject"):
            for d in result.decisions.values():
                for scope, at in self._states(d, params):
                    scope.locals = {"outcome": d.outcome}
                    breach = self._judge(invariant, scope, d.id, f"`{d.id}` is `{d.outcome}`{at}")
                    if breach:
                        found.append(breach)
                        break
        cohort = self.of_kind(result.stage, "cohort")
        if cohort:
            scope = self._scope(result, None, params)
            scope.locals = {
                "decisions": [decided_record(d, self.policy) for d in result.decisions.values()],
                "summary": _summary_record(result, subjects),
            }
            outcomes = ", ".join(f"`{d.id}` {d.outcome}" for d in result.decisions.values())
            for invariant in cohort:
                breach = self._judge(invariant, scope, None, f"decisions: {outcomes}")
                found += [breach] if breach else []
        return found

    def monotonic(
        self, invariant: Invariant, before: Result, after: Result, subject: str, change: str
    ) -> Breach | None:
        """A breach if `holds` fails for `before`/`after`, the decisions of `subject` around `change`."""
        one, two = before.decisions[subject], after.decisions[subject]
        scope = self._scope(after, two, self.policy.compiled.parameters_on(after.as_of))
        scope.subject = None
        scope.locals = {"before": decided_record(one, self.policy), "after": decided_record(two, self.policy)}
        return self._judge(
            invariant, scope, subject, f"{change}: `{subject}` goes from `{one.outcome}` to `{two.outcome}`"
        )

    @staticmethod
    def permutation(invariant: Invariant, original: Result, reordered: Result) -> Breach | None:
        """A breach if any subject's outcome, outcome row, rank or missing facts change with the order."""
        for key, one in original.decisions.items():
            two = reordered.decisions.get(key)
            view = (one.outcome, one.row, one.placement.rank if one.placement else None, one.missing)
            if two is None or view != (
                two.outcome,
                two.row,
                two.placement.rank if two.placement else None,
                two.missing,
            ):
                got = two.outcome if two else "absent"
                return Breach(
                    invariant,
                    key,
                    (
                        f"`{key}` is `{one.outcome}` in the original order and `{got}` (rank "
                        f"{two.placement.rank if two and two.placement else '-'}) when the subjects are reordered"
                    ),
                )
        return None
