"""Explain a decision: the sub-graph of everything its outcome depends on, and its renderings.

Built only when asked for, from the decision's trace and the policy's static dependency graph.
Nodes are typed (`kind`: fact, context, parameter, value, rule, ranking, outcome, grant, decision) and
carry what they were in this evaluation; edges point from what is used to what uses it. Every
leaf is a fact or a parameter. Renderings: a plain-language text tree, JSON (node-link), DOT
and Mermaid.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import networkx as nx

from engine.core.i18n import Words, local
from engine.core.text import counted, shown
from engine.evaluation.reasons import format_value, status_of
from engine.evaluation.result import Decision, Grant, Tie, quantity_text, to_jsonable
from engine.explanation.lookups import used_rows
from engine.explanation.render import to_dot, to_mermaid, to_svg
from engine.language.checker import node_id
from engine.language.expr import render
from engine.language.ir import Scale, Table

if TYPE_CHECKING:
    from engine.embedding.policy import Policy

__all__ = ["Explanation", "explain_decision", "resolve_path", "absent_parts", "short_label"]

_MARK = {"held": "✓", "failed": "✗", "undetermined": "?"}


def resolve_path(root: Any, path: str) -> list[tuple[str, Any]]:
    """Concrete (path, value) pairs for a fact path; `[]` steps into every item of a list."""
    return [(where, value) for where, value, _ in _walk(root, path)]


def absent_parts(root: Any, path: str) -> list[str]:
    """The concrete paths of `path` that do not apply: a part on the way is absent (`weights` of a
    code-only component makes its `weights.origin` not missing information, but not applicable)."""
    return [where for where, _, absent in _walk(root, path) if absent]


@functools.lru_cache(maxsize=4096)
def _steps(path: str) -> tuple[tuple[str, bool], ...]:
    """A fact path's parts, each with whether it is a list (`[]`): parsed once per path, not per explanation."""
    return tuple((step[:-2], True) if step.endswith("[]") else (step, False) for step in path.split("."))


def _walk(root: Any, path: str) -> list[tuple[str, Any, bool]]:
    """Each concrete path of `path` with its value, and whether a part on the way to it is absent."""
    steps = _steps(path)
    if "[]" not in path:  # one concrete path, the path itself (most of them)
        value, absent = root, False
        for depth, (name, _) in enumerate(steps):
            if value is None:
                absent = absent or depth > 0
            else:
                value = getattr(value, name, None)
        return [(path, value, absent)]
    found: list[tuple[str, Any, bool]] = [("", root, False)]
    for name, many in steps:
        next_found: list[tuple[str, Any, bool]] = []
        for where, value, absent in found:
            label = f"{where}.{name}" if where else name
            child = getattr(value, name, None) if value is not None else None
            gone = absent or (value is None and where != "")
            if many and isinstance(child, (list, tuple)):
                next_found += [(f"{label}[{i}]", item, gone) for i, item in enumerate(child)]
            else:
                next_found.append((label, child, gone))
        found = next_found
    return found


@dataclass(frozen=True)
class Explanation:
    """A decision's explanation graph (`graph`, a networkx DiGraph) and its renderings."""

    decision: Decision
    graph: nx.DiGraph
    root: str
    policy_ir: Any = None  # the checked package (`PolicyIR`): titles of the ranking keys

    def to_json(self) -> dict[str, Any]:
        """networkx node-link data with every node's attributes, JSON-ready."""
        data = nx.node_link_data(self.graph, edges="links")
        return to_jsonable(data)  # type: ignore[no-any-return]

    def to_dot(self) -> str:
        return to_dot(self.graph, short_label, "explanation")

    def to_mermaid(self) -> str:
        return to_mermaid(self.graph, short_label)

    def to_svg(self) -> str:
        return to_svg(self.graph, short_label)

    def to_text(self, lang: str = "en") -> str:
        """The tree, one line per element; control characters in any value shown escaped (`\\x1b`)."""
        return "\n".join(shown(line) for line in _TextTree(self, lang).lines())


