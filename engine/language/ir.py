"""The engine's internal model of a checked policy: small frozen dataclasses.

The checker builds these from the file models; the compiler and evaluators read only these (never
YAML, never the file models). Spans never take part in equality.
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from engine.core.diagnostics import Span
from engine.core.errors import EvaluationError
from engine.language.expr import Node
from engine.language.types import Ty

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "Dependencies",
    "Parameter",
    "Table",
    "Scale",
    "Value",
    "Template",
    "Rule",
    "OutcomeRow",
    "OutcomeGrant",
    "Track",
    "Capacity",
    "RankKey",
    "OpenSlots",
    "Stage",
    "FactSchema",
    "StageInfo",
    "Invariant",
    "PolicyIR",
    "RESERVED",
]

RESERVED = frozenset({"context", "stage", "True", "False", "None"})


Key = str | int


@dataclass(frozen=True)
class Table:
    """A parameter's values by one or two keys (`rows`: keys → value); `otherwise` for a key without a row.

    `has_otherwise` False: a key without a row has no value (the result is undetermined).
    """

    rows: tuple[tuple[tuple[Key, ...], Any], ...]
    otherwise: Any = None
    has_otherwise: bool = False
    spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)  # where each row is written

    @property
    def arity(self) -> int:
        return len(self.rows[0][0]) if self.rows else 1

    @functools.cached_property
    def _index(self) -> dict[tuple[Key, ...], Any]:
        return dict(self.rows)

    def lookup(self, keys: tuple[Any, ...]) -> tuple[bool, Any, tuple[Key, ...] | None]:
        """(found, value, the row's keys or None for `otherwise`) for `keys`."""
        try:
            return True, self._index[keys], keys
        except (KeyError, TypeError):  # TypeError: a key that cannot be hashed is not a row either
            return self.has_otherwise, self.otherwise, None

    def to_json(self) -> dict[str, Any]:
        """`{"rows": [{"keys": [...], "value": ...}], "otherwise": ...}` (no `otherwise` key without one)."""
        found: dict[str, Any] = {"rows": [{"keys": list(keys), "value": value} for keys, value in self.rows]}
        return found | ({"otherwise": self.otherwise} if self.has_otherwise else {})

    def __str__(self) -> str:
        rows = ", ".join(f"{_keys_text(keys)}: {value}" for keys, value in self.rows)
        return "{" + rows + (f"; otherwise {self.otherwise}" if self.has_otherwise else "") + "}"


def _keys_text(keys: tuple[Any, ...]) -> str:
    return ", ".join(str(k) for k in keys)


@dataclass(frozen=True)
class Scale:
    """Brackets (threshold, rate), ascending: `marginal` sums each slice at its rate; `single_rate` applies
    the rate of the bracket the amount falls in to the whole amount. Below the first threshold: 0."""

    kind: str  # marginal | single_rate
    brackets: tuple[tuple[float, float], ...]
    spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)  # where each bracket is written

    def bracket_of(self, amount: float) -> int | None:
        """The index of the bracket `amount` falls in (None: below the first threshold)."""
        found = None
        for index, (threshold, _) in enumerate(self.brackets):
            if amount >= threshold:
                found = index
        return found

    def apply(self, amount: float) -> float:
        index = self.bracket_of(amount)
        if index is None:
            return 0.0
        if self.kind == "single_rate":
            return float(amount * self.brackets[index][1])
        total = 0.0
        for i, (threshold, rate) in enumerate(self.brackets[: index + 1]):
            upper = self.brackets[i + 1][0] if i < index else amount
            total += (upper - threshold) * rate
        return total

    def to_json(self) -> dict[str, Any]:
        """`{"kind": "marginal", "brackets": [{"threshold": ..., "rate": ...}]}`."""
        return {"kind": self.kind, "brackets": [{"threshold": t, "rate": r} for t, r in self.brackets]}

    def __str__(self) -> str:
        brackets = ", ".join(f"from {threshold} at {rate}" for threshold, rate in self.brackets)
        return f"{self.kind.replace('_', ' ')} scale {{{brackets}}}"


