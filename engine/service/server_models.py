"""Response shapes of the HTTP service, for its OpenAPI schema.

The responses themselves are built by the engine's own `to_json` methods (the same JSON as the
CLI's `--format json`); these models only describe them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ErrorItem",
    "ErrorOut",
    "ReasonOut",
    "PlacementOut",
    "GrantOut",
    "AllocationOut",
    "TrackOut",
    "DecisionOut",
    "RankOut",
    "SummaryOut",
    "EvaluationOut",
    "ExplainJsonOut",
    "ParameterOut",
    "StageOut",
    "StagePeriodOut",
    "PolicyOut",
    "HealthOut",
    "DiagnosticOut",
    "InForceOut",
    "ReloadOut",
    "RecordFileOut",
    "FactModelOut",
    "RecordedDecisionOut",
    "RecordOut",
    "RecordSummaryOut",
    "RecordListOut",
]


class _Out(BaseModel):
    """Response shapes, for the OpenAPI schema (responses are built by the engine's `to_json`)."""

    model_config = ConfigDict(extra="allow")


class ErrorItem(_Out):
    path: str | None  # `body.consortia[4].scores.expert`, `query.as_of`, a rule file's `file:line:col`
    message: str
    code: str
    help: str | None = None  # a suggestion where there is one (`did you mean `expert`?`); absent otherwise


class ErrorOut(_Out):
    errors: list[ErrorItem]


class ReasonOut(_Out):
    rule: str
    title: str
    reference: str
    message: str
    status: Literal["held", "failed", "undetermined"]
    role: Literal["decisive", "passed"]
    depth: int
    missing: list[str] | None = None


class TieOut(_Out):
    other: str
    shared: Any
    other_rank: int | None
    key: int | None  # index of the ranking key that told them apart; null: equal on every key
    mine: Any
    theirs: Any
    across_last_place: bool


class PlacementOut(_Out):
    in_pool: bool | None
    rank: int | None
    pool_size: int | None
    slots: int | None
    keys: list[Any] | None
    rank_range: list[int] | None = None  # rank not known (missing facts): [best, worst]
    key_ranges: list[str] | None = None  # the keys as what they may be, in words
    settled_by: list[str] | None = None  # facts that would settle the rank (another subject's as `id: path`)
    ties: list[TieOut] | None = None


class GrantOut(_Out):
    id: str
    title: str
    quantity: float | None
    unit: str | None
    reference: str | None
    missing: list[str] | None = None


class AllocationOut(_Out):
    allotment: Literal["awarded", "partial", "does_not_fit", "no_place", "not_in_pool", "undetermined"]
    awarded: float | None
    requested: float | None
    capacity: float | None
    capacity_left: float | None
    track: str | None
    reserved: bool
    unit: str | None
    note: str


class DecisionOut(_Out):
    id: str
    outcome: str
    stage: str | None
    row: int | None
    reasons: list[ReasonOut]
    references: list[str]
    missing: list[str]
    placement: PlacementOut | None
    grants: list[GrantOut]
    awarded: float | None
    allocation: AllocationOut | None = None
    possible_outcomes: list[str] | None = None  # undetermined: the outcomes it may still get


class RankOut(_Out):
    id: str
    rank: int | None
    rank_range: list[int] | None = None


class TrackOut(_Out):
    id: str
    title: str | None
    reserved: int
    filled: int
    unfilled: int
    unfilled_to: Literal["release", "keep_open"]
    members: int


class SummaryOut(_Out):
    id: str
    title: str
    reference: str
    slots: int | None
    filled: int
    open: int | None  # places decided to stay open
    pending: int | None = None  # places that wait on undetermined decisions
    open_slots_to: str | None
    open_slots_title: str | None
    cut_off: list[Any] | None
    tie_at_cut_off: bool
    ranking: list[RankOut]
    missing: list[str] | None = None
    capacity: float | None = None
    capacity_used: float | None = None
    capacity_left: float | None = None
    unit: str | None = None
    tracks: list[TrackOut] | None = None
    period: dict[str, dt.date | None] | None = None
    outside_period: bool | None = None
    unbounded: list[str] | None = None  # missing ranking facts without bounds in the fact model


class EvaluationOut(_Out):
    """The same JSON as `policy evaluate --format json`."""

    policy: str
    version: str
    digest: str
    as_of: dt.date
    outside_period: bool | None = None  # true: the stage decided outside its declared period (a what-if)
    stage: str | None
    backend: str
    decisions: list[DecisionOut]
    summary: SummaryOut | None
    record: str | None = None  # with `record=true`: the id of the decision record appended


class ExplainJsonOut(_Out):
    """The same JSON as `policy explain --format json`: the decision and its node-link graph."""

    decision: DecisionOut
    graph: dict[str, Any]


class ParameterOut(_Out):
    name: str
    title: str
    reference: str
    unit: str | None
    value: Any
    since: dt.date | None
    in_force: bool
    note: str | None


class StagePeriodOut(_Out):
    from_: str = Field(alias="from")
    until: str | None


class StageOut(_Out):
    id: str
    title: str
    reference: str
    slots: str | None
    fills_slot: str | None
    open_slots_to: str | None
    outcomes: list[str]
    period: StagePeriodOut | None = None  # the declared `dates`; None: any date


class PolicyOut(_Out):
    name: str
    version: str
    digest: str
    title: str
    backend: str
    generation: int
    as_of: dt.date
    parameters: list[ParameterOut]
    stages: list[StageOut]
    warnings: int


class HealthOut(_Out):
    status: Literal["ok"]
    name: str
    version: str
    digest: str
    generation: int


class DiagnosticOut(_Out):
    code: str
    severity: str
    message: str
    span: str | None


class InForceOut(_Out):
    name: str
    version: str
    digest: str
    generation: int


class ReloadOut(_Out):
    status: Literal["loaded", "reloaded", "unchanged", "rejected"]
    in_force: InForceOut
    diagnostics: list[DiagnosticOut]
    at: dt.datetime
    errors: list[ErrorItem] | None = None


class RecordFileOut(_Out):
    path: str  # relative to the package folder; `policy.yaml` (the manifest) first
    sha256: str


class FactModelOut(_Out):
    module: str
    sha256: str | None  # of the module's source file when the record was made


class RecordedDecisionOut(_Out):
    subject: str
    outcome: str
    decision: DecisionOut
    explanation: dict[str, Any]  # node-link graph, spans relative to the package folder


class RecordOut(_Out):
    """One decision record, as `policy records show` prints it."""

    id: str
    seq: int
    prev: str
    recorded_at: str
    engine_version: str
    policy: str
    version: str
    digest: str
    files: list[RecordFileOut]
    fact_models: list[FactModelOut]
    facts: dict[str, Any]
    facts_sha256: str
    as_of: dt.date
    stage: str | None
    backend: str
    overrides: dict[str, Any]
    summary: SummaryOut | None
    decisions: list[RecordedDecisionOut]


class RecordSummaryOut(_Out):
    id: str
    seq: int
    recorded_at: str
    policy: str
    version: str
    digest: str
    as_of: dt.date
    stage: str | None
    backend: str
    decisions: int
    subject: str | None = None  # with `subject=`: that subject's decision in the record
    outcome: str | None = None


class RecordListOut(_Out):
    records: list[RecordSummaryOut]
