"""A self-contained HTML report of a cohort's decisions: the outcomes table, the stage's ranking
and open places, and, per subject, its reasons, explanation tree and graph picture.

One file, no network access needed: CSS inline, graphs as inline SVG.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from engine.core.text import shown, shown_lines
from engine.evaluation.reasons import format_value
from engine.evaluation.result import Decision, Result, quantity_text
from engine.explanation.cohort_explain import explain_cohort

if TYPE_CHECKING:
    from engine.embedding.policy import Policy

__all__ = ["render_report"]

_CSS = """
body { font-family: Helvetica, Arial, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
.outcome { font-weight: bold; } .failed { color: #a40000; } .held { color: #176b17; } .undetermined { color: #8a6d00; }
pre { background: #f6f6f6; padding: 1em; white-space: pre-wrap; font-size: 12px; }
.graph-box { overflow-x: auto; border: 1px solid #ddd; margin: 1em 0; }
.meta { color: #666; font-size: 0.9em; } .ref { color: #555; font-size: 0.85em; }
"""
_MARK = {"held": "✓", "failed": "✗", "undetermined": "?"}


def _e(text: object) -> str:
    """One value as HTML: control characters shown escaped (`html.escape` leaves them raw), then `<>&"'`."""
    return html.escape(shown(text))


def _pre(text: str) -> str:
    """A multi-line text (already escaped line by line) for a `<pre>`: its newlines stay."""
    return html.escape(shown_lines(text))


def _rank(decision: Decision) -> str:
    return decision.placement.rank_text().replace("-", "–") if decision.placement else "–"


def _outcomes(result: Result) -> str:
    rows = []
    unit = result.summary.unit if result.summary else None
    awarded = result.summary is not None and result.summary.capacity is not None
    for d in result.decisions.values():
        causes = (
            "<br>".join(
                f'<span class="{_e(c.status)}">{_MARK.get(c.status, "")} {_e(c.rule)}</span>: {_e(c.message)}'
                for c in d.causes
            )
            or "<span class='meta'>every condition met</span>"
        )
        if d.allocation is not None and d.allocation.allotment != "not_in_pool":
            causes += f"<br><span class='meta'>allocation: {_e(d.allocation.note())}</span>"
        given = f"<td>{_e(quantity_text(d.awarded, unit)) if d.awarded is not None else '–'}</td>" if awarded else ""
        rows.append(
            f'<tr id="row-{_e(d.id)}"><td><a href="#{_e(d.id)}">{_e(d.id)}</a></td><td '
            f'class="outcome">{_e(d.outcome)}</td><td>{_rank(d)}</td>{given}<td>{causes}</td>'
            f"<td>{_grants(d)}</td></tr>"
        )
    head = "<th>awarded</th>" if awarded else ""
    return (
        f"<table class='outcomes'><tr><th>id</th><th>outcome</th><th>rank</th>{head}<th>why</th><th>grants</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _grants(decision: Decision) -> str:
    """What the deciding row brings, each with its legal reference."""
    return "<br>".join(
        _e(g.describe()) + (f" <span class='ref'>[{_e(g.reference)}]</span>" if g.reference else "")
        for g in decision.grants
    )


def _reasons(decision: Decision) -> str:
    items = []
    for r in decision.reasons:
        role = "decided the outcome" if r.role == "decisive" else "an earlier row that did not apply"
        items.append(
            f'<tr><td style="padding-left:{8 + 18 * r.depth}px" '
            f'class="{_e(r.status)}">{_MARK.get(r.status, "")} {_e(r.title)} '
            f"<code>{_e(r.rule)}</code></td>"
            f'<td>{_e(r.message)}</td><td class="ref">{_e(r.reference)}</td><td class="meta">{role}</td></tr>'
        )
    return (
        "<table class='reasons'><tr><th>rule</th><th>in this case</th><th>legal reference</th><th></th></tr>"
        + "".join(items)
        + "</table>"
    )


def _subject(decision: Decision) -> str:
    explanation = decision.explain()
    missing = (
        f"<p class='undetermined'>missing facts: {_e(', '.join(decision.missing))}</p>" if decision.missing else ""
    )
    return (
        f'<section class="subject" id="{_e(decision.id)}"><h2>{_e(decision.id)}: <span '
        f'class="outcome">{_e(decision.outcome)}</span></h2>'
        f"<p class='meta'>rank {_rank(decision)} · stage {_e(decision.stage)} · as of {_e(decision.as_of)}</p>{missing}"
        + (f"<p>grants: {_grants(decision)}</p>" if decision.grants else "")
        + (f"<p>allocation: {_e(decision.allocation.note())}</p>" if decision.allocation else "")
        + f"{_reasons(decision)}<h3>Explanation</h3><pre>{_pre(explanation.to_text())}</pre>"
        f'<h3>Dependency graph</h3><div class="graph-box">{explanation.to_svg()}</div></section>'
    )


def render_report(policy: Policy, result: Result) -> str:
    """The whole report as one HTML document."""
    cohort = explain_cohort(policy, result)
    identity = result.policy
    title = f"{policy.ir.title}: {cohort.title}"
    summary = result.summary.places_text() if result.summary else ""
    if result.outside_period:
        summary += f" · decided outside the stage's period (what-if, as of {result.as_of})"
    parts = [
        (
            "<!DOCTYPE html><html lang='en'><head><meta "
            f"charset='utf-8'><title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        ),
        f"<h1>{_e(title)}</h1>",
        (
            f"<p class='meta'>policy {_e(identity.name)} {_e(identity.version)} (digest "
            f"{_e(identity.digest[:12])}) · stage {_e(result.stage)} · as of {_e(result.as_of)} · "
            f"backend {_e(result.backend)}</p>"
        ),
        _overrides(result),
        f"<p>{_e(summary)}</p><h2>Outcomes</h2>{_outcomes(result)}",
        f"<h2>The stage</h2><pre>{_pre(cohort.to_text())}</pre>",
        "".join(_subject(d) for d in result.decisions.values()),
        (
            "<p class='meta'>Values as evaluated: "
            f"{_e(', '.join(f'{k} = {format_value(v[0])}' for k, v in _parameters(result).items()))}</p>"
        ),
        "</body></html>",
    ]
    return "".join(parts)


def _overrides(result: Result) -> str:
    """A what-if evaluation says so at the top: the parameters set without editing the package."""
    if not result.policy.overrides:
        return ""
    given = ", ".join(f"{name} = {format_value(value)}" for name, value in result.policy.overrides)
    return f"<p class='undetermined'><strong>What-if:</strong> {_e(given)} (not the package as written)</p>"


def _parameters(result: Result) -> dict[str, tuple[object, object]]:
    first = next(iter(result.decisions.values()), None)
    return dict(first.parameters) if first else {}
