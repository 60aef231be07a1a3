"""The stage-1 logic written by hand, as the baselines of the benchmark (not part of the engine).

Both read the same validated fact models as the engine and must reach the same outcomes:
sovereignty (no pretrained weights from another model, the team controls the model, no licence
restriction, borrowed work credited), the total score, the minimum total, and the rank within
the places available (competition ranking on total, expert, benchmark).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.evaluation.durable._host import DurableRuleset, Firing

__all__ = ["plain_stage1", "DurableStage1", "ranks"]


def _borrowed(part: Any) -> Any:
    return part.upstream if part is not None else None


def _sovereign(model: Any, allowed: Sequence[str]) -> bool:
    for c in model.components:
        if c.weights is not None and c.weights.origin == "upstream" and c.kind not in allowed:
            return False
        for upstream in (_borrowed(c.weights), _borrowed(c.code)):
            if upstream is not None and (upstream.licence_restricted or not upstream.credited):
                return False
    return bool(model.team_controls_development and model.team_controls_operation)


def _keys(subject: Any) -> tuple[float, float, float]:
    s = subject.scores
    bench = s.benchmark.nia + s.benchmark.global_common + s.benchmark.global_individual
    return bench + s.expert + s.user, s.expert, bench


def ranks(keys: dict[str, tuple[float, ...]]) -> dict[str, int]:
    """Competition ranking (1, 2, 2, 4), highest keys first, ties broken by id for the order only."""
    ordered = sorted(keys, key=lambda i: (tuple(-k for k in keys[i]), i))
    found: dict[str, int] = {}
    for position, i in enumerate(ordered):
        previous = ordered[position - 1] if position else None
        found[i] = found[previous] if previous is not None and keys[previous] == keys[i] else position + 1
    return found


def plain_stage1(
    subjects: Sequence[Any], slots: int = 4, minimum: float = 70.0, allowed: Sequence[str] = ()
) -> dict[str, str]:
    """Outcome per subject id, in plain Python."""
    keys = {s.id: _keys(s) for s in subjects}
    rank = ranks(keys)
    outcomes = {}
    for s in subjects:
        if not _sovereign(s.model, allowed):
            outcomes[s.id] = "disqualified"
        elif keys[s.id][0] < minimum or rank[s.id] > slots:
            outcomes[s.id] = "eliminated"
        else:
            outcomes[s.id] = "advanced"
    return outcomes


def _counts(model: Any, allowed: Sequence[str]) -> dict[str, Any]:
    pretrained = restricted = uncredited = 0
    for c in model.components:
        pretrained += c.weights is not None and c.weights.origin == "upstream" and c.kind not in allowed
        for upstream in (_borrowed(c.weights), _borrowed(c.code)):
            restricted += upstream is not None and bool(upstream.licence_restricted)
            uncredited += upstream is not None and not upstream.credited
    dev, op = bool(model.team_controls_development), bool(model.team_controls_operation)
    return {"pretrained": pretrained, "restricted": restricted, "uncredited": uncredited, "dev": dev, "op": op}


class DurableStage1:
    """The same logic as a hand-written durable_rules ruleset: derived fields computed in Python
    (as the measured notes advise), one fact and one session per subject, outcome rules in Rete."""

    def __init__(self, slots: int = 4, minimum: float = 70.0) -> None:
        subject = {"kind": "subject"}
        sovereign = [subject, {"pretrained": 0}, {"restricted": 0}, {"uncredited": 0}, {"dev": True}, {"op": True}]
        rules = {
            "disq_pretrained": [subject, {"$gt": {"pretrained": 0}}],
            "disq_restricted": [subject, {"$gt": {"restricted": 0}}],
            "disq_uncredited": [subject, {"$gt": {"uncredited": 0}}],
            "disq_development": [subject, {"dev": False}],
            "disq_operation": [subject, {"op": False}],
            "elim_total": [*sovereign, {"$lt": {"total": minimum}}],
            "elim_rank": [*sovereign, {"$gt": {"rank": slots}}],
            "adv": [*sovereign, {"$gte": {"total": minimum}}, {"$lte": {"rank": slots}}],
        }
        self.ruleset = DurableRuleset(
            {name: {"all": [{"m": {"$and": conditions}}]} for name, conditions in rules.items()}
        )
        self.allowed: tuple[str, ...] = ()

    def decide(self, subjects: Sequence[Any]) -> dict[str, str]:
        keys = {s.id: _keys(s) for s in subjects}
        rank = ranks(keys)
        outcomes = {}
        for s in subjects:
            fired: list[str] = []

            def on_fire(firing: Firing, fired: list[str] = fired) -> None:
                fired.append(firing.rule)

            fact = {"kind": "subject", **_counts(s.model, self.allowed), "total": keys[s.id][0], "rank": rank[s.id]}
            self.ruleset.run([fact], on_fire=on_fire)
            outcomes[s.id] = (
                "disqualified"
                if any(f.startswith("disq") for f in fired)
                else "eliminated"
                if any(f.startswith("elim") for f in fired)
                else "advanced"
            )
        return outcomes

    def close(self) -> None:
        self.ruleset.close()
