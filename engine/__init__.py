"""A generic rules engine for public programmes: declarative YAML rules over typed facts.

    from engine import load_policy
    policy = load_policy("rules/sovereign_ai")
    result = policy.evaluate("examples/stage1.yaml")
    print(result.decisions["naver-cloud"].outcome)            # disqualified
    print(result.decisions["naver-cloud"].explain().to_text())

The pipeline runs one way: load (YAML with spans) → check (names, types, dependency graph) →
compile (closures) → evaluate (per subject, then the stage over the cohort) → explain.
"""

from engine.core.diagnostics import Diagnostic, Span
from engine.core.errors import (
    BackendError,
    BackendUnavailable,
    EngineError,
    EvaluationError,
    FactError,
    OutsidePeriod,
    PolicyError,
    RecordError,
)
from engine.embedding.batch import evaluate_many
from engine.embedding.policy import BackendName, Policy, load_policy
from engine.embedding.store import PolicyStore, ReloadReport
from engine.evaluation.result import (
    UNDETERMINED,
    Allocation,
    Decision,
    Grant,
    Placement,
    PolicyIdentity,
    Reason,
    Result,
    StageSummary,
    TrackSummary,
)
from engine.explanation.explain import Explanation

__all__ = [
    "load_policy",
    "evaluate_many",
    "PolicyStore",
    "ReloadReport",
    "Policy",
    "BackendName",
    "Result",
    "Decision",
    "Reason",
    "Placement",
    "Grant",
    "Allocation",
    "TrackSummary",
    "StageSummary",
    "PolicyIdentity",
    "Explanation",
    "UNDETERMINED",
    "Diagnostic",
    "Span",
    "EngineError",
    "PolicyError",
    "FactError",
    "EvaluationError",
    "OutsidePeriod",
    "BackendError",
    "BackendUnavailable",
    "RecordError",
    "RecordStore",
]


def __getattr__(name: str) -> object:
    """`engine.RecordStore` is imported on first use: the records pass brings SQLAlchemy, which
    nothing else needs (the command line starts faster without it)."""
    if name == "RecordStore":
        from engine.records.store import RecordStore

        return RecordStore
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
