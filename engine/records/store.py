"""The record store: append a record to the chain, read records and a subject's history back.

`append` runs in one write transaction (the database's write lock held throughout): it reads
the chain's length and head, gives the draft the next `seq` and `prev`, stores the files it
does not hold yet, the record and its decisions, and moves the head. Appends from any number
of threads and processes therefore follow one another; a failed append leaves nothing behind.

A record is named by its id (64 hex digits) or any unique prefix of at least `MIN_PREFIX`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, func, inspect, select

from engine.core.errors import RecordError
from engine.records import schema
from engine.records.canonical import canonical_json, sha256_hex
from engine.records.database import Database, open_database
from engine.records.record import DecisionRow, Draft, StoredRecord, record_document

__all__ = ["RecordStore", "HistoryEntry", "RecordSummary", "MIN_PREFIX"]

MIN_PREFIX = 8
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class RecordSummary:
    """One line of a listing: a record's place, its package and its evaluation, and optionally one decision."""

    id: str
    seq: int
    recorded_at: str
    policy: str
    version: str
    digest: str
    as_of: str
    stage: str | None
    backend: str
    decisions: int
    subject: str | None = None
    outcome: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in ("id", "seq", "recorded_at", "policy", "version", "digest", "as_of")}
        data.update({"stage": self.stage, "backend": self.backend, "decisions": self.decisions})
        if self.subject is not None:
            data.update({"subject": self.subject, "outcome": self.outcome})
        return data


HistoryEntry = RecordSummary  # a subject's decision in one record: `subject` and `outcome` are set


