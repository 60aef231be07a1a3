"""A self-contained HTML report of a cohort's decisions, for the officials who answer for them:
the outcomes in rank order with the subjects' names, the stage (its places counted by the
evaluation), and, per subject, its reasons, its explanation as a collapsible tree (✓/✗/?, legal
references, formulas behind a "formula" disclosure, "does not apply" for facts of an absent part)
and its dependency picture (laid out by Graphviz `dot` where installed; see `render`).

One file, no network access needed: CSS inline (with a print stylesheet), graphs as inline SVG,
no script. Every text for people in `lang` (`en`, `ko`): the package's own words where it gives
them, the engine's from its message catalogue.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from engine.core.i18n import Words
from engine.core.text import shown
from engine.evaluation.reasons import format_value
from engine.evaluation.result import Decision, Result, quantity_text
from engine.explanation.cohort_explain import explain_cohort
from engine.explanation.explain import short_label
from engine.explanation.letter import in_rank_order, outcome_label, places_words, rank_words, subject_name, who
from engine.explanation.render import to_laid_out_svg, to_svg

if TYPE_CHECKING:
    from engine.embedding.policy import Policy

__all__ = ["render_report", "CSS"]

CSS = """
* { box-sizing: border-box; }
body { font-family: "Noto Sans KR", "Nanum Gothic", NanumGothic, "Malgun Gothic", Helvetica, Arial, sans-serif;
  margin: 2em auto; padding: 0 1em; color: #222; max-width: 1100px; line-height: 1.45; overflow-wrap: break-word; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 1em 0; width: 100%; table-layout: auto; }
td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.nowrap, td.outcome { white-space: nowrap; } td.grants { min-width: 16em; }
.outcome { font-weight: bold; } .failed { color: #a40000; } .held { color: #176b17; } .undetermined { color: #8a6d00; }
.id, code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.85em; color: #555; }
.meta { color: #666; font-size: 0.9em; } .ref { color: #555; font-size: 0.85em; }
details { margin: 0.15em 0 0.15em 1.2em; } summary { cursor: pointer; }
details.formula > summary { color: #666; font-size: 0.85em; }
.tree > details { margin-left: 0; } .leaf { margin: 0.1em 0 0.1em 2.4em; }
.na { color: #777; font-style: italic; }
.graph-box { overflow: auto; border: 1px solid #ddd; margin: 0.5em 0 1em; max-width: 100%; }
.graph-box svg { display: block; }
.zoom:checked + label + .graph-box svg { width: auto; max-width: none !important; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  details { display: block; } details > summary { list-style: none; }
  details:not([open]) > *:not(summary) { display: block; }
  .zoom, .zoom + label { display: none; }
  .graph-box { overflow: visible; border: none; } .graph-box svg { max-width: 100% !important; width: 100%; }
  section.subject { break-before: page; } a { color: inherit; text-decoration: none; }
}
"""
_MARK = {"held": "✓", "failed": "✗", "undetermined": "?"}


def _e(text: object) -> str:
    """One value as HTML: control characters shown escaped (`html.escape` leaves them raw), then `<>&"'`."""
    return html.escape(shown(text))


class _Report:
    def __init__(self, policy: Policy, result: Result, lang: str) -> None:
        self.policy, self.result, self.ir = policy, result, policy.ir
        self.w = Words(lang)

    def name_cell(self, d: Decision) -> str:
        name = subject_name(self.ir, d)
        return f"<a href='#{_e(d.id)}'>{_e(name or d.id)}</a>" + (
            f" <span class='id'>{_e(d.id)}</span>" if name else ""
        )

    def label(self, outcome: str) -> str:
        return _e(outcome_label(self.ir, outcome, self.w.lang))

    def outcomes(self) -> str:
        w, result = self.w, self.result
        unit = result.summary.unit if result.summary else None
        awarded = result.summary is not None and result.summary.capacity is not None
        rows = []
        for d in in_rank_order(result):
            causes = (
                "<br>".join(
                    f'<span class="{_e(c.status)}">{_MARK.get(c.status, "")}</span> {_e(w.of(c.message))}'
                    for c in d.causes
                )
                or f"<span class='meta'>{_e(w('every condition met'))}</span>"
            )
            if d.missing:
                causes += f"<br><span class='undetermined'>{_e(w('missing'))}: {_e(', '.join(d.missing))}</span>"
            given = (
                f"<td>{_e(quantity_text(d.awarded, unit)) if d.awarded is not None else '–'}</td>" if awarded else ""
            )
            rank = _short_rank(d, w)
            rows.append(
                f"<tr id='row-{_e(d.id)}'><td class='nowrap'>{_e(rank)}</td><td>{self.name_cell(d)}</td>"
                f"<td class='outcome'>{self.label(d.outcome)}</td>{given}<td>{causes}</td>"
                f"<td class='grants'>{self.grants(d, references=False)}</td></tr>"
            )
        head = f"<th>{_e(w('awarded'))}</th>" if awarded else ""
        columns = "".join(f"<th>{_e(w(c))}</th>" for c in ("rank", "name", "outcome"))
        return (
            f"<table class='outcomes'><tr>{columns}{head}<th>{_e(w('why'))}</th><th>{_e(w('grants'))}</th></tr>"
            + "".join(rows)
            + "</table>"
        )

    def grants(self, d: Decision, references: bool = True) -> str:
        """What the deciding row brings, each with its legal reference."""
        return "<br>".join(
            _e(self.grant_text(g))
            + (f" <span class='ref'>[{_e(g.reference)}]</span>" if g.reference and references else "")
            for g in d.grants
        )

    def grant_text(self, g: Any) -> str:
        title = self.w.of(g.title)
        if g.missing:
            return f"{title} ({self.w('quantity undetermined: missing {paths}', paths=', '.join(g.missing))})"
        return f"{title} {quantity_text(g.quantity, g.unit)}" if g.quantity is not None else str(title)

    def stage(self) -> str:
        w = self.w
        cohort = explain_cohort(self.policy, self.result, w.lang)
        stage = self.ir.stages[self.result.stage or ""]
        keys = ", ".join(_e(w.of(k.title) or k.title) for k in stage.rank_by if k.title) or "–"
        rows = []
        for d in in_rank_order(self.result):
            p = d.placement
            values = (
                ", ".join(format_value(k) for k in p.keys)
                if p and p.keys
                else ("; ".join(p.key_ranges) if p and p.key_ranges else w("not ranked"))
            )
            rows.append(
                f"<tr><td>{_e(rank_words(d, w))}</td><td>{self.name_cell(d)}</td><td>{_e(values)}</td>"
                f"<td class='outcome'>{self.label(d.outcome)}</td></tr>"
            )
        notes = [*cohort.pending_places, *cohort.notes, *cohort.allocation, *cohort.tie_breaks, *cohort.open_places]
        return (
            f"<p>{_e(w.of(stage.title))} <span class='ref'>[{_e(stage.reference)}]</span></p>"
            f"<p>{_e(w('ranked by'))}: {keys}</p>"
            f"<table class='stage'><tr><th>{_e(w('rank'))}</th><th>{_e(w('name'))}</th>"
            f"<th>{_e(w('ranking keys'))}</th><th>{_e(w('outcome'))}</th></tr>{''.join(rows)}</table>"
            + (
                f"<p>{_e(places_words(self.result.summary, w))}"
                + (f"; {_e(w('cut-off (the last place)'))}: {_e(cohort.cut_off)}" if cohort.cut_off else "")
                + "</p>"
            )
            + ("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>" if notes else "")
        )

    def subject(self, d: Decision) -> str:
        w = self.w
        explanation = d.explain()
        missing = (
            f"<p class='undetermined'>{_e(w('missing facts'))}: {_e(', '.join(d.missing))}</p>" if d.missing else ""
        )
        graph = to_laid_out_svg(explanation.graph, short_label, rankdir="LR")
        fallback = graph is None
        picture = graph or to_svg(explanation.graph, short_label)
        zoom = f"zoom-{_e(d.id)}"
        return (
            f'<section class="subject" id="{_e(d.id)}"><h2>{_e(who(self.ir, d))}: '
            f'<span class="outcome">{self.label(d.outcome)}</span></h2>'
            f"<p class='meta'>{_e(d.id)} · {_e(rank_words(d, w))} · {_e(w('stage'))} {_e(d.stage)} · "
            f"{_e(w('as of'))} {_e(w.date(d.as_of))}</p>{missing}"
            + (f"<p>{_e(w('grants'))}: {self.grants(d)}</p>" if d.grants else "")
            + (f"<p>{_e(w('allocation'))}: {_e(d.allocation.note())}</p>" if d.allocation else "")
            + f"{self.reasons(d)}<h3>{_e(w('Explanation'))}</h3>{_Tree(explanation, w).html()}"
            + f"<h3>{_e(w('Dependency graph'))}</h3>"
            + f"<input type='checkbox' class='zoom' id='{zoom}'><label for='{zoom}' class='meta'> "
            f"{_e(w('full size'))}</label>"
            + f'<div class="graph-box">{picture}</div>'
            + (
                f"<p class='meta'>{_e(w('Graphviz is not installed: a simple column layout is shown'))}</p>"
                if fallback
                else ""
            )
            + "</section>"
        )

    def reasons(self, d: Decision) -> str:
        w = self.w
        items = []
        for r in d.reasons:
            role = w("decided the outcome") if r.role == "decisive" else w("an earlier row that did not apply")
            items.append(
                f'<tr><td style="padding-left:{8 + 18 * r.depth}px" class="{_e(r.status)}">'
                f"{_MARK.get(r.status, '')} {_e(w.of(r.title))} <code>{_e(r.rule)}</code></td>"
                f'<td>{_e(w.of(r.message))}</td><td class="ref">{_e(r.reference)}</td>'
                f'<td class="meta">{_e(role)}</td></tr>'
            )
        head = "".join(f"<th>{_e(w(c))}</th>" for c in ("rule", "in this case", "legal reference"))
        return f"<table class='reasons'><tr>{head}<th></th></tr>" + "".join(items) + "</table>"

    def page(self) -> str:
        w, result, ir = self.w, self.result, self.ir
        stage = ir.stages.get(result.stage or "")
        title = f"{w.of(ir.title)}: {w.of(stage.title) if stage else result.stage}"
        summary = places_words(result.summary, w)
        if result.outside_period:
            summary += " · " + w("decided outside the stage's period (what-if, as of {date})", date=result.as_of)
        identity = result.policy
        return "".join(
            [
                f"<!DOCTYPE html><html lang='{w.lang}'><head><meta charset='utf-8'>"
                "<meta name='viewport' content='width=device-width, initial-scale=1'>"
                f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
                f"<h1>{_e(title)}</h1>",
                f"<p class='meta'>{_e(w('policy'))} {_e(identity.name)} {_e(identity.version)} "
                f"({_e(w('digest'))} {_e(identity.digest[:12])}) · {_e(w('stage'))} {_e(result.stage)} · "
                f"{_e(w('as of'))} {_e(w.date(result.as_of))} · {_e(w('backend'))} {_e(result.backend)}</p>",
                _overrides(result, w),
                f"<p>{_e(summary)}</p><h2>{_e(w('Outcomes'))}</h2>{self.outcomes()}",
                f"<h2>{_e(w('The stage'))}</h2>{self.stage()}",
                "".join(self.subject(d) for d in in_rank_order(result)),
                f"<p class='meta'>{_e(w('Values as evaluated'))}: "
                f"{_e(', '.join(f'{k} = {format_value(v[0])}' for k, v in _parameters(result).items()))}</p>",
                "</body></html>",
            ]
        )


class _Tree:
    """An explanation as nested `<details>`: outcome rows, then what each used, down to facts and parameters."""

    _ORDER = {"rule": 0, "ranking": 1, "value": 2, "parameter": 3, "fact": 4}

    def __init__(self, explanation: Any, w: Words) -> None:  # an `Explanation`
        self.e, self.g, self.w = explanation, explanation.graph, w
        self.messages = {r.rule: r.message for r in explanation.decision.reasons}
        self.seen: set[str] = set()

    def html(self) -> str:
        rows = [n for n in self.g.predecessors(self.e.root) if self.g.nodes[n]["kind"] == "outcome"]
        parts = []
        for row in sorted(rows, key=lambda n: int(self.g.nodes[n]["name"].split()[-1])):
            a = self.g.nodes[row]
            verb = {"held": "decides", "failed": "does not apply", "undetermined": "cannot be decided yet"}[a["status"]]
            summary = (
                f"<span class='{_e(a['status'])}'>{_MARK[a['status']]}</span> "
                f"{_e(self.w('row {n}', n=a['name'].split()[-1]))}: "
                f"<b>{_e(outcome_label(self.e.policy_ir, a['outcome'], self.w.lang))}</b> — {_e(self.w(verb))}"
            )
            body = self._formula(a.get("condition")) + "".join(self._node(n) for n in self._inputs(row))
            parts.append(
                f"<details{' open' if a['status'] != 'failed' else ''}><summary>{summary}</summary>{body}</details>"
            )
        grants = [n for n in self.g.predecessors(self.e.root) if self.g.nodes[n]["kind"] == "grant"]
        parts += [self._node(n) for n in grants]
        return "<div class='tree'>" + "".join(parts) + "</div>"

    def _inputs(self, node: str) -> list[str]:
        inputs = [n for n in self.g.predecessors(node) if self.g.nodes[n]["kind"] not in ("outcome", "grant")]
        facts = [n for n in inputs if self.g.nodes[n]["kind"] == "fact"]
        kept = [
            n for n in inputs if not any(f != n and (f.startswith(n + ".") or f.startswith(n + "[].")) for f in facts)
        ]
        return sorted(kept, key=lambda n: (self._ORDER.get(self.g.nodes[n]["kind"], 5), n))

    def _formula(self, text: str | None) -> str:
        if not text:
            return ""
        return f"<details class='formula'><summary>{_e(self.w('formula'))}</summary><code>{_e(text)}</code></details>"

    def _ref(self, a: dict[str, Any]) -> str:
        return f" <span class='ref'>[{_e(a['reference'])}]</span>" if a.get("reference") else ""

    def _node(self, node: str) -> str:
        a, w = self.g.nodes[node], self.w
        kind = a["kind"]
        if node in self.seen and kind in ("rule", "value"):
            return f"<div class='leaf'>{_e(self._head(a))} <span class='meta'>({_e(w('see above'))})</span></div>"
        self.seen.add(node)
        if kind == "fact":
            return self._fact(a)
        if kind == "parameter":
            since = f", {w('in force since {date}', date=a['since'])}" if a.get("since") else ""
            value = _e(format_value(a.get("value")))
            return (
                f"<div class='leaf'>{_e(w('parameter'))} <code>{_e(a['name'])}</code> = {value}{_e(since)}"
                f"{self._ref(a)}</div>"
            )
        message = self.messages.get(a["name"]) if kind == "rule" else None
        said = f"<div class='leaf'>→ {_e(w.of(message))}</div>" if message else ""
        children = "".join(self._node(n) for n in self._inputs(node)) if kind != "grant" else ""
        return (
            f"<details><summary>{_e(self._head(a))}{self._ref(a)}</summary>{said}"
            f"{self._formula(a.get('formula'))}{children}</details>"
        )

    def _head(self, a: dict[str, Any]) -> str:
        kind, w = a["kind"], self.w
        if kind == "rule":
            return f"{_MARK[a['status']]} {w.of(a.get('title') or a['name'])}"
        if kind == "value":
            return f"= {w.of(a.get('title') or a['name'])}: {format_value(a.get('value'))}"
        if kind == "grant":
            return f"+ {w.of(a.get('title') or a['name'])}" + (
                f": {quantity_text(a['value'], a.get('unit'))}" if a.get("value") is not None else ""
            )
        if kind == "ranking":
            return f"{w('stage ranking')}: {a['name']} = {format_value(a.get('value'))}"
        return f"{kind}: {a['name']}"

    def _fact(self, a: dict[str, Any]) -> str:
        w = self.w
        values = a.get("value") or {}
        absent = set(a.get("absent") or ())

        def one(path: str, value: Any) -> str:
            if path in absent:
                return f"<span class='na'>{_e(w('does not apply'))}</span>"
            return _e(format_value(value) if value is not None else w("not given"))

        if len(values) <= 1:
            path, value = next(iter(values.items()), (a["name"], None))
            return f"<div class='leaf'>{_e(w('fact'))} <code>{_e(a['name'])}</code> = {one(path, value)}</div>"
        items = "".join(f"<div class='leaf'><code>{_e(p)}</code> = {one(p, v)}</div>" for p, v in values.items())
        return (
            f"<details><summary>{_e(w('fact'))} <code>{_e(a['name'])}</code>: "
            f"{_e(w('{n} item(s)', n=len(values)))}</summary>{items}</details>"
        )


def _short_rank(d: Decision, w: Words) -> str:
    """`2 of 5`, `2–4 of 5` (not known yet), `–` (not ranked)."""
    p = d.placement
    if p is None or (p.rank is None and p.rank_range is None):
        return "–"
    rank = str(p.rank) if p.rank is not None else f"{p.rank_range[0]}–{p.rank_range[1]}"  # type: ignore[index]
    return w("{rank} of {size}", rank=rank, size=p.pool_size)


def render_report(policy: Policy, result: Result, lang: str = "en") -> str:
    """The whole report as one HTML document, in `lang` (`en` or `ko`)."""
    return _Report(policy, result, lang).page()


def _overrides(result: Result, w: Words) -> str:
    """A what-if evaluation says so at the top: the parameters set without editing the package."""
    if not result.policy.overrides:
        return ""
    given = ", ".join(f"{name} = {format_value(value)}" for name, value in result.policy.overrides)
    return (
        f"<p class='undetermined'><strong>{_e(w('What-if'))}:</strong> {_e(given)} "
        f"({_e(w('not the package as written'))})</p>"
    )


def _parameters(result: Result) -> dict[str, tuple[object, object]]:
    first = next(iter(result.decisions.values()), None)
    return dict(first.parameters) if first else {}
