"""The static dependency graph of a policy package, for `policy graph`.

Every fact path, parameter, value, rule, outcome row and stage is a node with `kind`, `name`,
`title`, `reference` and `span` (where it is defined); an edge runs from what is used to what
uses it, labelled with the span of the use. Built by the checker; this module only renders it.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from engine.core.text import shown
from engine.evaluation.result import to_jsonable
from engine.explanation.render import to_dot, to_mermaid, to_svg
from engine.language.ir import PolicyIR

__all__ = ["policy_graph", "graph_json", "graph_text", "graph_dot", "graph_mermaid", "graph_svg", "node_label"]

_ORDER = {"stage": 0, "outcome": 1, "rule": 2, "value": 3, "ranking": 4, "parameter": 5, "context": 6, "fact": 7}


def policy_graph(ir: PolicyIR) -> nx.DiGraph:
    """A copy of the package's graph with plain, JSON-ready attributes (spans as text)."""
    graph = nx.DiGraph()
    for node, attrs in ir.graph.nodes(data=True):
        graph.add_node(node, **{k: (str(v) if k == "span" else v) for k, v in attrs.items() if v is not None})
    for a, b, attrs in ir.graph.edges(data=True):
        graph.add_edge(a, b, **{k: str(v) for k, v in attrs.items()})
    return graph


def node_label(attrs: dict[str, Any]) -> str:
    kind, name = attrs.get("kind", ""), attrs.get("name", "")
    return f"{kind}: {attrs.get('outcome', name) if kind == 'outcome' else name}"


def graph_json(ir: PolicyIR) -> dict[str, Any]:
    return to_jsonable(nx.node_link_data(policy_graph(ir), edges="links"))  # type: ignore[no-any-return]


def graph_dot(ir: PolicyIR) -> str:
    return to_dot(policy_graph(ir), node_label, ir.name)


def graph_mermaid(ir: PolicyIR) -> str:
    return to_mermaid(policy_graph(ir), node_label)


def graph_svg(ir: PolicyIR) -> str:
    return to_svg(policy_graph(ir), node_label)


def graph_text(ir: PolicyIR) -> str:
    """Each definition with where it is defined and what it uses, where."""
    graph = policy_graph(ir)
    lines = [f"policy {ir.name} {ir.version}: {graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges"]
    defined = [n for n, a in graph.nodes(data=True) if a.get("kind") in ("stage", "outcome", "rule", "value")]
    for node in sorted(defined, key=lambda n: (_ORDER.get(graph.nodes[n]["kind"], 9), n)):
        attrs = graph.nodes[node]
        title = f" — {attrs['title']}" if attrs.get("title") else ""
        where = f"  ({attrs['span']})" if attrs.get("span") else ""
        lines.append(f"{node}{title}{where}")
        for source in sorted(
            graph.predecessors(node), key=lambda n: (_ORDER.get(graph.nodes[n].get("kind", ""), 9), n)
        ):
            use = graph.edges[source, node].get("span", "")
            lines.append(f"  uses {source}" + (f" at {use}" if use else ""))
    unused = sorted(n for n, a in graph.nodes(data=True) if a.get("kind") == "parameter" and graph.out_degree(n) == 0)
    if unused:
        lines.append("parameters used by nothing: " + ", ".join(unused))
    return "\n".join(shown(line) for line in lines)  # a name's or title's control characters shown escaped