def short_label(attrs: dict[str, Any]) -> str:
    """The one-line label of a node in pictures: `✗ sovereign`, `fact: scores.expert = 26.4`."""
    kind, name = attrs.get("kind", ""), attrs.get("name", "")
    if kind == "rule":
        return f"{_MARK.get(attrs.get('status', ''), '')} {name}"
    if kind in ("decision", "outcome"):
        return f"{kind}: {attrs.get('outcome', name)}"
    value = attrs.get("value")
    if kind == "fact" and isinstance(value, dict):  # concrete path -> value
        value = next(iter(value.values())) if len(value) == 1 else f"{len(value)} items"
    return f"{kind}: {name} = {format_value(value)}"[:120]


class _Builder:
    def __init__(self, policy: Policy, decision: Decision) -> None:
        self.policy, self.decision = policy, decision
        self.ir = policy.ir
        self.static = self.ir.graph
        self.cache = _static_of(self.static)
        # nodes and edges in the order they are found, made into one `networkx.DiGraph` at the end (adding
        # them one by one costs a call and a cache reset of networkx each)
        self.nodes: dict[str, dict[str, Any]] = {}
        self.edges: dict[tuple[str, str], dict[str, Any]] = {}

    def build(self) -> Explanation:
        d = self.decision
        root = node_id("decision", d.id)
        self.nodes[root] = dict(
            kind="decision",
            name=d.id,
            outcome=d.outcome,
            stage=d.stage,
            as_of=d.as_of.isoformat(),
            missing=list(d.missing),
        )
        stage = self.ir.stages[d.stage] if d.stage else None
        previous = None
        for row in stage.outcomes if stage else ():
            if d.row is not None and row.index > d.row:
                break
            row_node = node_id("outcome", f"{stage.id}.{row.index}")  # type: ignore[union-attr]
            value = d.trace.get(f"row:{row.index}")
            status = status_of(value)
            self.nodes[row_node] = dict(
                kind="outcome",
                name=f"row {row.index}",
                outcome=row.outcome,
                condition=render(row.when),
                status=status,
                span=str(row.span),
            )
            self.edges[row_node, root] = {}
            if previous is not None:  # a row is reached only because the rows above it did not hold
                self.edges[previous, row_node] = {"role": "precedence"}
            self._add_ancestors(row_node)
            previous = row_node
        for grant in d.grants:
            self._grant(root, grant)
        graph = nx.DiGraph()
        # the nodes, then their attributes: given as (node, attributes) pairs, networkx tells a pair from a node by
        # hashing the pair and catching the TypeError, one exception a node (a third of building the graph)
        graph.add_nodes_from(self.nodes)
        nx.set_node_attributes(graph, self.nodes)
        graph.add_edges_from((u, v, attrs) for (u, v), attrs in self.edges.items())
        return Explanation(d, graph, root, self.ir)

    def _grant(self, root: str, grant: Grant) -> None:
        """A grant node under the decision, with the row that brings it and what its quantity reads."""
        d = self.decision
        node = node_id("grant", f"{d.stage}.{d.row}.{grant.id}")
        static = self.static.nodes[node] if node in self.static else {}
        self.nodes[node] = dict(
            kind="grant",
            name=grant.id,
            title=grant.title,
            reference=grant.reference,
            value=grant.quantity,
            unit=grant.unit,
            missing=list(grant.missing),
            span=str(static.get("span", "")),
        )
        self.edges[node, root] = {"role": "grants"}
        if node in self.static:
            self._add_ancestors(node)

    def _add_ancestors(self, target: str) -> None:
        """Every definition `target` depends on, depth first, without recursion (chains may be long)."""
        nodes, edges = self.nodes, self.edges
        stack: list[tuple[str, Iterator[tuple[str, dict[str, str]]]]] = [(target, iter(self._uses(target)))]
        while stack:
            current, sources = stack[-1]
            for source, attrs in sources:  # resumed where it stopped once the source pushed below is done
                known = source in nodes
                if not known:
                    nodes[source] = self._attributes(source)
                edges[source, current] = attrs  # networkx copies it
                if not known:
                    stack.append((source, iter(self._uses(source))))
                    break
            else:
                stack.pop()

    def _uses(self, target: str) -> tuple[tuple[str, dict[str, str]], ...]:
        """What `target` reads, each with the attributes of its edge to `target`."""
        if target.startswith("ranking:") and self.decision.stage:
            stage = node_id("stage", self.decision.stage)
            wanted = _RANKING_INPUTS.get(target.split(":", 1)[1], ())
            return tuple(
                (s, self.cache.edge(s, target))
                for s in self.static.predecessors(stage)
                if self.static.edges[s, stage].get("role") in wanted
            )
        return self.cache.uses(target)

    def _attributes(self, node: str) -> dict[str, Any]:
        attrs = self.cache.node(node, self.ir)
        kind, name = attrs["kind"], attrs["name"]
        d = self.decision
        if kind in ("value", "rule"):
            value = d.trace.get(name)
            if kind == "rule":
                attrs["status"] = status_of(value)
            attrs["value"] = value
            attrs["formula"] = attrs.pop("formula")  # after the value, as explanations have always listed it
        elif kind == "parameter":
            value, since = d.parameters.get(name, (None, None))
            attrs.update(value=value, since=since.isoformat() if since else None)
            if isinstance(value, (Table, Scale)):  # the rows or brackets this decision used, not the whole table
                uses = used_rows(self.policy, d, name)
                rows = list(dict.fromkeys(r for u in uses for r in u.rows))
                attrs.update(value=uses[0].value if uses else None, lookups=[u.text() for u in uses], rows=rows)
        elif kind == "fact":
            walked = _walk(d.subject, name)
            attrs["value"] = {where: value for where, value, _ in walked}
            attrs["absent"] = [where for where, _, absent in walked if absent]
        elif kind == "context":
            attrs["kind"] = "fact"
            attrs["value"] = dict(resolve_path(d.context, name.split(".", 1)[1])) if "." in name else None
        elif kind == "ranking" and d.placement is not None:
            field = name.split(".", 1)[1]
            source = d.allocation if field in _ALLOCATION_FIELDS else d.placement
            attrs["value"] = _stage_value(source, field)
        return attrs  # a value not known stays `Missing` here; `to_json` writes it as {"missing": [...]}


