"""The Sovereign AI Foundation Model Project: typed facts and domain helpers.

The engine is generic; this package is the first programme it decides. Rule files in
`rules/sovereign_ai/` name these models in their manifest (`policy.facts:Consortium`).
"""

from policy.facts import (
    BenchmarkScores,
    CodeOrigin,
    Cohort,
    Component,
    Consortium,
    History,
    Model,
    Organisation,
    Panel,
    PanelFinding,
    Scores,
    StageContext,
    StageRecord,
    Upstream,
    Weights,
)

__all__ = [
    "BenchmarkScores",
    "CodeOrigin",
    "Cohort",
    "Component",
    "Consortium",
    "History",
    "Model",
    "Organisation",
    "Panel",
    "PanelFinding",
    "Scores",
    "StageContext",
    "StageRecord",
    "Upstream",
    "Weights",
]