@dataclass(frozen=True)
class Parameter:
    """A parameter of the package: its type and its values by the date each takes effect."""

    name: str
    title: str
    reference: str
    ty: Ty
    values: tuple[tuple[dt.date | None, Any], ...]  # (date it takes effect, value); None = always
    unit: str | None = None
    span: Span = field(default=Span(""), compare=False)

    def value_on(self, as_of: dt.date) -> tuple[Any, dt.date | None]:
        """The value in force on `as_of` and the date it took effect."""
        in_force = [(since, value) for since, value in self.values if since is None or since <= as_of]
        if not in_force:
            first = min(since for since, _ in self.values if since is not None)
            raise EvaluationError(
                f"parameter `{self.name}` has no value in force on {as_of} (its first value takes effect "
                f"on {first}); defined at {self.span}"
            )
        since, value = max(in_force, key=lambda pair: pair[0] or dt.date.min)
        return value, since

    @property
    def shape(self) -> str:
        """`table`, `scale` or `value`: how the parameter is used (`name(key)` for the first two)."""
        first = self.values[0][1] if self.values else None
        return "table" if isinstance(first, Table) else ("scale" if isinstance(first, Scale) else "value")


@dataclass(frozen=True)
class Value:
    """A named value: an expression over facts, parameters and other values."""

    name: str
    title: str
    expr: Node
    ty: Ty
    reference: str | None = None
    unit: str | None = None
    span: Span = field(default=Span(""), compare=False)


@dataclass(frozen=True)
class Template:
    """A message with `{expression}` placeholders: literal text and expressions, alternating."""

    parts: tuple[str | Node, ...]
    translations: tuple[tuple[str, Template], ...] = ()  # the same message in other languages (`ko`, ...)


@dataclass(frozen=True)
class Rule:
    """A rule: a condition with its legal reference and the messages for when it held or failed."""

    id: str
    title: str
    reference: str
    when: Node
    held: Template | None = None
    failed: Template | None = None
    description: str | None = None
    span: Span = field(default=Span(""), compare=False)


@dataclass(frozen=True)
class OutcomeGrant:
    """What an outcome row brings the subject it decides; `quantity` a number expression, if given."""

    id: str
    title: str
    quantity: Node | None = None
    unit: str | None = None
    reference: str | None = None
    span: Span = field(default=Span(""), compare=False)


@dataclass(frozen=True)
class OutcomeRow:
    """One row of a stage's outcome table: the outcome its condition gives (first row that holds wins)."""

    index: int
    outcome: str
    when: Node
    title: str | None = None
    span: Span = field(default=Span(""), compare=False)
    grants: tuple[OutcomeGrant, ...] = ()


@dataclass(frozen=True)
class Track:
    """Places reserved for the subjects for whom `when` holds; `unfilled` ones released or kept open."""

    id: str
    title: str | None
    when: Node
    reserved: Node
    unfilled: str  # release | keep_open
    span: Span = field(default=Span(""), compare=False)


@dataclass(frozen=True)
class Capacity:
    """What a stage allocates in rank order: `total` (parameters, context), each subject `takes` some."""

    total: Node
    takes: Node
    does_not_fit: str  # skip | partial
    unit: str | None = None


@dataclass(frozen=True)
class RankKey:
    """One key a stage ranks its pool by."""

    expr: Node
    descending: bool
    title: str | None = None


@dataclass(frozen=True)
class OpenSlots:
    """Where a stage's unfilled slots go (`to`), with the reference that says so."""

    to: str
    title: str
    reference: str