class _Static:
    """What an explanation copies from a policy's static graph, made once per graph: each node's and
    edge's attributes as an explanation shows them (text), and each definition's formula."""

    def __init__(self, static: nx.DiGraph) -> None:
        self.static = static
        self.nodes: dict[str, dict[str, Any]] = {}
        self.edges: dict[tuple[str, str], dict[str, str]] = {}
        self.preds: dict[str, tuple[tuple[str, dict[str, str]], ...]] = {}

    def node(self, node: str, ir: Any) -> dict[str, Any]:
        """The node's own attributes (a fresh dict each time: the caller adds the decision's)."""
        found = self.nodes.get(node)
        if found is None:
            kind, name = node.split(":", 1)
            static = self.static.nodes[node] if node in self.static else {}
            found = {
                "kind": kind,
                "name": name,
                "title": static.get("title"),
                "reference": static.get("reference"),
                "span": str(static.get("span", "")),
            }
            if kind in ("value", "rule"):
                definition = ir.values.get(name) or ir.rules.get(name)
                found["formula"] = render(definition.expr if kind == "value" else definition.when)
            self.nodes[node] = found
        return dict(found)

    def uses(self, target: str) -> tuple[tuple[str, dict[str, str]], ...]:
        """What `target` reads: its predecessors in the static graph (none for a node not in it), each with the
        attributes of its edge to `target`."""
        found = self.preds.get(target)
        if found is None:
            sources = tuple(self.static.predecessors(target)) if target in self.static else ()
            found = self.preds[target] = tuple((source, self.edge(source, target)) for source in sources)
        return found

    def edge(self, source: str, target: str) -> dict[str, str]:
        found = self.edges.get((source, target))
        if found is None:
            found = self.edges[source, target] = (
                {k: str(v) for k, v in self.static.edges[source, target].items()}
                if self.static.has_edge(source, target)
                else {}
            )
        return found


