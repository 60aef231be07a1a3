"""The decision letter: the page an official sends to one subject about its decision; and what
people read about any decision (names, outcome labels, ranks and places in words, rank order).

It says the outcome, the rank and the places, the deciding reasons in plain language with their
legal references, what the decision brings (the grants of the deciding row, where the package
states them), and the objection period with its deadline: the stage names a dated parameter
(`objection_period: objection_period_days`) giving the days after the decision's date. In the
reader's language (`en`, `ko`); as plain text (`to_text`) or one self-contained HTML page (`to_html`).
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.core.errors import EvaluationError
from engine.core.i18n import Words, local
from engine.core.text import shown
from engine.evaluation.result import Decision, Result, StageSummary, quantity_text

if TYPE_CHECKING:
    from engine.embedding.policy import Policy

__all__ = [
    "Letter",
    "ReasonLine",
    "write_letter",
    "subject_name",
    "who",
    "outcome_label",
    "rank_words",
    "places_words",
    "in_rank_order",
]


# --- what people read about any decision: its subject's name, its outcome's label, its rank and
# the places in words, decisions in rank order (used by the letter, the report and the tables).
# Names come from the fact the manifest names (`facts: {name_field: name}`); labels from the
# manifest's `labels`; the engine's own words from its catalogue (`engine.core.i18n.Words`).


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


@dataclass(frozen=True)
class ReasonLine:
    status: str  # held | failed | undetermined
    title: str
    message: str
    reference: str
    depth: int


@dataclass(frozen=True)
class Objection:
    days: int
    deadline: dt.date
    reference: str
    parameter: str


@dataclass(frozen=True)
class Letter:
    """One subject's letter, in one language; every text already in that language."""

    lang: str
    programme: str
    stage: str
    stage_reference: str
    date: dt.date
    subject_id: str
    name: str
    outcome: str
    outcome_label: str
    rank: str
    places: str
    reasons: tuple[ReasonLine, ...]
    grants: tuple[tuple[str, str], ...]  # (what, legal reference)
    objection: Objection | None
    missing: tuple[str, ...] = ()

    def _words(self) -> Words:
        return Words(self.lang)

    def to_text(self) -> str:
        w = self._words()
        lines = [
            f"{self.programme}",
            f"{self.stage} — {w.date(self.date)}",
            "",
            w("To: {name}", name=self.name) + f" ({self.subject_id})",
            "",
            w("Decision: {outcome}", outcome=self.outcome_label),
            f"{self.rank}" + (f"; {self.places}" if self.places else ""),
        ]
        if self.missing:
            lines.append(w("Not decided yet: the decision needs {facts}", facts=", ".join(self.missing)))
        lines += ["", w("Why")]
        for r in self.reasons:
            mark = {"held": "✓", "failed": "✗"}.get(r.status, "?")
            lines.append(f"{'  ' * r.depth}{mark} {r.title}" + (f": {r.message}" if r.message else ""))
            lines.append(f"{'  ' * r.depth}  [{r.reference}]")
        if self.grants:
            lines += ["", w("What the decision brings")]
            lines += [f"+ {what}" + (f"  [{ref}]" if ref else "") for what, ref in self.grants]
        lines += ["", w("Objection")]
        lines.append(self._objection_text(w))
        lines += ["", w("Stage: {reference}", reference=self.stage_reference)]
        return "\n".join(shown(line) for line in lines)

    def _objection_text(self, w: Words) -> str:
        if self.objection is None:
            return w("The package states no objection period for this stage.")
        o = self.objection
        return (
            w(
                "You may object within {days} days of this decision, that is by {deadline}.",
                days=o.days,
                deadline=w.date(o.deadline),
            )
            + f"  [{o.reference}; {w('parameter')} `{o.parameter}`]"
        )

    def to_html(self) -> str:
        w, e = self._words(), _escape
        reasons = "".join(
            f"<li class='{e(r.status)}' style='margin-left:{1.2 * r.depth}em'>"
            f"{ {'held': '✓', 'failed': '✗'}.get(r.status, '?') } <b>{e(r.title)}</b>"
            + (f": {e(r.message)}" if r.message else "")
            + f"<br><span class='ref'>{e(r.reference)}</span></li>"
            for r in self.reasons
        )
        grants = "".join(
            f"<li>{e(what)}" + (f"<br><span class='ref'>{e(ref)}</span>" if ref else "") + "</li>"
            for what, ref in self.grants
        )
        needs = w("Not decided yet: the decision needs {facts}", facts=", ".join(self.missing))
        missing = f"<p class='undetermined'>{e(needs)}</p>" if self.missing else ""
        return "".join(
            [
                f"<!DOCTYPE html><html lang='{e(self.lang)}'><head><meta charset='utf-8'>"
                "<meta name='viewport' content='width=device-width, initial-scale=1'>"
                f"<title>{e(self.programme)}: {e(self.name)}</title><style>{_CSS}</style></head><body>",
                f"<p class='meta'>{e(self.programme)}<br>{e(self.stage)} · {e(w.date(self.date))}</p>",
                f"<p>{e(w('To: {name}', name=self.name))} <span class='meta'>({e(self.subject_id)})</span></p>",
                f"<h1>{e(w('Decision: {outcome}', outcome=self.outcome_label))}</h1>",
                f"<p>{e(self.rank)}" + (f"; {e(self.places)}" if self.places else "") + f"</p>{missing}",
                f"<h2>{e(w('Why'))}</h2><ul class='reasons'>{reasons}</ul>",
                f"<h2>{e(w('What the decision brings'))}</h2><ul>{grants}</ul>" if self.grants else "",
                f"<h2>{e(w('Objection'))}</h2><p class='objection'>{e(self._objection_text(w))}</p>",
                f"<p class='ref'>{e(w('Stage: {reference}', reference=self.stage_reference))}</p>",
                "</body></html>",
            ]
        )


