"""A record of one evaluation: drafted from a policy, its facts and its result, then chained.

A `Draft` holds everything a record keeps but its place in the chain: the package's files
(path → SHA-256, with their contents), the fact-model modules with the SHA-256 of their source
file, the facts as canonical JSON, the as-of date, stage, backend, engine version, parameter
overrides, the stage summary and each decision with its reasons and explanation graph. The
store gives it a place (`seq`, `prev`, `recorded_at`) and its digest becomes its id.

Two documents are hashed, both canonical JSON:

- the *outcome* (`outcome_text`): policy identity, as-of date, stage, backend, summary and every
  decision with its explanation, in order. Replay rebuilds it from a new evaluation and
  compares the two texts byte for byte.
- the *record* (`record_document`): its place in the chain, everything the evaluation started
  from, and the SHA-256 of the outcome. Its SHA-256 is the record's id, and the next record's
  `prev`: an edit anywhere changes a digest the chain holds.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from engine.core.errors import RecordError
from engine.embedding.policy import Policy
from engine.evaluation.result import Result
from engine.records.canonical import (
    canonical_facts,
    canonical_graph,
    canonical_json,
    canonical_value,
    package_root,
    sha256_hex,
)

__all__ = [
    "DecisionRow",
    "Draft",
    "StoredRecord",
    "draft_record",
    "evaluate_and_record",
    "outcome_text",
    "record_document",
    "fact_model_files",
    "engine_version",
    "outside_period_of",
    "DISTRIBUTION",
]

DISTRIBUTION = "sovereign-policy"


def engine_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class DecisionRow:
    """One decision as stored: canonical JSON of the decision and of its explanation graph."""

    subject: str
    outcome: str
    decision: str
    explanation: str

    def to_json(self) -> dict[str, Any]:
        """The decision as the outcome document holds it: its subject and outcome columns included."""
        return {
            "subject": self.subject,
            "outcome": self.outcome,
            "decision": json.loads(self.decision),
            "explanation": json.loads(self.explanation),
        }


@dataclass(frozen=True)
class Draft:
    """An evaluation ready to be recorded: everything but its place in the chain."""

    policy: Mapping[str, str]  # name, version, digest
    files: tuple[tuple[str, str], ...]  # (path relative to the package, sha256), the manifest first
    contents: Mapping[str, bytes]  # sha256 → the file's bytes
    fact_models: str  # canonical JSON: [{"module", "sha256"}]
    facts: str  # canonical JSON of the cohort
    as_of: str
    stage: str | None
    backend: str
    engine_version: str
    overrides: str  # canonical JSON, {} when none
    summary: str  # canonical JSON of the stage summary (or null)
    decisions: tuple[DecisionRow, ...]

    @property
    def outcome(self) -> str:
        return outcome_text(self.policy, self.as_of, self.stage, self.backend, self.summary, self.decisions)


def outside_period_of(summary: str) -> bool:
    """Whether a recorded stage summary (canonical JSON) says the stage decided outside its period."""
    data = json.loads(summary) if summary else None
    return bool(isinstance(data, dict) and data.get("outside_period"))


def outcome_text(
    policy: Mapping[str, str],
    as_of: str,
    stage: str | None,
    backend: str,
    summary: str,
    decisions: tuple[DecisionRow, ...],
) -> str:
    """The canonical decisions of an evaluation: what replay must reproduce byte for byte."""
    document = {
        "policy": dict(policy),
        "as_of": as_of,
        "stage": stage,
        "backend": backend,
        "summary": json.loads(summary),
        "decisions": [d.to_json() for d in decisions],
    }
    return canonical_json(document)


def fact_model_files(policy: Policy) -> list[dict[str, str | None]]:
    """The modules defining the package's fact models, each with the SHA-256 of its source file."""
    schema = policy.ir.schema
    found = []
    for name in sorted({schema.cohort.__module__, schema.subject.__module__}):
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        try:
            digest = sha256_hex(Path(file).read_bytes()) if file else None
        except OSError:
            digest = None
        found.append({"module": name, "sha256": digest})
    return found


def _cohort_of(policy: Policy, result: Result, cohort: Any) -> BaseModel:
    if isinstance(cohort, BaseModel):
        return cohort
    decided = next((d.cohort for d in result.decisions.values() if d.cohort is not None), None)
    if decided is not None:
        return decided  # type: ignore[no-any-return]
    if cohort is None:
        raise RecordError("which facts were decided? pass the cohort to record an evaluation without decisions")
    return policy.load_cohort(cohort)


