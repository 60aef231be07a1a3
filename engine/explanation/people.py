"""What people read about a decision, in their language: a subject's name, an outcome's label,
a rank and the places of a stage in words, and decisions in rank order.

Names come from the fact the package's manifest names (`facts: {name_field: name}`); ids stay
what machines read (JSON). Labels come from the manifest's `labels` (`advanced: {en: advanced,
ko: 통과}`); the engine's own words from its message catalogue (`engine.core.i18n.Words`).
"""

from __future__ import annotations

from typing import Any

from engine.core.i18n import Words, local
from engine.evaluation.result import Decision, Result, StageSummary

__all__ = ["subject_name", "who", "outcome_label", "rank_words", "places_words", "in_rank_order"]


def subject_name(ir: Any, decision: Decision) -> str | None:
    """The subject's display name, if the package names the fact and the subject gives it."""
    field = getattr(ir.schema, "name_field", None) if ir is not None else None
    name = getattr(decision.subject, field, None) if field else None
    return str(name) if name not in (None, "") else None


def who(ir: Any, decision: Decision) -> str:
    """`LG AI Research` where a name is given, else the id."""
    return subject_name(ir, decision) or decision.id


def outcome_label(ir: Any, outcome: str, lang: str = "en") -> str:
    """An outcome as people read it: the package's label in `lang`, else the outcome's name."""
    label = (getattr(ir, "labels", None) or {}).get(outcome)
    if label is None:
        return Words(lang)(outcome) if outcome == "undetermined" else outcome
    return str(local(label, lang))


def rank_words(decision: Decision, w: Words) -> str:
    """`ranked 2 of 5 for 4 place(s)`, `ranked 2 to 4 of 5 (not known yet)`, or `not ranked`."""
    p = decision.placement
    if p is None or not p.in_pool:
        return w("not ranked")
    places = w(" for {slots} place(s)", slots=p.slots) if p.slots is not None else ""
    if p.rank is not None:
        return w("ranked {rank} of {size}", rank=p.rank, size=p.pool_size) + places
    if p.rank_range is not None:
        low, high = p.rank_range
        return w("ranked {low} to {high} of {size} (not known yet)", low=low, high=high, size=p.pool_size) + places
    return w("not ranked")


def places_words(summary: StageSummary | None, w: Words) -> str:
    """The places of a stage as the evaluation counted them (never the title's own numbers)."""
    if summary is None or summary.slots is None:
        return ""
    if w.lang == "en":
        return summary.places_text()  # the engine's own sentence, as the table and the stage view say it
    text = w("{slots} place(s): {filled} filled", slots=summary.slots, filled=summary.filled)
    if summary.pending:
        text += w("; {pending} pending", pending=summary.pending)
    if summary.open:
        text += w("; {open} left open", open=summary.open)
    return text


def _order(decision: Decision) -> tuple[Any, ...]:
    p = decision.placement
    if p is not None and p.rank is not None:
        return (0, p.rank, p.rank, decision.id)
    if p is not None and p.rank_range is not None:
        return (0, *p.rank_range, decision.id)
    return (1, 0, 0, decision.id)


def in_rank_order(result: Result) -> list[Decision]:
    """Decisions ranked first (by rank, a rank range by its best), then those not ranked, by id."""
    return sorted(result.decisions.values(), key=_order)