_CSS = """
body { font-family: "Noto Sans KR", "Nanum Gothic", NanumGothic, "Malgun Gothic", Helvetica, Arial, sans-serif;
  max-width: 760px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.5; overflow-wrap: break-word; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
ul.reasons { list-style: none; padding-left: 0; } li { margin: 0.4em 0; }
.failed { color: #a40000; } .held { color: #176b17; } .undetermined { color: #8a6d00; }
.failed b, .held b { color: #222; } .meta { color: #666; } .ref { color: #555; font-size: 0.85em; }
.objection { font-weight: bold; }
@media print { body { margin: 0; max-width: none; font-size: 10.5pt; } }
"""


def _escape(text: object) -> str:
    return html.escape(shown(text))


def _objection(policy: Policy, decision: Decision, w: Words) -> Objection | None:
    stage = policy.ir.stages.get(decision.stage or "")
    name = stage.objection_period if stage else None
    if name is None:
        return None
    parameter = policy.ir.parameters[name]
    days, _ = parameter.value_on(decision.as_of)
    overridden = dict(policy.ir.overrides)
    days = overridden.get(name, days)
    if not isinstance(days, (int, float)) or isinstance(days, bool) or days < 0 or days != int(days):
        raise EvaluationError(
            f"parameter `{name}` must be a whole number of days for the objection period, not {days!r}"
        )
    return Objection(
        days=int(days),
        deadline=decision.as_of + dt.timedelta(days=int(days)),
        reference=str(w.of(parameter.reference)),
        parameter=name,
    )


def _said(message: str, title: str) -> str:
    """The message, unless it only repeats the title (`not met: <title>`)."""
    return "" if message.endswith(title) else message


def write_letter(policy: Policy, result: Result, subject_id: str, lang: str = "en") -> Letter:
    """The letter to `subject_id` about its decision in `result`, in `lang`."""
    decision = result.decisions[subject_id]
    w = Words(lang)
    ir = policy.ir
    stage = ir.stages.get(decision.stage or "")
    deciding = [r for r in decision.reasons if r.role == "decisive"]
    reasons = tuple(
        ReasonLine(
            status=r.status,
            title=str(w.of(r.title)),
            message=_said(str(w.of(r.message)), str(w.of(r.title))),
            reference=r.reference,
            depth=r.depth,
        )
        for r in deciding
    )
    grants = tuple(
        (
            str(w.of(g.title))
            + (f": {quantity_text(g.quantity, g.unit)}" if g.quantity is not None and not g.missing else ""),
            g.reference or "",
        )
        for g in decision.grants
    )
    return Letter(
        lang=w.lang,
        programme=str(w.of(ir.title)),
        stage=str(w.of(stage.title)) if stage else (decision.stage or ""),
        stage_reference=stage.reference if stage else "",
        date=decision.as_of,
        subject_id=decision.id,
        name=who(ir, decision),
        outcome=decision.outcome,
        outcome_label=outcome_label(ir, decision.outcome, w.lang),
        rank=rank_words(decision, w),
        places=places_words(result.summary, w),
        reasons=reasons,
        grants=grants,
        objection=_objection(policy, decision, w),
        missing=tuple(decision.missing),
    )