def draft_record(policy: Policy, result: Result, cohort: Any = None) -> Draft:
    """The record of `result`, an evaluation by `policy` (its explanations are built here).

    The facts recorded are those the decisions were made with (`Decision.cohort`); `cohort`
    (model, dict or path) is needed only for an evaluation without any decision.
    """
    if not policy.sources:
        raise RecordError("this policy holds no package files (load it with `load_policy` to record its decisions)")
    facts = canonical_facts(_cohort_of(policy, result, cohort))
    root = package_root(policy.path)
    rows = tuple(
        DecisionRow(
            subject=d.id,
            outcome=d.outcome,
            decision=canonical_value(d.to_json(), root),
            explanation=canonical_graph(d.explain().to_json(), root),
        )
        for d in result.decisions.values()
    )
    identity = result.policy
    return Draft(
        policy={"name": identity.name, "version": identity.version, "digest": identity.digest},
        files=tuple((path, sha256_hex(data)) for path, data in policy.sources.items()),
        contents={sha256_hex(data): bytes(data) for data in policy.sources.values()},
        fact_models=canonical_json(fact_model_files(policy)),
        facts=facts,
        as_of=result.as_of.isoformat(),
        stage=result.stage,
        backend=result.backend,
        engine_version=engine_version(),
        overrides=canonical_value(getattr(policy, "overrides", None) or {}, ""),
        summary=canonical_value(result.summary.to_json() if result.summary else None, root),
        decisions=rows,
    )


def evaluate_and_record(
    store: Any,
    policy: Policy,
    cohort: Any,
    as_of: dt.date | str | None = None,
    stage: str | None = None,
    *,
    outside_period: bool = False,
) -> tuple[Result, StoredRecord]:
    """Evaluate `cohort` (model, dict or file path) and append its record to `store` (a `RecordStore`).

    Nothing is written unless the evaluation and the record's drafting both succeed. A what-if
    outside the stage's period (`outside_period`) is recorded as such (in the stage summary) and
    replayed the same way.
    """
    model = policy.load_cohort(cohort)
    result = policy.evaluate(model, as_of=as_of, stage=stage, outside_period=outside_period)
    return result, store.append(draft_record(policy, result, model))


@dataclass(frozen=True)
class StoredRecord:
    """A record as the database holds it (its JSON columns as canonical text)."""

    seq: int
    id: str
    prev: str
    recorded_at: str
    engine_version: str
    policy: Mapping[str, str]
    files: tuple[tuple[str, str], ...]
    fact_models: str
    facts: str
    facts_sha256: str
    as_of: str
    stage: str | None
    backend: str
    overrides: str
    summary: str
    decisions: tuple[DecisionRow, ...]

    @property
    def outcome(self) -> str:
        return outcome_text(self.policy, self.as_of, self.stage, self.backend, self.summary, self.decisions)

    @property
    def outside_period(self) -> bool:
        """Whether the stage decided outside its declared period (`--outside-period`): the summary says so."""
        return outside_period_of(self.summary)

    def document(self) -> dict[str, Any]:
        """What the record's digest is the SHA-256 of (as canonical JSON)."""
        return record_document(self, seq=self.seq, prev=self.prev, recorded_at=self.recorded_at)

    @property
    def digest(self) -> str:
        """The digest of the record as stored now: its id, unless it was edited."""
        return sha256_hex(canonical_json(self.document()))

    def to_json(self) -> dict[str, Any]:
        """The whole record as JSON data (the HTTP service's and `policy records show`'s answer)."""
        return {
            "id": self.id,
            "seq": self.seq,
            "prev": self.prev,
            "recorded_at": self.recorded_at,
            "engine_version": self.engine_version,
            "policy": self.policy["name"],
            "version": self.policy["version"],
            "digest": self.policy["digest"],
            "files": [{"path": p, "sha256": s} for p, s in self.files],
            "fact_models": json.loads(self.fact_models),
            "facts": json.loads(self.facts),
            "facts_sha256": self.facts_sha256,
            "as_of": self.as_of,
            "outside_period": self.outside_period,
            "stage": self.stage,
            "backend": self.backend,
            "overrides": json.loads(self.overrides),
            "summary": json.loads(self.summary),
            "decisions": [d.to_json() for d in self.decisions],
        }


def record_document(record: Draft | StoredRecord, seq: int, prev: str, recorded_at: str) -> dict[str, Any]:
    """The record's hashed document: its place in the chain, its inputs, and its outcome's SHA-256."""
    return {
        "seq": seq,
        "prev": prev,
        "recorded_at": recorded_at,
        "engine_version": record.engine_version,
        "policy": dict(record.policy),
        "files": [list(f) for f in record.files],
        "fact_models": json.loads(record.fact_models),
        "facts_sha256": sha256_hex(record.facts),
        "as_of": record.as_of,
        "stage": record.stage,
        "backend": record.backend,
        "overrides": json.loads(record.overrides),
        "outcome_sha256": sha256_hex(record.outcome),
    }
