"""Drawing graphs: DOT, Mermaid and a self-contained SVG, for any networkx DiGraph.

Used for the static policy graph (`policy graph`) and for decision explanations. `label` turns a
node's attributes into the text shown; nodes are coloured by their `kind` (and a rule's status).
`to_laid_out_svg` has Graphviz `dot` lay the graph out (every label whole, edges routed around
nodes) where `dot` is installed; otherwise, and in `to_svg`, the picture puts each node in the
column of its topological generation (facts and parameters on the left, the decision on the
right), which needs no external program but shortens long labels (the whole label is its tooltip).
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import textwrap
from collections.abc import Callable
from typing import Any

import networkx as nx

from engine.core.text import shown

__all__ = ["to_dot", "to_mermaid", "to_svg", "to_laid_out_svg", "dot_string", "mermaid_label"]

Label = Callable[[dict[str, Any]], str]
_FILL = {
    "fact": "#e8f1fb",
    "context": "#e8f1fb",
    "parameter": "#fdf3d8",
    "value": "#eef7ee",
    "ranking": "#f3e8fb",
    "outcome": "#eeeeee",
    "decision": "#dddddd",
    "stage": "#dddddd",
    "held": "#d9f2d9",
    "failed": "#f9d6d5",
    "undetermined": "#fff2b3",
}


def dot_string(text: str) -> str:
    """A DOT quoted string (DOT files are UTF-8: symbols stay as they are).

    Control characters are first shown escaped (`\\x1b`), then `\\` and `"` are escaped for DOT,
    so Graphviz draws the escape as text (`\\x0a`, never a line break or a raw control).
    """
    return '"' + shown(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


# Characters Mermaid reads in a quoted label, written as its entity codes (`#quot;`, `#35;`: the
# decimal code point between `#` and `;`): a quote ends the label, `#…;` starts an entity, `<>&`
# are HTML, brackets, `|`, `;` and `%` are syntax, a backtick starts a Markdown string.
_MERMAID = {ord(c): f"#{ord(c)};" for c in "#;<>&[](){}|%`"} | {ord('"'): "#quot;"}


def mermaid_label(text: str) -> str:
    """A Mermaid label's text: control characters shown escaped, every special character as an entity code."""
    return shown(text).translate(_MERMAID)


def _fill(attrs: dict[str, Any]) -> str:
    return _FILL.get(attrs.get("status") or attrs.get("kind", ""), "#ffffff")


def to_dot(graph: nx.DiGraph, label: Label, name: str = "policy") -> str:
    title = name if name.isidentifier() else dot_string(name)
    lines = [
        f"digraph {title} {{",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
    ]
    for node, attrs in graph.nodes(data=True):
        lines.append(f"  {dot_string(node)} [label={dot_string(label(attrs))}, fillcolor={dot_string(_fill(attrs))}];")
    for a, b in graph.edges:
        lines.append(f"  {dot_string(a)} -> {dot_string(b)};")
    return "\n".join(lines + ["}"])


def to_mermaid(graph: nx.DiGraph, label: Label) -> str:
    ids = {node: f"n{i}" for i, node in enumerate(graph.nodes)}
    lines = ["flowchart LR"]
    for node, attrs in graph.nodes(data=True):
        lines.append(f'  {ids[node]}["{mermaid_label(label(attrs))}"]')
    lines += [f"  {ids[a]} --> {ids[b]}" for a, b in graph.edges]
    return "\n".join(lines)


def _xml(text: object) -> str:
    """Text for SVG/HTML: control characters shown escaped (raw ones are not even valid XML), then `<>&"'`."""
    return html.escape(shown(text))


def _columns(graph: nx.DiGraph) -> list[list[str]]:
    if nx.is_directed_acyclic_graph(graph):
        return [sorted(g) for g in nx.topological_generations(graph)]
    return [sorted(graph.nodes)]


