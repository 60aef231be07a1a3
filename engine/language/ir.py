"""The engine's internal model of a checked policy: small frozen dataclasses.

The checker builds these from the file models; the compiler and evaluators read only these (never
YAML, never the file models). Spans never take part in equality.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from pydantic import BaseModel

from engine.core.diagnostics import Span
from engine.core.errors import EvaluationError
from engine.language.expr import Node
from engine.language.types import Ty

__all__ = [
    "Parameter",
    "Value",
    "Template",
    "Rule",
    "OutcomeRow",
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


@dataclass(frozen=True)
class Parameter:
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


@dataclass(frozen=True)
class Value:
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


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    reference: str
    when: Node
    held: Template | None = None
    failed: Template | None = None
    description: str | None = None
    span: Span = field(default=Span(""), compare=False)


@dataclass(frozen=True)
class OutcomeRow:
    index: int
    outcome: str
    when: Node
    title: str | None = None
    span: Span = field(default=Span(""), compare=False)


@dataclass(frozen=True)
class RankKey:
    expr: Node
    descending: bool
    title: str | None = None


@dataclass(frozen=True)
class OpenSlots:
    to: str
    title: str
    reference: str


@dataclass(frozen=True)
class Stage:
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

    @property
    def outcome_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(row.outcome for row in self.outcomes))


@dataclass(frozen=True)
class FactSchema:
    subject: type[BaseModel]
    cohort: type[BaseModel]
    subjects_field: str
    context_field: str | None
    stage_field: str | None
    date_field: str | None
    id_field: str


class StageInfo(BaseModel):
    """What a stage tells each subject: usable in rules as `stage.rank`, `stage.slots`..."""

    id: str
    in_pool: bool | None = None
    rank: int | None = None
    pool_size: int | None = None
    slots: int | None = None


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


@dataclass(frozen=True)
class PolicyIR:
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
    graph: nx.DiGraph = field(compare=False, hash=False)
    files: tuple[str, ...] = ()
    invariants: tuple[Invariant, ...] = ()
    overrides: tuple[tuple[str, Any], ...] = ()  # what-if: parameters set without editing the files

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
