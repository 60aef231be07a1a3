"""A generic rules engine for public programmes: declarative YAML rules over typed facts.

    from engine import load_policy
    policy = load_policy("rules/sovereign_ai")
    result = policy.evaluate("examples/stage1.yaml")
    print(result.decisions["naver-cloud"].outcome)            # disqualified
    print(result.decisions["naver-cloud"].explain().to_text())

The pipeline runs one way: load (YAML with spans) → check (names, types, dependency graph) →
compile (closures) → evaluate (per subject, then the stage over the cohort) → explain.

Every name below is imported on first use (PEP 562), so a command imports only what it needs.
`import engine` (which any `import engine.x` runs first) imports only `engine.explanation`, which
registers the hooks of `Decision.explain()` and `Decision.why_not()` (they import the explanation
graph and why-not when first called), and what that needs: the results of an evaluation and the IR
they refer to (`engine.evaluation.result`, `engine.language.ir`, `expr`, `types`; pydantic with
them). The cyclic collector does not walk what these imports build (`engine.core.collector.long_lived`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from engine.core.collector import long_lived as _long_lived

with _long_lived():  # what these imports build lives as long as the process: see `engine.core.collector`
    from engine import explanation as _explanation  # noqa: F401  (registers the hooks of Decision.explain(), why_not())

if TYPE_CHECKING:  # what type checkers and editors see; at run time `__getattr__` imports each on first use
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
    from engine.records.store import RecordStore

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

# Where each public name lives (the module imported the first time the name is asked for).
_HOME = {
    "Diagnostic": "engine.core.diagnostics",
    "Span": "engine.core.diagnostics",
    **dict.fromkeys(
        (
            "BackendError",
            "BackendUnavailable",
            "EngineError",
            "EvaluationError",
            "FactError",
            "OutsidePeriod",
            "PolicyError",
            "RecordError",
        ),
        "engine.core.errors",
    ),
    "evaluate_many": "engine.embedding.batch",
    "BackendName": "engine.embedding.policy",
    "Policy": "engine.embedding.policy",
    "load_policy": "engine.embedding.policy",
    "PolicyStore": "engine.embedding.store",
    "ReloadReport": "engine.embedding.store",
    **dict.fromkeys(
        (
            "UNDETERMINED",
            "Allocation",
            "Decision",
            "Grant",
            "Placement",
            "PolicyIdentity",
            "Reason",
            "Result",
            "StageSummary",
            "TrackSummary",
        ),
        "engine.evaluation.result",
    ),
    "Explanation": "engine.explanation.explain",
    "RecordStore": "engine.records.store",  # brings SQLAlchemy, which nothing else needs
}


def __getattr__(name: str) -> Any:
    """A public name, imported on first use and then kept as an attribute of `engine`."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
