"""The rule package as a document for policymakers and the public (`policy doc`).

Each stage as its outcome table in words, each rule with its title, reference and condition in
plain language (and as written), values with their formulas, parameters with their dated values,
the facts the package reads, and the invariants it is checked against; every definition links to
what it uses and to what uses it. Built from the checked IR and its static dependency graph only.

The document is a list of blocks, rendered as Markdown or as one self-contained HTML page (inline
CSS, no network). The Markdown is stable: definitions in the package's own order, lists sorted,
no dates or times of generation, so that a diff of two documents reviews an edit of the rules.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from engine.core.text import shown
from engine.explanation.lookups import shape_rows
from engine.explanation.words import (
    Phrase,
    Piece,
    Ref,
    Text,
    Words,
    anchor,
    field_of,
    format_date,
    humanize,
    plural,
    quantity,
)
from engine.language.expr import Const, render
from engine.language.ir import OutcomeGrant, PolicyIR, Stage, Template

__all__ = ["document_markdown", "document_html", "render_document", "FORMATS"]

FORMATS = ("md", "html")
_KINDS = {"stage": 0, "outcome": 1, "rule": 2, "value": 3, "parameter": 4, "fact": 5, "context": 6, "invariant": 7}


@dataclass(frozen=True)
class Heading:
    level: int
    text: Phrase
    id: str = ""


@dataclass(frozen=True)
class Para:
    text: Phrase
    style: str = ""  # "" or "meta" (secondary: ids, files)


@dataclass(frozen=True)
class Items:
    items: tuple[Phrase, ...]
    ordered: bool = False


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[Phrase, ...], ...]


Block = Heading | Para | Items | Table


def _t(text: str, style: str = "") -> Text:
    return Text(text, style)


class _Builder:
    """The blocks of the document of one package."""

    def __init__(self, ir: PolicyIR) -> None:
        self.ir, self.words, self.graph = ir, Words(ir), ir.graph
        self.subject = self.words.subject
        self.root = PurePosixPath(ir.files[0]).parent if ir.files else None

    def blocks(self) -> list[Block]:
        ir = self.ir
        out: list[Block] = [Heading(1, (_t(ir.title or ir.name),))]
        out.append(
            Para(
                (
                    _t("Rule package "),
                    _t(ir.name, "code"),
                    _t(f", version {ir.version}. Written from the files {', '.join(self._files())} by "),
                    _t("policy doc", "code"),
                    _t(
                        f". Each stage decides every {self.subject} of a cohort: the first outcome whose condition "
                        "holds is the decision. Conditions are given in plain words and as written in the rules."
                    ),
                )
            )
        )
        out.append(Para((_t("Contents: ", "strong"), *self._contents())))
        for title, id, section in (
            ("Stages", "stages", self._stages),
            ("Rules", "rules", self._rules),
            ("Values", "values", self._values),
            ("Parameters", "parameters", self._parameters),
            ("Facts", "facts", self._facts),
            ("Invariants", "invariants", self._invariants),
        ):
            body = section()
            if body:
                out.append(Heading(2, (_t(title),), id))
                out.extend(body)
        return out

    def _files(self) -> list[str]:
        return [self._file(f) for f in self.ir.files] or ["(none)"]

    def _file(self, path: str) -> str:
        file = PurePosixPath(path)
        if self.root is not None and file.is_relative_to(self.root):
            return str(file.relative_to(self.root))
        return file.name

    def _contents(self) -> Phrase:
        ir = self.ir
        counts = [
            ("stages", len(ir.stages)),
            ("rules", len(ir.rules)),
            ("values", len(ir.values)),
            ("parameters", len(ir.parameters)),
            ("facts", len(self._fact_nodes())),
            ("invariants", len(ir.invariants)),
        ]
        out: list[Piece] = []
        for name, count in counts:
            if count:
                out += [*((_t(" · "),) if out else ()), Ref(name, name.capitalize()), _t(f" ({count})")]
        return tuple(out)

    # -- stages -----------------------------------------------------------------------------------

    def _stages(self) -> list[Block]:
        out: list[Block] = []
        for stage in self.ir.stages.values():
            out.append(Heading(3, (_t(stage.title or stage.id),), anchor("stage", stage.id)))
            out.append(Para((_t("Stage "), _t(stage.id, "code"), *self._where(stage.span.file)), "meta"))
            out.append(Para((_t("Reference. ", "strong"), _t(stage.reference))))
            if stage.dates is not None:
                start, end = stage.dates
                until = f" until {format_date(end)}" if end else ""
                out.append(Para((_t("Applies ", "strong"), _t(f"from {format_date(start)}{until}."))))
            out.extend(self._ranking(stage))
            out.append(Para((_t("Outcomes. ", "strong"), _t(f"{_article(self.subject).capitalize()} is:"))))
            out.append(Items(tuple(self._row(stage, row.index) for row in stage.outcomes), ordered=True))
        return out

    def _ranking(self, stage: Stage) -> list[Block]:
        words, subjects = self.words, plural(self.subject)
        pool = (_t("Who is ranked. ", "strong"), _t(f"Every {self.subject} for which "), *words.condition(stage.pool))
        out: list[Block] = [Para((*pool, _t(".")))]
        if stage.rank_by:
            keys = []
            for key in stage.rank_by:
                order = "highest first" if key.descending else "lowest first"
                named = (_t(f" — {key.title}"),) if key.title else ()
                keys.append((*words.term(key.expr), _t(f", {order}"), *named))
            out.append(Para((_t("Ranking. ", "strong"), _t(f"The {subjects} are ranked by (ties broken in order):"))))
            out.append(Items(tuple(keys), ordered=True))
        places: list[Piece] = [_t("Places. ", "strong")]
        if stage.slots is None:
            places.append(_t("No limit on the number of places."))
        else:
            places += [*_capital(words.term(stage.slots)), _t(".")]
        if stage.fills_slot:
            places += [
                _t(f" Each {self.subject} that is "),
                _t(humanize(stage.fills_slot), "em"),
                _t(" takes a place."),
            ]
        if stage.open_slots is not None:
            gone = stage.open_slots
            places += [_t(" Places left open: "), _t(gone.title), _t(" (to "), _t(gone.to, "code")]
            places += [_t(f"; {gone.reference})." if gone.reference else ").")]
        out.append(Para(tuple(places)))
        return out

    def _row(self, stage: Stage, index: int) -> Phrase:
        row = stage.outcomes[index - 1]
        lead = (_t("otherwise ") if index > 1 else _t("")), _t(humanize(row.outcome), "strong")
        always = isinstance(row.when, Const) and row.when.value is True
        condition = () if always else (_t(" if "), *self.words.condition(row.when))
        titled = (_t(f" — {row.title}"),) if row.title else ()
        rules = [self._short_ref(n) for n in self._sorted(self.graph.predecessors(f"outcome:{stage.id}.{index}"))]
        cited = [p for r in rules if r for p in r]
        why = tuple(Text(p.text, "small") if isinstance(p, Text) else p for p in (_t(" ("), *cited[:-1], _t(")")))
        why = why if cited else ()
        end = _t("." if index == len(stage.outcomes) else ";")
        return (*lead, *condition, *titled, *why, *self._grants(row.grants), end)

    def _grants(self, grants: tuple[OutcomeGrant, ...]) -> Phrase:
        """`, which brings: Government GPUs (NVIDIA B200): the GPUs per team (512 from ...) GPUs; ...`."""
        if not grants:
            return ()
        parts: list[Piece] = [_t(", which brings: ")]
        for number, grant in enumerate(grants):
            parts.append(_t(grant.title, "em"))
            if grant.quantity is not None:
                unit = f" {grant.unit}" if grant.unit else ""
                parts += [_t(": "), *self.words.term(grant.quantity), _t(unit)]
            if grant.reference:
                parts.append(Text(f" ({grant.reference})", "small"))
            parts.append(_t("; " if number + 1 < len(grants) else ""))
        return tuple(parts)

    def _short_ref(self, node: str) -> Phrase:
        """`rule `sovereign`: its reference; ` for the outcome table (a trailing separator included)."""
        kind, _, name = node.partition(":")
        if kind != "rule":
            return ()
        rule = self.ir.rules[name]
        return (_t("rule "), Ref(anchor("rule", name), name, rule.title, "code"), _t(f": {rule.reference}"), _t("; "))

    # -- rules, values, parameters ------------------------------------------------------------

    def _rules(self) -> list[Block]:
        out: list[Block] = []
        for rule in self.ir.rules.values():
            out.append(Heading(3, (_t(rule.title or rule.id),), anchor("rule", rule.id)))
            out.append(Para((_t("Rule "), _t(rule.id, "code"), *self._where(rule.span.file)), "meta"))
            out.append(Para((_t("Reference. ", "strong"), _t(rule.reference))))
            if rule.description:
                out.append(Para((_t(rule.description),)))
            said = self.words.condition(rule.when)
            out.append(Para((_t("Holds when ", "strong"), *said, _t("."))))
            out.append(Para((_t("As written: "), _t(self.words.code(rule.when), "code")), "meta"))
            for name, template in (("holds", rule.held), ("fails", rule.failed)):
                if template is not None:
                    message = (_t(f"Message when it {name}: "), _t(_template(template), "code"))
                    out.append(Para(message, "meta"))
            out.extend(self._links(f"rule:{rule.id}"))
        return out

    def _values(self) -> list[Block]:
        out: list[Block] = []
        for value in self.ir.values.values():
            out.append(Heading(3, (_t(value.title or value.name),), anchor("value", value.name)))
            unit = f" · in {value.unit}" if value.unit else ""
            out.append(Para((_t("Value "), _t(value.name, "code"), _t(unit), *self._where(value.span.file)), "meta"))
            if value.reference:
                out.append(Para((_t("Reference. ", "strong"), _t(value.reference))))
            formula = self.words.term(value.expr)
            out.append(Para((_t("Formula: ", "strong"), *formula, _t("."))))
            out.append(Para((_t("As written: "), _t(self.words.code(value.expr), "code")), "meta"))
            out.extend(self._links(f"value:{value.name}"))
        return out

    def _parameters(self) -> list[Block]:
        out: list[Block] = []
        for parameter in self.ir.parameters.values():
            out.append(Heading(3, (_t(parameter.title or parameter.name),), anchor("parameter", parameter.name)))
            where = self._where(parameter.span.file)
            unit = f" · in {parameter.unit}" if parameter.unit else ""
            out.append(Para((_t("Parameter "), _t(parameter.name, "code"), _t(unit), *where), "meta"))
            out.append(Para((_t("Reference. ", "strong"), _t(parameter.reference))))
            if parameter.shape != "value":  # a table or a scale: a row per key or bracket, a column per date
                header, texts = shape_rows(parameter.values)
                out.append(Table(header, tuple(tuple((_t(cell),) for cell in row) for row in texts)))
                out.extend(self._links(f"parameter:{parameter.name}"))
                continue
            rows = []
            for since, value in sorted(parameter.values, key=lambda pair: (pair[0] is not None, pair[0])):
                shown_value = quantity(value) + (f" {parameter.unit}" if parameter.unit and value != [] else "")
                rows.append(((_t(format_date(since) if since else "always"),), (_t(shown_value),)))
            out.append(Table(("in force from", "value"), tuple(rows)))
            out.extend(self._links(f"parameter:{parameter.name}"))
        return out

    # -- facts, invariants --------------------------------------------------------------------

    def _fact_nodes(self) -> list[str]:
        """Every fact and context path the document links to: those of the dependency graph, and
        those only invariants read (an invariant is no node of the graph: `context.stage`)."""
        kinds = ("fact", "context")
        nodes = {n for n, a in self.graph.nodes(data=True) if a.get("kind") in kinds}
        nodes |= {n for i in self.ir.invariants for n in i.uses if n.partition(":")[0] in kinds}
        return sorted(nodes)

    def _facts(self) -> list[Block]:
        nodes = self._fact_nodes()
        if not nodes:
            return []
        intro = (
            _t(f"What the rules read of each {self.subject} (and, as "),
            _t("context", "code"),
            _t(", of the cohort), with what reads it."),
        )
        items = []
        for node in nodes:
            kind, _, path = node.partition(":")
            parts = [p for p in path.replace("[]", "").split(".") if p]
            model = self.ir.schema.cohort if kind == "context" else self.ir.schema.subject
            context = self.ir.schema.context_field
            info = field_of(model, [context or "", *parts[1:]] if kind == "context" else parts)
            about = (
                [_t(f" — {(info.title + ': ') if info.title else ''}{info.description}")]
                if info and (info.description)
                else []
            )
            users = self._list(self._users(node))
            used = (_t(" · read by "), *users) if users else ()
            items.append((Ref(anchor("fact", path), "", path, "target"), _t(path, "code"), *about, *used))
        return [Para(intro), Items(tuple(items))]

    def _invariants(self) -> list[Block]:
        out: list[Block] = []
        if self.ir.invariants:
            intro = (_t("Statements that must hold for every possible cohort; "), _t("policy check", "code"))
            out.append(Para((*intro, _t(" searches generated cohorts for a counterexample to each."))))
        for invariant in self.ir.invariants:
            out.append(Heading(3, (_t(invariant.title),), anchor("invariant", invariant.id)))
            stages = ", ".join(invariant.stages)
            meta = (_t("Invariant "), _t(invariant.id, "code"), _t(f" · {invariant.kind} · stages {stages}"))
            out.append(Para((*meta, *self._where(invariant.span.file)), "meta"))
            out.append(Para((_t("Reference. ", "strong"), _t(invariant.reference))))
            for label, node in (("Where: ", invariant.when), ("Holds: ", invariant.holds)):
                if node is not None:
                    out.append(Para((_t(label), _t(self.words.code(node), "code")), "meta"))
            if invariant.kind == "monotonic" and invariant.change:
                changed = ", ".join(invariant.change)
                out.append(Para((_t(f"Facts changed ({invariant.direction}): "), _t(changed, "code")), "meta"))
            uses = self._list(sorted(invariant.uses, key=self._order))
            if uses:
                out.append(Para((_t("Reads: ", "strong"), *uses)))
        return out

    # -- links --------------------------------------------------------------------------------

    def _links(self, node: str) -> list[Block]:
        uses = self._list(self._sorted(self.graph.predecessors(node)))
        out: list[Block] = [Para((_t("Uses: ", "strong"), *uses))] if uses else []
        used = self._list(self._users(node)) or (_t("nothing in this package"),)
        return [*out, Para((_t("Used by: ", "strong"), *used))]

    def _users(self, node: str) -> list[str]:
        """What uses `node`: definitions of the graph, then the invariants that read it."""
        graph = self._sorted(self.graph.successors(node)) if node in self.graph else []
        return graph + [f"invariant:{i.id}" for i in self.ir.invariants if node in i.uses]

    def _sorted(self, nodes: object) -> list[str]:
        return sorted(nodes, key=self._order)  # type: ignore[call-overload, no-any-return]

    def _order(self, node: str) -> tuple[int, str]:
        kind, _, name = node.partition(":")
        return _KINDS.get(kind, 9), name

    def _list(self, nodes: list[str]) -> Phrase:
        out: list[Piece] = []
        for node in nodes:
            link = self._link(node)
            if link:
                out.extend((_t(", "),) * bool(out) + link)
        return tuple(out)

    def _link(self, node: str) -> Phrase:
        kind, _, name = node.partition(":")
        attrs = self.graph.nodes[node] if node in self.graph else {}
        if kind == "outcome":
            stage, row = str(attrs.get("stage", "")), attrs.get("row", "")
            target = self.ir.stages[stage].title if stage in self.ir.stages else stage
            text = f"outcome row {row} ({humanize(str(attrs.get('name', '')))}) of “{target}”"
            return (Ref(anchor("stage", stage), text, stage),)
        tables: dict[str, dict[str, object]] = {"stage": dict(self.ir.stages), "rule": dict(self.ir.rules)}
        tables |= {"value": dict(self.ir.values), "parameter": dict(self.ir.parameters)}
        if kind in tables and name not in tables[kind]:
            return (_t(name, "code"),)  # e.g. `stage.rank` read by an invariant: no definition to link to
        if kind in tables:
            title = str(attrs.get("title") or getattr(tables[kind][name], "title", "") or name)
            return (_t(f"{kind} "), Ref(anchor(kind, name), f"“{title}”", name))
        if kind == "invariant":
            found = [i for i in self.ir.invariants if i.id == name]
            return (_t("invariant "), Ref(anchor(kind, name), f"“{found[0].title if found else name}”", name))
        if kind in ("fact", "context"):
            return (Ref(anchor("fact", name), name, "", "code"),)
        if kind == "ranking":
            return (_t(name, "code"),)
        return ()

    def _where(self, file: str) -> Phrase:
        return (_t(" · in "), _t(self._file(file), "code")) if file else ()


def _article(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _capital(phrase: Phrase) -> Phrase:
    """The phrase starting with a capital letter (a sentence)."""
    if not phrase or not phrase[0].text:
        return phrase
    first = phrase[0]
    text = first.text[0].upper() + first.text[1:]
    return (
        Text(text, first.style) if isinstance(first, Text) else Ref(first.anchor, text, first.title, first.style),
    ) + (phrase[1:])


def _template(template: Template) -> str:
    return "".join(part if isinstance(part, str) else "{" + render(part) + "}" for part in template.parts)


# -- Markdown -----------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def _md_text(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", shown(text))


def _md_code(text: str) -> str:
    text = shown(text)
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_piece(piece: Piece) -> str:
    if isinstance(piece, Ref) and piece.style == "target":
        return f'<a id="{piece.anchor}"></a>'
    inner = _md_code(piece.text) if piece.style == "code" else _md_text(piece.text)
    if piece.style == "strong" and piece.text.strip():
        inner = f"**{_md_text(piece.text.rstrip())}**" + (" " if piece.text.endswith(" ") else "")
    elif piece.style == "em" and piece.text:
        inner = f"*{inner}*"
    return f"[{inner}](#{piece.anchor})" if isinstance(piece, Ref) else inner


def _md(phrase: Phrase) -> str:
    return "".join(_md_piece(p) for p in phrase)


def _md_block(block: Block) -> str:
    if isinstance(block, Heading):
        target = f'<a id="{block.id}"></a>' if block.id else ""
        return f"{'#' * block.level} {target}{_md(block.text)}"
    if isinstance(block, Para):
        return f"<sub>{_md(block.text)}</sub>" if block.style == "meta" else _md(block.text)
    if isinstance(block, Items):
        return "\n".join(f"{f'{i}.' if block.ordered else '-'} {_md(item)}" for i, item in enumerate(block.items, 1))
    head = "| " + " | ".join(_md_text(h) for h in block.header) + " |"
    rule = "|" + "|".join("---" for _ in block.header) + "|"
    rows = ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in block.rows]
    return "\n".join([head, rule, *rows])


def document_markdown(ir: PolicyIR) -> str:
    """The package as Markdown (stable: the same package gives the same bytes)."""
    return "\n\n".join(_md_block(b) for b in _Builder(ir).blocks()) + "\n"


# -- HTML ---------------------------------------------------------------------------------------

_CSS = """
body { font-family: Georgia, 'Times New Roman', serif; color: #1d1d1d; margin: 0; line-height: 1.5; }
main { max-width: 860px; margin: 0 auto; padding: 2em 1.5em 4em; }
h1 { font-size: 2em; margin-bottom: 0.2em; } h2 { margin-top: 2.2em; border-bottom: 2px solid #1d4f91; color: #1d4f91; }
h3 { margin: 1.8em 0 0.2em; padding-top: 0.8em; border-top: 1px solid #e4e4e4; font-size: 1.15em; }
h3 + p.meta { margin-top: 0; }
p { margin: 0.5em 0; } ol, ul { margin: 0.4em 0 0.8em; padding-left: 1.6em; } li { margin: 0.3em 0; }
.meta { color: #666; font-size: 0.85em; font-family: Helvetica, Arial, sans-serif; }
.small { color: #666; font-size: 0.85em; }
code { font-family: 'DejaVu Sans Mono', Menlo, monospace; font-size: 0.85em; background: #f2f2f2; padding: 0 3px;
  border-radius: 3px; word-break: break-word; }
a { color: #1d4f91; text-decoration: none; border-bottom: 1px dotted #1d4f91; } a:hover { background: #eef3fb; }
table { border-collapse: collapse; margin: 0.6em 0; font-family: Helvetica, Arial, sans-serif; font-size: 0.92em; }
td, th { border: 1px solid #ccc; padding: 3px 10px; text-align: left; } th { background: #f4f6f9; }
:target { background: #fff7d6; }
"""


def _e(text: str) -> str:
    return html.escape(shown(text))


def _html_piece(piece: Piece) -> str:
    if isinstance(piece, Ref) and piece.style == "target":
        return f'<span id="{_e(piece.anchor)}"></span>'
    inner = _e(piece.text)
    tag = {"code": "code", "em": "em", "strong": "strong"}.get(piece.style)
    if tag:
        inner = f"<{tag}>{inner}</{tag}>"
    elif piece.style == "small":
        inner = f'<span class="small">{inner}</span>'
    if isinstance(piece, Ref):
        title = f' title="{_e(piece.title)}"' if piece.title else ""
        return f'<a href="#{_e(piece.anchor)}"{title}>{inner}</a>'
    return inner


def _h(phrase: Phrase) -> str:
    return "".join(_html_piece(p) for p in phrase)


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        target = f' id="{_e(block.id)}"' if block.id else ""
        return f"<h{block.level}{target}>{_h(block.text)}</h{block.level}>"
    if isinstance(block, Para):
        return f'<p class="meta">{_h(block.text)}</p>' if block.style == "meta" else f"<p>{_h(block.text)}</p>"
    if isinstance(block, Items):
        tag = "ol" if block.ordered else "ul"
        return f"<{tag}>" + "".join(f"<li>{_h(item)}</li>" for item in block.items) + f"</{tag}>"
    head = "".join(f"<th>{_e(h)}</th>" for h in block.header)
    rows = "".join("<tr>" + "".join(f"<td>{_h(c)}</td>" for c in row) + "</tr>" for row in block.rows)
    return f"<table><tr>{head}</tr>{rows}</table>"


def document_html(ir: PolicyIR) -> str:
    """The package as one self-contained HTML page."""
    title = _e(ir.title or ir.name)
    body = "\n".join(_html_block(b) for b in _Builder(ir).blocks())
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_CSS}</style></head>\n<body><main>\n{body}\n</main></body></html>\n"
    )


def render_document(ir: PolicyIR, format: str) -> str:
    """The document in `format` (`md` or `html`)."""
    if format not in FORMATS:
        raise ValueError(f"unknown document format `{format}`: use {' or '.join(FORMATS)}")
    return document_markdown(ir) if format == "md" else document_html(ir)
