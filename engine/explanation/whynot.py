"""Why not: what stands between a decision and another outcome, and the smallest changes of facts
that would reach it.

For a target outcome, every row of the stage's outcome table that gives it is a way there: the
rows above it must not hold and the row itself must. Each condition that is in the way is walked
(`and`/`or`/`not`, rules, values, comparisons, lists) to propose fact changes: for a numeric
comparison, the value a fact needs and the gap; for a ranking, the score that takes the last place;
for a list that must be empty or a test every item must pass, what must be true of each item.
Facts marked `fixed` in the fact model (`json_schema_extra={"fixed": True}`), the cohort's context
and parameters are never proposed. Every proposal is verified by evaluating the changed facts
again; only proposals that really reach the outcome are returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from engine.core.errors import EngineError, EvaluationError
from engine.core.text import shown
from engine.evaluation.compiler import Missing, Scope
from engine.evaluation.reasons import causes, format_value, status_of
from engine.explanation.propose import Edit, Plan, Proposer, jointly
from engine.language.expr import render
from engine.language.factpaths import get_path, set_path

if TYPE_CHECKING:
    from engine.embedding.policy import Policy
    from engine.evaluation.result import Decision

__all__ = ["Change", "Suggestion", "Obstacle", "WhyNot", "why_not"]


@dataclass(frozen=True)
class Change:
    """One fact changed by a suggestion, as it was and as it would have to be."""

    path: str
    before: Any
    after: Any
    label: str | None = None  # the name of the list item the path is in, e.g. a component

    def describe(self) -> str:
        where = f"{self.path} ({self.label})" if self.label else self.path
        if isinstance(self.before, dict) and isinstance(self.after, dict):
            changed = [
                f"{k} {_show(self.before.get(k))} → {_show(v)}"
                for k, v in self.after.items()
                if self.before.get(k) != v
            ]
            dropped = [k for k, v in self.before.items() if v not in (None, [], {}) and k not in self.after]
            return f"{where}: " + "; ".join(changed + ([", ".join(dropped) + " no longer apply"] if dropped else []))
        return f"{where}: " + self._values()

    def _values(self) -> str:
        gap = ""
        if (
            isinstance(self.before, (int, float))
            and isinstance(self.after, (int, float))
            and not isinstance(self.before, bool)
        ):
            delta = round(self.after - self.before, 4)
            gap = f" ({'+' if delta >= 0 else ''}{format_value(delta)})"
        return f"{_show(self.before)} → {_show(self.after)}{gap}"


@dataclass(frozen=True)
class Suggestion:
    """Changes of facts that, applied together, give the target outcome (verified)."""

    changes: tuple[Change, ...]
    reaches: str


@dataclass(frozen=True)
class Obstacle:
    """A condition on the way to the target: a row that must not hold, or the row that must."""

    row: int
    outcome: str
    must_hold: bool
    status: str
    rules: tuple[tuple[str, str, str, str], ...]  # (rule, status, message, reference)


_STATUS_WORDS = {"undetermined": "is undetermined", "held": "holds"}  # otherwise: does not hold


@dataclass(frozen=True)
class WhyNot:
    id: str
    current: str
    target: str
    obstacles: tuple[Obstacle, ...]
    suggestions: tuple[Suggestion, ...]
    note: str | None
    needs: tuple[str, ...] = ()  # the gaps in numbers, e.g. "total score is 69.0; it needs ≥ 70.0: +1.0"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "outcome": self.current,
            "target": self.target,
            "obstacles": [
                {
                    "row": o.row,
                    "outcome": o.outcome,
                    "must_hold": o.must_hold,
                    "status": o.status,
                    "rules": [dict(zip(("rule", "status", "message", "reference"), r, strict=True)) for r in o.rules],
                }
                for o in self.obstacles
            ],
            "suggestions": [
                {
                    "reaches": s.reaches,
                    "changes": [
                        {"path": c.path, "before": _plain(c.before), "after": _plain(c.after)} for c in s.changes
                    ],
                }
                for s in self.suggestions
            ],
            "needs": list(self.needs),
            "note": self.note,
        }

    def to_text(self) -> str:
        lines = [f"{self.id}: {self.current}; why not `{self.target}`?"]
        for o in self.obstacles:
            verb = "would have to hold" if o.must_hold else "would have to not hold"
            lines.append(f"  row {o.row} (`{o.outcome}`) {verb}; it {_STATUS_WORDS.get(o.status, 'does not hold')}:")
            for rule, status, message, reference in o.rules:
                mark = {"held": "✓", "failed": "✗"}.get(status, "?")
                lines.append(f"    {mark} {rule}: {message}  [{reference}]")
        if self.needs:
            lines.append("  what the numbers would have to be:")
            lines += [f"    - {need}" for need in self.needs]
        if self.suggestions:
            lines.append("  smallest changes of facts that would give it (each checked by evaluating again):")
            for i, suggestion in enumerate(self.suggestions, 1):
                lines.append(f"    {i}. " + "; ".join(c.describe() for c in suggestion.changes))
        if self.note:
            lines.append(f"  {self.note}")
        return "\n".join(shown(line) for line in lines)  # a value's control characters shown escaped


def _plain(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def _show(value: Any) -> str:
    if isinstance(value, dict):
        inner = ", ".join(f"{k}: {_show(v)}" for k, v in value.items() if v not in (None, [], {}))
        return "{" + inner + "}"
    return format_value(value)


# --- verifying and reporting --------------------------------------------------------------------


def _apply(policy: Policy, decision: Decision, plan: Plan, rebuild: bool) -> dict[str, Any] | None:
    schema = policy.ir.schema
    cohort = decision.cohort.model_dump()
    subject = next(s for s in cohort[schema.subjects_field] if str(s[schema.id_field]) == decision.id)
    replaced: list[str] = []
    for edit in sorted(plan, key=lambda e: not e.structural):
        if any(edit.path.startswith(r + ".") for r in replaced):
            continue
        if rebuild and edit.structural and "." in edit.path:
            parent, leaf = edit.path.rsplit(".", 1)
            set_path(subject, parent, {leaf: edit.value})
            replaced.append(parent)
        else:
            set_path(subject, edit.path, edit.value)
    return cohort


def _verify(policy: Policy, decision: Decision, plan: Plan, target: str) -> Suggestion | None:
    for rebuild in (False, True):
        cohort = _apply(policy, decision, plan, rebuild)
        try:
            result = policy.evaluate(
                cohort, as_of=decision.as_of, stage=decision.stage, outside_period=decision.outside_period
            )
        except EngineError:
            continue
        changed = result.decisions.get(decision.id)
        if changed is not None and changed.outcome == target:
            schema = policy.ir.schema
            after = next(s for s in cohort[schema.subjects_field] if str(s[schema.id_field]) == decision.id)  # type: ignore[index]
            before = decision.subject.model_dump()
            return Suggestion(tuple(_labelled(before, c) for c in _diff(before, after, "")), target)
    return None


def _diff(before: Any, after: Any, path: str) -> list[Change]:
    if isinstance(before, dict) and isinstance(after, dict):
        if set(k for k, v in before.items() if v not in (None, [], {})) != set(
            k for k, v in after.items() if v not in (None, [], {})
        ):
            return [Change(path, before, after)]
        return [c for k in before for c in _diff(before[k], after.get(k), f"{path}.{k}" if path else k)]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [c for i, (b, a) in enumerate(zip(before, after, strict=True)) for c in _diff(b, a, f"{path}[{i}]")]
    return [] if before == after else [Change(path, before, after)]


def _labelled(subject: dict[str, Any], change: Change) -> Change:
    """Name the list item a change is in (e.g. `model.components[1]` is the vision encoder)."""
    match = list(re.finditer(r"\[\d+\]", change.path))
    if not match:
        return change
    item = get_path(subject, change.path[: match[-1].end()])
    name = item.get("name") if isinstance(item, dict) else None
    return Change(change.path, change.before, change.after, str(name)) if name else change


def _cutoffs(policy: Policy, decision: Decision) -> dict[str, tuple[str, tuple[Any, ...]] | None]:
    """The ranking key of the subject holding the last place, counting everyone but this one."""
    if decision.cohort is None or decision.stage is None:
        return {}
    stage = policy.ir.stages[decision.stage]
    result = policy.evaluate(
        decision.cohort, as_of=decision.as_of, stage=decision.stage, outside_period=decision.outside_period
    )
    others = sorted(
        (d.placement.rank, i, d.placement.keys)
        for i, d in result.decisions.items()
        if i != decision.id and d.placement and d.placement.rank is not None
    )
    slots = result.summary.slots if result.summary else None
    if slots is None or slots == 0 or len(others) < slots:
        return {stage.id: None}
    _, holder, keys = others[slots - 1]
    return {stage.id: (holder, keys)} if keys is not None else {stage.id: None}


def _obstacles(policy: Policy, decision: Decision, row_index: int, scope: Scope) -> list[Obstacle]:
    stage = policy.ir.stages[decision.stage or ""]
    found = []
    for row in stage.outcomes:
        if row.index > row_index:
            break
        value = decision.trace.get(f"row:{row.index}")
        must_hold = row.index == row_index
        status = status_of(value)
        if (status == "held") is must_hold and status != "undetermined":
            continue
        rules = []
        for name in _chain(policy, causes(policy.compiled, row.when, value, scope), decision, scope):
            rule, rule_value = policy.ir.rules[name], decision.trace.get(name)
            reason = next((r for r in decision.reasons if r.rule == name), None)
            rule_status = status_of(rule_value)
            message = (
                reason.message
                if reason
                else (
                    f"missing {', '.join(sorted(rule_value.paths))}" if isinstance(rule_value, Missing) else rule.title
                )
            )
            rules.append((name, rule_status, message, rule.reference))
        found.append(
            Obstacle(row=row.index, outcome=row.outcome, must_hold=must_hold, status=status, rules=tuple(rules))
        )
    return found


def _chain(policy: Policy, names: list[str], decision: Decision, scope: Scope) -> list[str]:
    """The rules in the way and, under each, the rules that made it so, outermost first."""
    found: list[str] = []
    for name in names:
        if name not in found:
            found.append(name)
            inner = causes(policy.compiled, policy.ir.rules[name].when, decision.trace.get(name), scope)
            found += [n for n in _chain(policy, inner, decision, scope) if n not in found]
    return found


def why_not(policy: Policy, decision: Decision, target: str) -> WhyNot:
    """Explain what stands between `decision` and `target`, with verified smallest fact changes."""
    if decision.stage is None or decision.subject is None:
        raise EvaluationError("why-not needs a decision made at a stage")
    stage = policy.ir.stages[decision.stage]
    if target not in stage.outcome_names:
        known = ", ".join(f"`{o}`" for o in stage.outcome_names)
        raise EvaluationError(f"`{target}` is not an outcome of stage `{stage.id}`; its outcomes are {known}")
    if decision.outcome == target:
        return WhyNot(
            id=decision.id,
            current=decision.outcome,
            target=target,
            obstacles=(),
            suggestions=(),
            note=f"the outcome already is `{target}`",
        )
    proposer = Proposer(policy, decision, _cutoffs(policy, decision) if decision.cohort is not None else {})
    rows = [r for r in stage.outcomes if r.outcome == target]
    obstacles = _obstacles(policy, decision, rows[0].index, proposer.scope)
    plans: list[Plan] = []
    for row in rows:
        needs = [proposer.repair(r.when, False) for r in stage.outcomes if r.index < row.index] + [
            proposer.repair(row.when, True)
        ]
        plans += jointly(needs)
    allocation_needs, allocation_plans = _allocation(policy, decision, target)
    plans += allocation_plans
    suggestions = _best(policy, decision, plans, target) if decision.cohort is not None else []
    note = None
    if not suggestions:
        values = [decision.trace.get(r[0]) for o in obstacles for r in o.rules if r[1] == "undetermined"]
        gaps = {p for v in values if isinstance(v, Missing) for p in v.paths}
        missing = sorted(p for p in gaps if policy.ir.kind_of(p.split(".")[0].split("[")[0]) == "fact")
        note = (
            f"no change of facts can be checked until these are given: {', '.join(missing)}"
            if missing
            else (
                f"no change of the subject's own facts reaches `{target}`: what stands in the way depends "
                "on facts it cannot change, on parameters, or on other subjects"
            )
        )
    return WhyNot(
        id=decision.id,
        current=decision.outcome,
        target=target,
        obstacles=tuple(obstacles),
        suggestions=tuple(suggestions),
        note=note,
        needs=tuple(dict.fromkeys(allocation_needs + proposer.needs)),
    )


def _allocation(policy: Policy, decision: Decision, target: str) -> tuple[list[str], list[Plan]]:
    """For a stage that allocates a capacity: why the subject got nothing, what request would have
    fitted, and (if the request is one of its own facts) that smaller request as a plan to verify."""
    given, stage = decision.allocation, policy.ir.stages[decision.stage or ""]
    if given is None or target != stage.fills_slot or given.allotment not in ("does_not_fit", "no_place"):
        return [], []
    needs = [f"allocation: {given.note()}"]
    plans: list[Plan] = []
    left = given.capacity_left
    if given.allotment == "does_not_fit" and left and stage.capacity is not None:
        unit = f" {given.unit}" if given.unit else ""
        needs.append(f"a request of at most {format_value(left)}{unit} would have fitted when its turn came")
        path = render(stage.capacity.takes)
        if policy.ir.kind_of(path.split(".")[0]) == "fact":
            plans.append((Edit(path, left),))
    elif given.allotment == "no_place":
        needs.append("every place was taken by subjects ranked above it (or reserved): it needs a higher rank")
    return needs, plans


def _best(policy: Policy, decision: Decision, plans: list[Plan], target: str) -> list[Suggestion]:
    found: dict[tuple[str, ...], Suggestion] = {}
    for plan in sorted(dict.fromkeys(plans), key=len):  # the first of equal plans first, on every run
        if not plan or _verify(policy, decision, plan, target) is None:
            continue
        for edit in plan:  # keep only the changes the outcome really needs
            smaller = tuple(e for e in plan if e != edit)
            if smaller and _verify(policy, decision, smaller, target) is not None:
                plan = smaller
        suggestion = _verify(policy, decision, plan, target)
        if suggestion is not None and suggestion.changes:
            found.setdefault(tuple(c.describe() for c in suggestion.changes), suggestion)
    ranked = sorted(found.values(), key=lambda s: (len(s.changes), sum(_size(c) for c in s.changes)))
    return ranked[:5]


def _size(change: Change) -> float:
    if isinstance(change.before, (int, float)) and isinstance(change.after, (int, float)):
        return abs(change.after - change.before) / (abs(change.before) or 1)
    return 1.0