def to_svg(graph: nx.DiGraph, label: Label, width: int = 230, height: int = 34) -> str:
    """An inline SVG picture of the graph: columns by dependency depth, arrows left to right."""
    columns = _columns(graph)
    gap_x, gap_y = 60, 12
    place: dict[str, tuple[int, int]] = {}
    for c, column in enumerate(columns):
        for r, node in enumerate(column):
            place[node] = (20 + c * (width + gap_x), 20 + r * (height + gap_y))
    total_w = 40 + len(columns) * (width + gap_x) - gap_x
    total_h = 40 + max((len(col) for col in columns), default=1) * (height + gap_y)
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{total_w}" '
            f'height="{total_h}" viewBox="0 0 {total_w} {total_h}" role="img">'
        )
    ]
    parts.append(
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#777"/></marker></defs>'
    )
    for a, b in graph.edges:
        (x1, y1), (x2, y2) = place[a], place[b]
        parts.append(
            f'<line x1="{x1 + width}" y1="{y1 + height // 2}" x2="{x2}" y2="{y2 + height // 2}" '
            'stroke="#999" marker-end="url(#arrow)"/>'
        )
    for node, attrs in graph.nodes(data=True):
        x, y = place[node]
        text = shown(label(attrs))
        short = text if len(text) <= 34 else text[:33] + "…"
        parts.append(
            f'<g class="node {_xml(attrs.get("kind", ""))}"><title>{_xml(text)}</title>'
            f'<rect x="{x}" y="{y}" width="{width}" height="{height}" rx="6" fill="{_fill(attrs)}" stroke="#666"/>'
            f'<text x="{x + 8}" y="{y + height // 2 + 4}" font-family="Helvetica, Arial, sans-serif" '
            f'font-size="12">{_xml(short)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _wrapped(label: Label, width: int = 36) -> Label:
    """Labels broken into lines of about `width` characters (at spaces, dots and commas)."""

    def wrap(attrs: dict[str, Any]) -> str:
        text = shown(label(attrs)).replace(".", ".\u200b").replace(",", ",\u200b")
        lines = textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False)
        return "\n".join(line.replace("\u200b", "") for line in lines) or " "

    return wrap


def _layout_dot(graph: nx.DiGraph, label: Label, rankdir: str) -> str:
    """DOT for the layout: compact spacing; an edge that only orders outcome rows does not add a rank."""
    lines = [
        "digraph explanation {",
        f"  rankdir={rankdir}; nodesep=0.15; ranksep=0.35;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11, margin="0.08,0.04"];',
        '  edge [color="#888888", arrowsize=0.6];',
    ]
    for node, attrs in graph.nodes(data=True):
        lines.append(f"  {dot_string(node)} [label={dot_string(label(attrs))}, fillcolor={dot_string(_fill(attrs))}];")
    for a, b, attrs in graph.edges(data=True):
        extra = ' [constraint=false, style=dashed, color="#bbbbbb"]' if attrs.get("role") == "precedence" else ""
        lines.append(f"  {dot_string(a)} -> {dot_string(b)}{extra};")
    return "\n".join(lines + ["}"])


def to_laid_out_svg(graph: nx.DiGraph, label: Label, rankdir: str = "TB", timeout: float = 30.0) -> str | None:
    """The graph laid out by Graphviz `dot` as an inline SVG that scales to the width of its box,
    labels whole (wrapped); None where `dot` is not installed or fails (draw `to_svg` instead)."""
    program = shutil.which("dot")
    if program is None:
        return None
    source = _layout_dot(graph, _wrapped(label), rankdir)
    try:
        done = subprocess.run([program, "-Tsvg"], input=source, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0 or "<svg" not in done.stdout:
        return None
    svg = done.stdout[done.stdout.index("<svg") :]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = svg.replace(' xmlns:xlink="http://www.w3.org/1999/xlink"', "", 1)  # no links drawn: no namespace needed
    # The picture keeps its proportions and shrinks to the page; its natural size is its max width.
    size = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    if size:
        natural = float(size.group(1)) * 4 / 3
        svg = svg.replace(
            size.group(0),
            f'<svg class="graph laid-out" width="100%" style="max-width:{natural:.0f}px;height:auto"',
            1,
        )
    return svg