@dataclass(frozen=True)
class Stage:
    """A stage: its pool, ranking, slots, outcome rows and, if any, capacity, tracks and period."""

    id: str
    title: str
    reference: str
    pool: Node
    rank_by: tuple[RankKey, ...]
    slots: Node | None
    fills_slot: str | None
    open_slots: OpenSlots | None
    outcomes: tuple[OutcomeRow, ...]
    span: Span = field(default=Span(""), compare=False)
    dates: tuple[dt.date, dt.date | None] | None = None  # the period it applies to (from, until), if declared
    capacity: Capacity | None = None
    tracks: tuple[Track, ...] = ()
    objection_period: str | None = None  # the parameter giving the days a subject has to object

    @property
    def outcome_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(row.outcome for row in self.outcomes))


@dataclass(frozen=True)
class FactSchema:
    """The package's fact models and the fields of the cohort that the engine reads."""

    subject: type[BaseModel]
    cohort: type[BaseModel]
    subjects_field: str
    context_field: str | None
    stage_field: str | None
    date_field: str | None
    id_field: str
    name_field: str | None = None  # the subject's display name, shown to people beside its id


Allotment = Literal["awarded", "partial", "does_not_fit", "no_place", "not_in_pool"]


class StageInfo(BaseModel):
    """What a stage tells each subject: usable in rules as `stage.rank`, `stage.slots`...

    A stage with `capacity` or `tracks` also tells `stage.placed` (the allocation gave it a
    place), `stage.awarded` (with `capacity`: what it was given, 0 for nothing),
    `stage.allotment` (how it went: `awarded`, `partial`, `does_not_fit`, `no_place`,
    `not_in_pool`), `stage.capacity`, `stage.capacity_left` (what was left when its turn came),
    `stage.track` (its track's id, `general` for none) and `stage.reserved` (it took a reserved place).
    """

    id: str
    in_pool: bool | None = None
    rank: int | None = None
    pool_size: int | None = None
    slots: int | None = None
    placed: bool | None = None
    awarded: float | None = None
    allotment: Allotment | None = None
    capacity: float | None = None
    capacity_left: float | None = None
    track: str | None = None
    reserved: bool | None = None


@dataclass(frozen=True)
class Invariant:
    """A statement checked by search: `holds` (and `when`) over the views its `kind` provides."""

    id: str
    title: str
    reference: str
    kind: str  # subject | cohort | monotonic | permutation
    stages: tuple[str, ...]  # the stages it applies to
    when: Node | None = None
    holds: Node | None = None
    change: tuple[str, ...] = ()  # monotonic: numeric fact paths of one subject that change
    direction: str = "increase"
    uses: frozenset[str] = frozenset()  # what it reads, as graph node ids: `rule:sovereign`, `fact:scores.expert`
    span: Span = field(default=Span(""), compare=False)