_STATICS: weakref.WeakKeyDictionary[nx.DiGraph, _Static] = weakref.WeakKeyDictionary()
_STATICS_LOCK = threading.Lock()


def _static_of(static: nx.DiGraph) -> _Static:
    """The cache of `static` (freed with the graph: a reloaded policy's old graph takes it along)."""
    found = _STATICS.get(static)
    if found is None:
        with _STATICS_LOCK:
            found = _STATICS.setdefault(static, _Static(static))
    return found


_ALLOCATED = ("rank_by", "pool", "slots", "capacity", "takes", "tracks")
_RANKING_INPUTS = {  # what each `stage.*` a rule reads is made of (roles of the stage's edges)
    "stage.rank": ("rank_by", "pool"),
    "stage.slots": ("slots",),
    "stage.pool_size": ("pool",),
    "stage.in_pool": ("pool",),
    "stage.capacity": ("capacity",),
    "stage.track": ("tracks",),
    **{f"stage.{name}": _ALLOCATED for name in ("placed", "awarded", "allotment", "capacity_left", "reserved")},
}
_ALLOCATION_FIELDS = ("placed", "awarded", "allotment", "capacity", "capacity_left", "track", "reserved")


def _stage_value(source: Any, field: str) -> Any:
    """`stage.<field>` as the decision saw it, from its placement or its allocation."""
    if source is None:
        return None
    if field == "placed":
        return source.allotment in ("awarded", "partial")
    return getattr(source, field, None)