class RecordStore:
    """Decision records in one database (SQLite file or PostgreSQL), hash-chained, append-only."""

    def __init__(self, database: Database) -> None:
        self.database = database

    @classmethod
    def open(cls, target: str, create: bool = False) -> RecordStore:
        """The store at `target` (SQLite path or URL); `create` makes the database and its tables if missing."""
        database = open_database(target, create=create)
        store = cls(database)
        try:
            store._prepare(create)
        except BaseException:
            database.close()
            raise
        return store

    @property
    def name(self) -> str:
        return self.database.name

    def close(self) -> None:
        self.database.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _prepare(self, create: bool) -> None:
        with self.database.transaction(write=create) as connection:
            if create:
                schema.metadata.create_all(connection)
                if self._chain_row(connection) is None:
                    connection.execute(
                        schema.chain.insert().values(
                            name=schema.CHAIN, length=0, head=schema.GENESIS, schema_version=schema.SCHEMA_VERSION
                        )
                    )
            if not inspect(connection).has_table("record_chain"):
                raise RecordError(f"`{self.name}` holds no decision records (no `record_chain` table)")
            row = self._chain_row(connection)
            if row is None:
                raise RecordError(f"`{self.name}` has no record chain (its `record_chain` row is missing)")
            if row.schema_version > schema.SCHEMA_VERSION:
                raise RecordError(
                    f"`{self.name}` holds records of schema {row.schema_version}; this engine reads up to "
                    f"{schema.SCHEMA_VERSION}"
                )

    @staticmethod
    def _chain_row(connection: Connection) -> Row[Any] | None:
        return connection.execute(select(schema.chain).where(schema.chain.c.name == schema.CHAIN)).first()

    # -- writing --------------------------------------------------------------------------------

    def append(self, draft: Draft) -> StoredRecord:
        """Chain `draft` after the last record and store it, in one transaction; the stored record."""
        with self.database.transaction(write=True) as connection:
            head = self._chain_row(connection)
            if head is None:
                raise RecordError(f"`{self.name}` has no record chain")
            seq, prev = head.length + 1, head.head
            recorded_at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
            document = record_document(draft, seq=seq, prev=prev, recorded_at=recorded_at)
            record_id = sha256_hex(canonical_json(document))
            self._store_files(connection, draft)
            connection.execute(
                schema.records.insert().values(**self._columns(draft, seq, record_id, prev, recorded_at))
            )
            if draft.decisions:
                connection.execute(
                    schema.decisions.insert(),
                    [{"record_seq": seq, "position": i, **vars_of(row)} for i, row in enumerate(draft.decisions)],
                )
            connection.execute(
                schema.chain.update().where(schema.chain.c.name == schema.CHAIN).values(length=seq, head=record_id)
            )
        return StoredRecord(
            seq=seq,
            id=record_id,
            prev=prev,
            recorded_at=recorded_at,
            engine_version=draft.engine_version,
            policy=dict(draft.policy),
            files=draft.files,
            fact_models=draft.fact_models,
            facts=draft.facts,
            facts_sha256=sha256_hex(draft.facts),
            as_of=draft.as_of,
            stage=draft.stage,
            backend=draft.backend,
            overrides=draft.overrides,
            summary=draft.summary,
            decisions=draft.decisions,
        )

    @staticmethod
    def _store_files(connection: Connection, draft: Draft) -> None:
        wanted = sorted(draft.contents)
        held = set(connection.scalars(select(schema.files.c.sha256).where(schema.files.c.sha256.in_(wanted))))
        missing = [{"sha256": s, "content": draft.contents[s]} for s in wanted if s not in held]
        if missing:
            connection.execute(schema.files.insert(), missing)

    @staticmethod
    def _columns(draft: Draft, seq: int, record_id: str, prev: str, recorded_at: str) -> dict[str, Any]:
        return {
            "seq": seq,
            "id": record_id,
            "prev": prev,
            "recorded_at": recorded_at,
            "engine_version": draft.engine_version,
            "policy_name": draft.policy["name"],
            "policy_version": draft.policy["version"],
            "policy_digest": draft.policy["digest"],
            "files": canonical_json([list(f) for f in draft.files]),
            "fact_models": draft.fact_models,
            "facts": draft.facts,
            "facts_sha256": sha256_hex(draft.facts),
            "as_of": draft.as_of,
            "stage": draft.stage,
            "backend": draft.backend,
            "overrides": draft.overrides,
            "summary": draft.summary,
        }

    # -- reading --------------------------------------------------------------------------------

    def _lookup(self, id: str) -> int | None:
        """The `seq` of the record named by `id`, None if no record has it; `RecordError` if `id` is not one."""
        key = id.strip().lower()
        if len(key) < MIN_PREFIX or len(key) > 64 or not _HEX.fullmatch(key):
            raise RecordError(
                f"`{id}` is not a record id: give the id (64 hex digits) or at least its first {MIN_PREFIX}"
            )
        with self.database.transaction() as connection:
            found = connection.execute(
                select(schema.records.c.seq).where(schema.records.c.id.like(key + "%")).limit(2)
            ).all()
        if len(found) > 1:
            raise RecordError(f"`{id}` names more than one record in `{self.name}`: give more of the id")
        return int(found[0].seq) if found else None

    def resolve(self, id: str) -> int:
        """The `seq` of the record named by `id` (whole, or a unique prefix); `RecordError` if none or several."""
        seq = self._lookup(id)
        if seq is None:
            raise RecordError(f"no record `{id}` in `{self.name}`")
        return seq

    def get(self, id: str) -> StoredRecord:
        """The record named by `id` (whole, or a unique prefix of at least 8 hex digits)."""
        record = self.find(id)
        if record is None:
            raise RecordError(f"no record `{id}` in `{self.name}`")
        return record

    def find(self, id: str) -> StoredRecord | None:
        """Like `get`, but None when no record has this id."""
        seq = self._lookup(id)
        if seq is None:
            return None
        with self.database.transaction() as connection:
            row = connection.execute(select(schema.records).where(schema.records.c.seq == seq)).one()
            return self._record(connection, row)

    def scan(self) -> Iterator[StoredRecord]:
        """Every record in chain order (what `verify_chain` walks)."""
        with self.database.transaction() as connection:
            for row in connection.execute(select(schema.records).order_by(schema.records.c.seq)).all():
                yield self._record(connection, row)

    def _record(self, connection: Connection, row: Row[Any]) -> StoredRecord:
        decisions = connection.execute(
            select(schema.decisions)
            .where(schema.decisions.c.record_seq == row.seq)
            .order_by(schema.decisions.c.position)
        ).all()
        return StoredRecord(
            seq=row.seq,
            id=row.id,
            prev=row.prev,
            recorded_at=row.recorded_at,
            engine_version=row.engine_version,
            policy={"name": row.policy_name, "version": row.policy_version, "digest": row.policy_digest},
            files=tuple((str(f[0]), str(f[1])) for f in _json_list(row.files) if isinstance(f, list) and len(f) == 2),
            fact_models=row.fact_models,
            facts=row.facts,
            facts_sha256=row.facts_sha256,
            as_of=row.as_of,
            stage=row.stage,
            backend=row.backend,
            overrides=row.overrides,
            summary=row.summary,
            decisions=tuple(
                DecisionRow(subject=d.subject, outcome=d.outcome, decision=d.decision, explanation=d.explanation)
                for d in decisions
            ),
        )

    def contents(self, digests: Sequence[str]) -> dict[str, bytes]:
        """The stored files with these SHA-256 digests (those held)."""
        with self.database.transaction() as connection:
            rows = connection.execute(select(schema.files).where(schema.files.c.sha256.in_(sorted(set(digests)))))
            return {r.sha256: bytes(r.content) for r in rows}

    def chain_head(self) -> tuple[int, str]:
        """The chain's length and the digest of its last record, as `record_chain` says."""
        with self.database.transaction() as connection:
            row = self._chain_row(connection)
        return (row.length, row.head) if row is not None else (0, schema.GENESIS)

    def orphan_decisions(self) -> list[int]:
        """The `seq`s that decision rows name but no record has (rows left by a deleted record)."""
        with self.database.transaction() as connection:
            known = select(schema.records.c.seq)
            rows = connection.execute(
                select(schema.decisions.c.record_seq).where(schema.decisions.c.record_seq.not_in(known)).distinct()
            )
            return sorted(int(r.record_seq) for r in rows)

    def summaries(self, subject: str | None = None, limit: int | None = None) -> list[RecordSummary]:
        """Records in chain order (the last `limit`); with `subject`, that subject's decisions over time."""
        r, d = schema.records, schema.decisions
        counted = d.alias("counted")
        count = (
            select(func.count()).select_from(counted).where(counted.c.record_seq == r.c.seq).correlate(r)
        ).scalar_subquery()
        columns: list[Any] = [r.c.id, r.c.seq, r.c.recorded_at, r.c.policy_name, r.c.policy_version, r.c.policy_digest]
        columns += [r.c.as_of, r.c.stage, r.c.backend, count.label("decision_count")]
        if subject is None:
            query = select(*columns)
        else:
            query = select(*columns, d.c.subject, d.c.outcome).join(d, d.c.record_seq == r.c.seq)
            query = query.where(d.c.subject == subject)
        query = query.order_by(r.c.seq.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.database.transaction() as connection:
            rows = connection.execute(query).all()
        return [_summary(row, subject is not None) for row in reversed(rows)]

    def history(self, subject: str) -> list[HistoryEntry]:
        """Every decision about `subject`, oldest first."""
        return self.summaries(subject=subject)


def vars_of(row: DecisionRow) -> dict[str, str]:
    return {"subject": row.subject, "outcome": row.outcome, "decision": row.decision, "explanation": row.explanation}


def _json_list(text: str) -> list[Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def _summary(row: Row[Any], with_subject: bool) -> RecordSummary:
    return RecordSummary(
        id=row.id,
        seq=row.seq,
        recorded_at=row.recorded_at,
        policy=row.policy_name,
        version=row.policy_version,
        digest=row.policy_digest,
        as_of=row.as_of,
        stage=row.stage,
        backend=row.backend,
        decisions=int(row.decision_count),
        subject=row.subject if with_subject else None,
        outcome=row.outcome if with_subject else None,
    )
