"""Explain a stage over the whole cohort: who was in the pool, the ranking and its keys, the
cut-off of the last place, tie-breaks that decided, and why places stayed open; for a stage that
allocates a capacity or reserves places for tracks, what each subject was given and why, the
capacity used and left, and each track's places.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.core.i18n import Words
from engine.core.text import shown
from engine.evaluation.reasons import format_value
from engine.evaluation.result import Decision, Result, quantity_text, to_jsonable
from engine.language.expr import render

if TYPE_CHECKING:
    from engine.embedding.policy import Policy

__all__ = ["CohortExplanation", "explain_cohort"]


@dataclass(frozen=True)
class Row:
    id: str
    rank: int | None
    keys: tuple[Any, ...] | None
    outcome: str
    in_pool: bool | None
    why: str
    allocation: str | None = None  # how the allocation treated it, in words
    awarded: float | None = None
    rank_range: tuple[int, int] | None = None  # rank not known (missing facts): best and worst
    key_ranges: tuple[str, ...] | None = None  # keys not all known: what each may be


@dataclass(frozen=True)
class CohortExplanation:
    stage: str
    title: str
    reference: str
    as_of: str
    pool_rule: str
    keys: tuple[str, ...]
    rows: tuple[Row, ...]
    slots: int | None
    filled: int
    cut_off: str | None
    tie_breaks: tuple[str, ...]
    open_places: tuple[str, ...]
    allocation: tuple[str, ...] = ()  # capacity used and left, each track's places
    pending: int | None = None  # places that depend on undetermined decisions
    open: int | None = None  # places decided to stay open
    pending_places: tuple[str, ...] = ()  # which undetermined decisions keep places pending, and why
    notes: tuple[str, ...] = ()  # ranking facts without bounds, ranks left open
    lang: str = "en"  # the language of `to_text` (the notes are built in it)
    labels: dict[str, str] = field(default_factory=dict)  # outcome -> its label in `lang`

    def to_json(self) -> dict[str, Any]:
        data = {
            k: to_jsonable(getattr(self, k))
            for k in (
                "stage",
                "title",
                "reference",
                "as_of",
                "pool_rule",
                "keys",
                "slots",
                "filled",
                "pending",
                "open",
                "cut_off",
                "tie_breaks",
                "open_places",
                "allocation",
                "pending_places",
                "notes",
            )
        }
        data["rows"] = [to_jsonable(vars(row)) for row in self.rows]
        return data

    def to_text(self) -> str:
        w = Words(self.lang)
        lines = [
            w("stage `{stage}`: {title}, as of {date}", stage=self.stage, title=w.of(self.title), date=self.as_of)
            + f"  [{self.reference}]"
        ]
        in_pool = [r for r in self.rows if r.in_pool]
        lines.append(
            w("pool (`{rule}`): {n} of {m} in the pool", rule=self.pool_rule, n=len(in_pool), m=len(self.rows))
        )
        if self.keys:
            lines.append(w("ranked by: ") + w(", then ").join(str(w.of(k)) for k in self.keys))
        width = max([len(_place(r)) for r in self.rows] + [4])
        ids = max([len(shown(r.id)) for r in self.rows] + [20])
        for row in sorted(self.rows, key=_order):
            keys = (
                ", ".join(format_value(k) for k in row.keys)
                if row.keys
                else "; ".join(f"{w.of(n)}: {k}" for n, k in zip(self.keys, row.key_ranges, strict=False))
                if row.key_ranges
                else w("not ranked")
            )
            outcome = row.outcome if self.lang == "en" else self.labels.get(row.outcome, w(row.outcome))
            lines.append(f"  {_place(row):>{width}} {shown(row.id):<{ids}} {keys:<22} → {outcome}: {row.why}")
            if row.allocation:
                lines.append(f"{'':>{width + 3}}" + w("allocation: {note}", note=row.allocation))
        if self.slots is not None:
            lines.append(
                w("places: {slots}; filled: {filled}", slots=self.slots, filled=self.filled)
                + (w("; pending: {n}", n=self.pending) if self.pending else "")
                + (w("; left open: {n}", n=self.open) if self.open is not None else "")
                + (w("; cut-off (the last place): {keys}", keys=self.cut_off) if self.cut_off else "")
            )
        lines += [w("pending: ") + p for p in self.pending_places]
        lines += [w("note: ") + n for n in self.notes]
        lines += self.allocation
        lines += [w("tie-break: ") + t for t in self.tie_breaks]
        lines += [w("open place: ") + o for o in self.open_places]
        return "\n".join(shown(line) for line in lines)  # a value's control characters shown escaped


def _place(row: Row) -> str:
    if row.rank is not None:
        return f"{row.rank}."
    if row.rank_range is not None:
        return f"{row.rank_range[0]}-{row.rank_range[1]}."
    return "-"


def _order(row: Row) -> tuple[Any, ...]:
    if row.rank is not None:
        return (0, row.rank, row.rank, row.id)
    if row.rank_range is not None:
        return (0, *row.rank_range, row.id)
    return (1, 0, 0, row.id)


def _why(decision: Decision, w: Words) -> str:
    """The first cause of a decision in words (and how many more there are)."""
    causes = decision.causes
    if decision.missing:
        may = w(" or ").join(f"`{o}`" for o in decision.possible)
        return (w("may be {outcomes}; ", outcomes=may) if may else "") + w(
            "needs {facts}", facts=", ".join(decision.missing)
        )
    if not causes:
        held = [r for r in decision.reasons if r.role == "passed"]
        return str(w.of(held[-1].message)) if held else w("every condition met")
    more = w(" (and {n} more reason(s))", n=len(causes) - 1) if len(causes) > 1 else ""
    return f"{w.of(causes[0].message)}{more}"


def _tie_breaks(result: Result, names: tuple[str, ...], w: Words) -> list[str]:
    ranked = sorted(
        (
            (d.placement.rank, i, d.placement.keys)
            for i, d in result.decisions.items()
            if d.placement and d.placement.rank and d.placement.keys
        ),
        key=lambda t: t[0],
    )
    found = []
    for (_, a, ka), (_, b, kb) in zip(ranked, ranked[1:], strict=False):
        first = next((i for i, (x, y) in enumerate(zip(ka, kb, strict=True)) if x != y), None)
        if first is not None and first > 0:
            found.append(
                w(
                    "`{a}` ranks above `{b}` on {key} ({x} vs {y}); they are equal on {equal}",
                    a=a,
                    b=b,
                    key=w.of(names[first]),
                    x=format_value(ka[first]),
                    y=format_value(kb[first]),
                    equal=", ".join(str(w.of(n)) for n in names[:first]),
                )
            )
        elif first is None:
            found.append(w("`{a}` and `{b}` are equal on every key and share a rank", a=a, b=b))
    return found


def _open_places(policy: Policy, result: Result, w: Words) -> list[str]:
    summary = result.summary
    stage = policy.ir.stages[result.stage or ""]
    if summary is None or not summary.open:
        return []
    within = [
        d
        for d in result.decisions.values()
        if d.placement
        and d.placement.rank is not None
        and summary.slots
        and d.placement.rank <= summary.slots
        and d.outcome != stage.fills_slot
    ]
    found = [
        w(
            "place {rank} was ranked to `{id}`, which is `{outcome}` (rule {rules}); the place is not given to the "
            "next-ranked subject",
            rank=d.placement.rank,
            id=d.id,
            outcome=d.outcome,
            rules=", ".join(f"`{c.rule}`" for c in d.causes),
        )
        for d in within
        if d.placement
    ]
    ranked = sum(1 for d in result.decisions.values() if d.placement and d.placement.in_pool)
    if summary.slots is not None and ranked < summary.slots:
        found.append(w("only {n} subject(s) qualified for {slots} place(s)", n=ranked, slots=summary.slots))
    destination = f" → {summary.open_slots_to}: {w.of(summary.open_slots_title)}" if summary.open_slots_to else ""
    return [w("{n} place(s) left open", n=summary.open) + destination] + found


def explain_cohort(policy: Policy, result: Result, lang: str = "en") -> CohortExplanation:
    """The stage-level explanation of a cohort's result, its words in `lang`."""
    w = Words(lang)
    stage = policy.ir.stages[result.stage or ""]
    names = tuple(k.title or render(k.expr) for k in stage.rank_by)
    rows = tuple(
        Row(
            id=d.id,
            rank=d.placement.rank if d.placement else None,
            keys=d.placement.keys if d.placement else None,
            outcome=d.outcome,
            in_pool=d.placement.in_pool if d.placement else None,
            why=_why(d, w),
            allocation=d.allocation.note() if d.allocation and d.allocation.allotment != "not_in_pool" else None,
            awarded=d.awarded,
            rank_range=d.placement.rank_range if d.placement else None,
            key_ranges=d.placement.key_ranges if d.placement else None,
        )
        for d in result.decisions.values()
    )
    summary = result.summary
    cut_off = ", ".join(format_value(k) for k in summary.cut_off) if summary and summary.cut_off else None
    return CohortExplanation(
        stage=stage.id,
        title=stage.title,
        reference=stage.reference,
        as_of=result.as_of.isoformat(),
        pool_rule=render(stage.pool),
        keys=names,
        rows=rows,
        slots=summary.slots if summary else None,
        filled=summary.filled if summary else 0,
        cut_off=cut_off,
        tie_breaks=tuple(_tie_breaks(result, names, w)),
        open_places=tuple(_open_places(policy, result, w)),
        allocation=tuple(_allocation(result)),
        pending=summary.pending if summary else None,
        open=summary.open if summary else None,
        pending_places=tuple(_pending(policy, result, w)),
        notes=tuple(_notes(result, w)),
        lang=w.lang,
        labels={o: str(w.of(label)) for o, label in (getattr(policy.ir, "labels", None) or {}).items()},
    )