class Dependencies:
    """The static dependency graph as plain data: an edge from what is used to what uses it.

    Nodes are ids (`rule:sovereign`, `fact:scores.expert`) with their attributes (kind, name, span,
    ...), edges carry theirs (the span of the use, its role). The checker builds it and asks what it
    needs of it (uses, users, the dependency order, what a node leads to) without networkx, which
    loading a package therefore never imports; `PolicyIR.graph` is the same graph as a
    `networkx.DiGraph`, built on first use for what reads it (explanations, search, the graph commands).
    """

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}  # in the order they were first added
        self.edges: dict[tuple[str, str], dict[str, Any]] = {}  # (used, user) → attributes, in order
        self._succ: dict[str, dict[str, dict[str, Any]]] = {}
        self._pred: dict[str, dict[str, dict[str, Any]]] = {}
        self._networkx: nx.DiGraph | None = None

    def add_node(self, node: str, **attrs: Any) -> None:
        """Add `node`, or update the attributes of one already there (as `networkx.DiGraph.add_node`)."""
        if node not in self.nodes:
            self.nodes[node], self._succ[node], self._pred[node] = {}, {}, {}
        self.nodes[node].update(attrs)

    def add_edge(self, used: str, user: str, **attrs: Any) -> None:
        """Add the edge (its ends too), or update the attributes of one already there."""
        for node in (used, user):
            if node not in self.nodes:
                self.add_node(node)
        data = self.edges.get((used, user))
        if data is None:
            data = self.edges[(used, user)] = {}
            self._succ[used][user] = self._pred[user][used] = data
        data.update(attrs)

    def __contains__(self, node: object) -> bool:
        return node in self.nodes

    def __iter__(self) -> Iterator[str]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def successors(self, node: str) -> Iterator[str]:
        """What uses `node` directly."""
        return iter(self._succ.get(node, ()))

    def predecessors(self, node: str) -> Iterator[str]:
        """What `node` uses directly."""
        return iter(self._pred.get(node, ()))

    def descendants(self, node: str) -> set[str]:
        """Everything that uses `node`, directly or through others."""
        return self._reach(node, self._succ)

    def ancestors(self, node: str) -> set[str]:
        """Everything `node` uses, directly or through others."""
        return self._reach(node, self._pred)

    @staticmethod
    def _reach(node: str, step: dict[str, dict[str, dict[str, Any]]]) -> set[str]:
        seen: set[str] = set()
        todo = list(step.get(node, ()))
        while todo:
            n = todo.pop()
            if n not in seen:
                seen.add(n)
                todo.extend(step[n])
        seen.discard(node)  # as networkx: a node is not its own descendant, even in a cycle
        return seen

    def order(self, among: Iterable[str]) -> list[str] | None:
        """The nodes `among`, each after what it uses among them, ties broken by id (the lexicographical
        topological order, as networkx gives it); None if they depend on each other in a cycle."""
        members = set(among)
        needs = {n: sum(1 for p in self._pred[n] if p in members) for n in members}
        ready = [n for n, k in needs.items() if k == 0]
        heapq.heapify(ready)
        found: list[str] = []
        while ready:
            n = heapq.heappop(ready)
            found.append(n)
            for user in self._succ[n]:
                if user in members:
                    needs[user] -= 1
                    if needs[user] == 0:
                        heapq.heappush(ready, user)
        return found if len(found) == len(members) else None

    def as_networkx(self) -> nx.DiGraph:
        """`to_networkx()`, built once and then shared (as by every IR a what-if change derives from this one)."""
        if self._networkx is None:
            self._networkx = self.to_networkx()
        return self._networkx

    def to_networkx(self) -> nx.DiGraph:
        """The same nodes and edges, in the same order, with the same attributes, as a `networkx.DiGraph`."""
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_nodes_from((n, dict(a)) for n, a in self.nodes.items())
        graph.add_edges_from((u, v, dict(a)) for (u, v), a in self.edges.items())
        return graph


@dataclass(frozen=True)
class PolicyIR:
    """A checked package: its definitions in dependency order, stages, invariants and dependency graph."""

    name: str
    version: str
    title: str
    digest: str
    schema: FactSchema
    parameters: dict[str, Parameter]
    values: dict[str, Value]
    rules: dict[str, Rule]
    stages: dict[str, Stage]
    order: tuple[str, ...]  # values and rules in dependency order
    stage_dependent: frozenset[str]  # values and rules that use `stage.*`
    dependencies: Dependencies = field(compare=False, hash=False, repr=False)  # the graph, without networkx
    files: tuple[str, ...] = ()
    invariants: tuple[Invariant, ...] = ()
    overrides: tuple[tuple[str, Any], ...] = ()  # what-if: parameters set without editing the files
    labels: dict[str, str] = field(default_factory=dict, compare=False)  # outcome name → words (a `Text`)

    @property
    def graph(self) -> nx.DiGraph:
        """The static dependency graph as a `networkx.DiGraph` (built from `dependencies` on first use, then kept)."""
        return self.dependencies.as_networkx()

    def kind_of(self, name: str) -> str | None:
        """What a bare name in an expression refers to (outside comprehension variables)."""
        if name in ("context", "stage"):
            return name
        for kind, table in (("parameter", self.parameters), ("value", self.values), ("rule", self.rules)):
            if name in table:
                return kind
        if name in self.schema.subject.model_fields or name in self.schema.subject.model_computed_fields:
            return "fact"
        return None
