"""Replay: evaluate again from a record alone, and compare the canonical decisions byte for byte.

The record's package files are written to a temporary folder (the folder they came from may
have been edited or deleted since), loaded with `load_policy` on the recorded backend with the
fact-model modules the operator trusts now, given the recorded parameter overrides, and asked
to decide the recorded facts as of the recorded date at the recorded stage (outside the stage's
period if the record says the evaluation was a what-if outside it). The outcome
document built from that evaluation (`engine.records.record.outcome_text`) must equal the
stored one exactly. Notes say what else differs: another engine version, a fact-model module
whose source changed, a record whose digest no longer matches (edited).
"""

from __future__ import annotations

import difflib
import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from engine.core.errors import EngineError, RecordError
from engine.embedding.policy import Policy, load_policy
from engine.language.factmodels import ModuleSpec
from engine.records.record import StoredRecord, draft_record, engine_version, fact_model_files
from engine.records.store import RecordStore

__all__ = ["ReplayReport", "replay_record"]


@dataclass(frozen=True)
class ReplayReport:
    """What a replay found: identical or not, both canonical texts, and notes."""

    record: StoredRecord
    recorded: str  # the stored outcome, canonical JSON
    replayed: str | None  # the new outcome, canonical JSON; None when the replay could not evaluate
    error: str | None = None  # why the replay could not evaluate
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return self.error is None and self.replayed == self.recorded

    def diff(self) -> str:
        """A unified diff of the two outcomes, pretty-printed (empty when identical)."""
        if self.replayed is None or self.identical:
            return ""
        before, after = (
            json.dumps(json.loads(t), indent=1, sort_keys=True, ensure_ascii=False)
            for t in (self.recorded, self.replayed)
        )
        lines = difflib.unified_diff(before.splitlines(), after.splitlines(), "recorded", "replayed", lineterm="", n=3)
        return "\n".join(lines)


def _safe(path: str) -> PurePosixPath:
    relative = PurePosixPath(path)
    if not path or relative.is_absolute() or ".." in relative.parts or "\\" in path or ":" in path:
        raise RecordError(f"the record names a package file `{path}` outside its package folder")
    return relative


def _write_package(store: RecordStore, record: StoredRecord, folder: Path) -> Path:
    """The record's files written under `folder`; the path of its manifest."""
    if not record.files:
        raise RecordError(f"record {record.seq} holds no package files")
    contents = store.contents([sha for _, sha in record.files])
    for path, sha in record.files:
        data = contents.get(sha)
        if data is None:
            raise RecordError(f"package file `{path}` of record {record.seq} is missing from the database")
        target = folder / _safe(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder / _safe(record.files[0][0])


def _notes(record: StoredRecord, policy: Policy) -> list[str]:
    notes = []
    if record.digest != record.id:  # readable: its outcome was built above
        notes.append("the record was edited after it was recorded (its digest no longer matches its id)")
    if record.engine_version != engine_version():
        notes.append(f"recorded with engine {record.engine_version}, replayed with {engine_version()}")
    before = {str(m["module"]): m["sha256"] for m in json.loads(record.fact_models)}
    after = {str(m["module"]): m["sha256"] for m in fact_model_files(policy)}
    for module in sorted(before.keys() | after.keys()):
        if before.get(module) != after.get(module):
            notes.append(f"fact-model module `{module}` changed since the record was made (its source differs)")
    return notes


def _evaluate(record: StoredRecord, manifest: Path, fact_modules: Iterable[ModuleSpec]) -> tuple[Policy, str]:
    policy = load_policy(manifest, backend=record.backend, fact_modules=fact_modules)  # type: ignore[arg-type]
    overrides = json.loads(record.overrides)
    if overrides:
        with_parameters = getattr(policy, "with_parameters", None)
        if with_parameters is None:
            raise RecordError("the record has parameter overrides, and this engine cannot apply overrides")
        policy = with_parameters(overrides)
    model = policy.load_cohort(json.loads(record.facts))
    result = policy.evaluate(model, as_of=record.as_of, stage=record.stage, outside_period=record.outside_period)
    return policy, draft_record(policy, result, model).outcome


def replay_record(store: RecordStore, id: str, fact_modules: Iterable[ModuleSpec] = ()) -> ReplayReport:
    """Evaluate the record `id` again from what it holds, and compare; `RecordError` if there is no such record."""
    record = store.get(id)
    try:
        recorded = record.outcome
    except ValueError as error:
        return ReplayReport(record=record, recorded="", replayed=None, error=f"the record cannot be read: {error}")
    with tempfile.TemporaryDirectory(prefix="policy-replay-") as folder:
        try:
            manifest = _write_package(store, record, Path(folder))
            policy, replayed = _evaluate(record, manifest, fact_modules)
        except (EngineError, ImportError, OSError, ValueError) as error:
            return ReplayReport(record=record, recorded=recorded, replayed=None, error=str(error))
        try:
            return ReplayReport(record=record, recorded=recorded, replayed=replayed, notes=_notes(record, policy))
        finally:
            policy.close()