class _TextTree:
    """The plain-language tree an official reads."""

    def __init__(self, explanation: Explanation, lang: str = "en") -> None:
        self.lang = lang  # the package's titles and messages in this language where it gives them
        self.w = Words(lang)  # the engine's own words in it (the message catalogue)
        self.e = explanation
        self.g = explanation.graph
        self.seen: set[str] = set()
        self.reasons = {r.rule: r for r in explanation.decision.reasons}

    def lines(self) -> list[str]:
        d = self.e.decision
        field = getattr(getattr(self.e.policy_ir, "schema", None), "name_field", None)
        name = getattr(d.subject, field, None) if field else None
        w = self.w
        label = self._label(d.outcome)
        out = [
            f"{d.id}: {label}"
            + (w(" (stage `{stage}`, as of {date})", stage=d.stage, date=d.as_of) if d.stage else "")
            + (f" — {name}" if name else "")
        ]
        out += self._placement()
        if d.allocation is not None:
            out.append("  " + w("allocation: {note}", note=d.allocation.note()))
        if d.missing:
            may = w(" or ").join(f"`{o}`" for o in d.possible)
            out.append(
                "  "
                + w("undetermined")
                + (w(": may be {outcomes}", outcomes=may) if may else "")
                + w("; needs {facts}", facts=", ".join(d.missing))
            )
        rows = [n for n in self.g.predecessors(self.e.root) if self.g.nodes[n]["kind"] == "outcome"]
        blocked = False  # an earlier row cannot be decided: the rows after it are only pending
        for row in sorted(rows, key=lambda n: int(self.g.nodes[n]["name"].split()[-1])):
            attrs = self.g.nodes[row]
            deciding = attrs["status"] != "failed"
            verb = w(
                ("pending: would decide if the rows above do not apply" if attrs["status"] == "held" else "pending")
                if blocked
                else "decides"
                if attrs["status"] == "held"
                else ("cannot be decided yet" if attrs["status"] == "undetermined" else "does not apply")
            )
            blocked = blocked or attrs["status"] == "undetermined"
            row_name = w("row {n}", n=attrs["name"].split()[-1])
            out.append(
                "  "
                + w(
                    "{row}: `{outcome}` when `{condition}` — {verb}",
                    row=row_name,
                    outcome=self._label(attrs["outcome"]),
                    condition=attrs["condition"],
                    verb=verb,
                )
            )
            for source in self._ordered(row):
                out += self._node(source, 2, expand=deciding)
        grants = [n for n in self.g.predecessors(self.e.root) if self.g.nodes[n]["kind"] == "grant"]
        if grants:
            out.append("  " + w("grants (what the deciding row brings):"))
        for grant in grants:
            out += self._node(grant, 2, expand=True)
        return out

    def _label(self, outcome: str) -> str:
        """An outcome as the reader reads it: its name in English, the package's label in another language."""
        if self.lang == "en":
            return outcome
        label = (getattr(self.e.policy_ir, "labels", None) or {}).get(outcome)
        return str(local(label, self.lang)) if label is not None else self.w(outcome)

    def _placement(self) -> list[str]:
        """Where the subject stands in the ranking: its rank (or the ranks it may have), and its ties."""
        d = self.e.decision
        p = d.placement
        if p is None:
            return []
        out = []
        w = self.w
        places = w(" for {slots} place(s)", slots=p.slots) if p.slots is not None else ""
        if p.rank is not None:
            out.append("  " + w("ranked {rank} of {size}", rank=p.rank, size=p.pool_size) + places)
        elif p.rank_range is not None:
            by = w(" (depends on {facts})", facts=", ".join(p.settled_by)) if p.settled_by else ""
            same = w("; every rank it may have gives the same outcome") if d.row is not None else ""
            ranks = w(
                "ranked {best} to {worst} of {size}", best=p.rank_range[0], worst=p.rank_range[1], size=p.pool_size
            )
            out.append(f"  {ranks}{places}" + w(": not known yet") + by + same)
        stage = self.e.policy_ir.stages.get(d.stage or "") if self.e.policy_ir else None
        names = [k.title or render(k.expr) for k in stage.rank_by] if stage else []
        if p.key_ranges is not None:
            out.append(
                "  its ranking keys may be: "
                + "; ".join(f"{n}: {k}" for n, k in zip(names or [""] * len(p.key_ranges), p.key_ranges, strict=True))
            )
        for tie in p.ties:
            out.append("  " + tie_text(d.id, p.rank, tie, names))
        return out

    def _ordered(self, node: str) -> list[str]:
        """Inputs of `node`, rules first; a fact path is left out where a longer one shows it."""
        order = {"rule": 0, "ranking": 1, "value": 2, "parameter": 3, "fact": 4}
        inputs = [n for n in self.g.predecessors(node) if self.g.nodes[n]["kind"] not in ("outcome", "grant")]
        facts = [n for n in inputs if self.g.nodes[n]["kind"] == "fact"]
        shown = [
            n for n in inputs if not any(f != n and (f.startswith(n + ".") or f.startswith(n + "[].")) for f in facts)
        ]
        position = {f"rule:{r.rule}": i for i, r in enumerate(self.e.decision.reasons)}
        return sorted(shown, key=lambda n: (order.get(self.g.nodes[n]["kind"], 5), position.get(n, len(position)), n))

    def _node(self, node: str, depth: int, expand: bool) -> list[str]:
        attrs, pad = self.g.nodes[node], "  " * depth
        kind = attrs["kind"]
        if node in self.seen:
            return [f"{pad}{self._head(attrs)}" + self.w(" (see above)")] if kind in ("rule", "value") else []
        self.seen.add(node)
        lines = [pad + self._head(attrs)]
        reason = self.reasons.get(attrs["name"]) if kind == "rule" else None
        if reason is not None and not reason.message.endswith(": " + reason.title):
            lines.append(f"{pad}  → {local(reason.message, self.lang)}")
        if kind == "fact":
            value = attrs.get("value") or {}
            absent = set(attrs.get("absent") or ())
            lines += (
                [
                    f"{pad}  {path} = {self.w('does not apply') if path in absent else format_value(v)}"
                    for path, v in value.items()
                ]
                if len(value) > 1
                else []
            )
        if expand and kind in ("rule", "value", "ranking", "grant"):
            for source in self._ordered(node):
                lines += self._node(source, depth + 1, expand)
        return lines

    def _head(self, attrs: dict[str, Any]) -> str:
        kind, name = attrs["kind"], attrs["name"]
        w = self.w
        ref = f"  [{attrs['reference']}]" if attrs.get("reference") else ""
        if kind == "rule":
            return (
                f"{_MARK[attrs['status']]} {local(attrs['title'], self.lang)}" + w(" (rule `{name}`)", name=name) + ref
            )
        if kind == "value":
            title = local(attrs["title"], self.lang)
            return f"= {title}: {format_value(attrs.get('value'))} (`{name}` = {attrs['formula']})"
        if kind == "parameter":
            since = w(", in force since {date}", date=attrs["since"]) if attrs.get("since") else ""
            if attrs.get("lookups"):
                return w("parameter") + f" {'; '.join(attrs['lookups'])}{since}{ref}"
            return w("parameter") + f" `{name}` = {format_value(attrs.get('value'))}{since}{ref}"
        if kind == "ranking":
            p = self.e.decision.placement
            if name == "stage.rank" and p is not None and p.rank is None and p.rank_range is not None:
                span = w("{best} to {worst}, not known yet", best=p.rank_range[0], worst=p.rank_range[1])
                return w("stage ranking") + f": `{name}` = {span}"
            return w("stage ranking") + f": `{name}` = {format_value(attrs.get('value'))}"
        if kind == "grant":
            shown_quantity = (
                f": quantity undetermined (missing {', '.join(attrs['missing'])})"
                if attrs.get("missing")
                else (f": {quantity_text(attrs['value'], attrs.get('unit'))}" if attrs.get("value") is not None else "")
            )
            return f"+ {local(attrs['title'], self.lang)}{shown_quantity} (grant `{name}`){ref}"
        value = attrs.get("value") or {}
        if len(value) == 1:
            shown = format_value(next(iter(value.values())))
        else:  # the items follow, one a line; none: nothing follows, so no colon
            shown = f"{counted(len(value), 'item')}:" if value else "no items"
        return w("fact") + f" `{name}` = {shown}"


def tie_text(subject: str, rank: int | None, tie: Tie, names: Sequence[str]) -> str:
    """A tie in words: `tied with `upstage` on total score (79.8); expert review score: 28.4 vs 30.1, ranked below`."""

    def key(i: int) -> str:
        return names[i] if i < len(names) else f"key {i + 1}"

    first = key(0)
    place = " — this decided the last place" if tie.across_last_place else ""
    if tie.key is None:
        place = " — the tie spans the last place, and the places go to all of them" if place else ""
        shared = f"({first}: {format_value(tie.mine)}): they share rank {rank}"
        return f"tied with `{tie.other}` on every ranking key {shared}{place}"
    above = rank is not None and tie.other_rank is not None and rank < tie.other_rank
    return (
        f"tied with `{tie.other}` on {first} ({format_value(tie.shared)}); "
        f"the tie-break {key(tie.key)} ranks it {'above' if above else 'below'} `{tie.other}` "
        f"({format_value(tie.mine)} vs {format_value(tie.theirs)}){place}"
    )


def explain_decision(policy: Policy, decision: Decision) -> Explanation:
    """Build the explanation graph of `decision` under `policy`."""
    return _Builder(policy, decision).build()