def _pending(policy: Policy, result: Result, w: Words) -> list[str]:
    """The undetermined decisions that keep places pending, with the facts that would settle each."""
    summary = result.summary
    if summary is None or not summary.pending:
        return []
    fills = policy.ir.stages[result.stage or ""].fills_slot
    waiting = [d for d in result.decisions.values() if d.outcome == "undetermined" and fills in d.possible]
    return [
        w(
            "{pending} place(s) wait on {n} undetermined decision(s); no place goes anywhere until they are decided",
            pending=summary.pending,
            n=len(waiting),
        )
    ] + [
        w("`{id}` may be `{outcome}`; settled by {facts}", id=d.id, outcome=fills, facts=", ".join(d.missing))
        for d in waiting
    ]


def _notes(result: Result, w: Words) -> list[str]:
    summary = result.summary
    if summary is None:
        return []
    return [
        w(
            "{fact} of `{id}` has no bounds in the fact model: its rank could be anywhere in the pool",
            fact=u.split(": ", 1)[1],
            id=u.split(": ", 1)[0],
        )
        for u in summary.unbounded
    ]


def _allocation(result: Result) -> list[str]:
    """Capacity awarded and left; each track's reserved places and what became of them."""
    s = result.summary
    if s is None:
        return []
    found = []
    if s.capacity is not None:
        used, left = quantity_text(s.capacity_used, s.unit), quantity_text(s.capacity_left, s.unit)
        found.append(f"capacity: {quantity_text(s.capacity, s.unit)}; awarded {used}; left {left}")
    for t in s.tracks:
        fate = "released to the general ranking" if t.unfilled_to == "release" else "kept open"
        found.append(
            f"track `{t.id}`{f' ({t.title})' if t.title else ''}: {t.reserved} place(s) reserved for its "
            f"{t.members} subject(s) in the pool; {t.filled} filled" + (f"; {t.unfilled} {fate}" if t.unfilled else "")
        )
    return found
