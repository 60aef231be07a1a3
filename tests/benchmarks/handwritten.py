"""The stage-1 logic written by hand, as the baselines of the benchmarks (not part of the engine).

Both read the same validated fact models as the engine and must reach the same outcomes on
complete facts (a hand-written baseline has no three-valued logic: it reads a missing fact as
false or absent, where the engine leaves a rule undetermined). The determination is the stage's
four rules and what they stand on:

- `eligible`: the lead is registered at home and of an admitted kind (the university
  requirement is off: parameter `university_participation_required`);
- `meets_core_requirements`: sovereign (no pretrained weights taken from another model, no
  weights descending from a foreign model, borrowed weights and code without licence restriction
  and credited, the team controls the model) and the committee did not conclude against it;
- `meets_minimum_total`: the total score (rounded as the engine's arithmetic is) reaches 70;
- `ranked_within_slots`: the competition rank on (total, expert, benchmark) within 4 places.

Outcome rows, first that holds: ineligible, disqualified, eliminated, advanced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.evaluation.durable._host import DurableRuleset, Firing

__all__ = ["plain_stage1", "DurableStage1", "ranks", "stage1_keys", "PARAMETERS"]

PLACES = 10  # the engine rounds arithmetic results to 10 decimal places
PARAMETERS: dict[str, Any] = {
    "slots": 4,
    "minimum": 70.0,
    "home": "KR",
    "lead_kinds": ("company", "university", "research_institute", "public_institution"),
    "allowed": (),  # pretrained_weights_allowed_for
}


def stage1_keys(subject: Any) -> tuple[float, float, float]:
    """The ranking keys (total, expert, benchmark), rounded as the engine rounds arithmetic."""
    s = subject.scores
    bench = round(s.benchmark.nia + s.benchmark.global_common + s.benchmark.global_individual, PLACES)
    return round(bench + s.expert + s.user, PLACES), s.expert, bench


def ranks(keys: dict[str, tuple[float, ...]]) -> dict[str, int]:
    """Competition ranking (1, 2, 2, 4), highest keys first, ties broken by id for the order only."""
    ordered = sorted(keys, key=lambda i: (tuple(-k for k in keys[i]), i))
    found: dict[str, int] = {}
    for position, i in enumerate(ordered):
        previous = ordered[position - 1] if position else None
        found[i] = found[previous] if previous is not None and keys[previous] == keys[i] else position + 1
    return found


def _eligible(subject: Any, home: str, kinds: Sequence[str]) -> bool:
    return bool(subject.lead.country == home and subject.lead.kind in kinds)


def _borrowed_ok(upstream: Any) -> bool:
    return upstream is None or (not upstream.licence_restricted and bool(upstream.credited))


def _core_requirements(subject: Any, home: str, allowed: Sequence[str]) -> bool:
    model = subject.model
    for c in model.components:
        weights = c.weights
        if weights is not None:
            if weights.origin == "upstream" and c.kind not in allowed:
                return False
            upstream = weights.upstream
            if upstream is not None:
                if not _borrowed_ok(upstream) or any(a.country != home for a in upstream.lineage):
                    return False
        if c.code is not None and not _borrowed_ok(c.code.upstream):
            return False
    if not (model.team_controls_development and model.team_controls_operation):
        return False
    panel = subject.panel
    return panel is None or panel.core_requirements_met is None or bool(panel.core_requirements_met)


def plain_stage1(subjects: Sequence[Any], **parameters: Any) -> dict[str, str]:
    """Outcome per subject id, in plain Python."""
    p = {**PARAMETERS, **parameters}
    keys = {s.id: stage1_keys(s) for s in subjects}
    rank = ranks(keys)
    slots, minimum, home, kinds, allowed = p["slots"], p["minimum"], p["home"], p["lead_kinds"], p["allowed"]
    outcomes = {}
    for s in subjects:
        if not _eligible(s, home, kinds):
            outcomes[s.id] = "ineligible"
        elif not _core_requirements(s, home, allowed):
            outcomes[s.id] = "disqualified"
        elif keys[s.id][0] < minimum or rank[s.id] > slots:
            outcomes[s.id] = "eliminated"
        else:
            outcomes[s.id] = "advanced"
    return outcomes


def counts(subject: Any, home: str = "KR", allowed: Sequence[str] = ()) -> dict[str, Any]:
    """Per-subject counts of the component tests, for engines that cannot quantify over a list
    (durable_rules, Cedar): the per-item work done in Python, the verdicts left to the engine."""
    model = subject.model
    pretrained = foreign = restricted = uncredited = 0
    for c in model.components:
        weights = c.weights
        pretrained += weights is not None and weights.origin == "upstream" and c.kind not in allowed
        borrowed = [weights.upstream if weights is not None else None, c.code.upstream if c.code is not None else None]
        if borrowed[0] is not None:
            foreign += any(a.country != home for a in borrowed[0].lineage)
        restricted += any(u is not None and bool(u.licence_restricted) for u in borrowed)
        uncredited += any(u is not None and not u.credited for u in borrowed)
    panel = subject.panel
    return {
        "lead_country": subject.lead.country,
        "lead_kind": subject.lead.kind,
        "pretrained": pretrained,
        "foreign": foreign,
        "restricted": restricted,
        "uncredited": uncredited,
        "dev": bool(model.team_controls_development),
        "op": bool(model.team_controls_operation),
        "committee_rejected": panel is not None and panel.core_requirements_met is False,
    }


class DurableStage1:
    """The same logic as a hand-written durable_rules ruleset: per-component counts and the
    ranking computed in Python (as the measured notes advise: durable cannot quantify over a
    list), one fact and one session per subject, every rule and outcome test in Rete."""

    def __init__(self, **parameters: Any) -> None:
        p = {**PARAMETERS, **parameters}
        self.home, self.allowed = p["home"], p["allowed"]
        subject = {"kind": "subject"}
        admitted = {"$or": [{"lead_kind": k} for k in p["lead_kinds"]]}
        eligible = [{"lead_country": p["home"]}, admitted]
        core = [{"pretrained": 0}, {"foreign": 0}, {"restricted": 0}, {"uncredited": 0}]
        core += [{"dev": True}, {"op": True}, {"committee_rejected": False}]
        rules = {
            "inel_country": [subject, {"$neq": {"lead_country": p["home"]}}],
            "inel_kind": [subject, *({"$neq": {"lead_kind": k}} for k in p["lead_kinds"])],
            "disq_pretrained": [subject, {"$gt": {"pretrained": 0}}],
            "disq_foreign": [subject, {"$gt": {"foreign": 0}}],
            "disq_restricted": [subject, {"$gt": {"restricted": 0}}],
            "disq_uncredited": [subject, {"$gt": {"uncredited": 0}}],
            "disq_development": [subject, {"dev": False}],
            "disq_operation": [subject, {"op": False}],
            "disq_committee": [subject, {"committee_rejected": True}],
            "elim_total": [subject, *eligible, *core, {"$lt": {"total": p["minimum"]}}],
            "elim_rank": [subject, *eligible, *core, {"$gt": {"rank": p["slots"]}}],
            "adv": [subject, *eligible, *core, {"$gte": {"total": p["minimum"]}}, {"$lte": {"rank": p["slots"]}}],
        }
        self.ruleset = DurableRuleset(
            {name: {"all": [{"m": {"$and": conditions}}]} for name, conditions in rules.items()}
        )

    def decide(self, subjects: Sequence[Any]) -> dict[str, str]:
        keys = {s.id: stage1_keys(s) for s in subjects}
        rank = ranks(keys)
        outcomes = {}
        for s in subjects:
            fired: list[str] = []

            def on_fire(firing: Firing, fired: list[str] = fired) -> None:
                fired.append(firing.rule)

            fact = {"kind": "subject", **counts(s, self.home, self.allowed), "total": keys[s.id][0], "rank": rank[s.id]}
            self.ruleset.run([fact], on_fire=on_fire)
            outcomes[s.id] = next(
                (
                    outcome
                    for prefix, outcome in (("inel", "ineligible"), ("disq", "disqualified"), ("elim", "eliminated"))
                    if any(f.startswith(prefix) for f in fired)
                ),
                "advanced",
            )
        return outcomes

    def close(self) -> None:
        self.ruleset.close()
