"""The record database's tables (SQLAlchemy Core): the same schema on SQLite and PostgreSQL.

    record_files      sha256 → content: the package files, content-addressed (stored once)
    records           one row per record, `seq` 1, 2, 3 ... in chain order; `id` is the record's
                      digest, `prev` the digest of the record before it (GENESIS for the first)
    record_decisions  each decision of a record, in the cohort's order, with its explanation
    record_chain      one row: how many records the chain holds and the digest of the last one

Every JSON column holds canonical JSON text (`engine.records.canonical`), so what is hashed is
exactly what is stored. Nothing is ever updated but `record_chain`, in the transaction that
appends a record.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, LargeBinary, MetaData, String, Table, Text
from sqlalchemy.sql.schema import SchemaItem

__all__ = ["SCHEMA_VERSION", "GENESIS", "CHAIN", "metadata", "files", "records", "decisions", "chain"]

SCHEMA_VERSION = 1
GENESIS = "0" * 64  # the `prev` of the first record
CHAIN = "decisions"  # the name of the chain's row in `record_chain`

metadata = MetaData()


def _items(*items: SchemaItem) -> tuple[SchemaItem, ...]:
    return items


files = Table(
    "record_files",
    metadata,
    *_items(  # columns (Table takes them positionally)
        Column("sha256", String(64), primary_key=True),
        Column("content", LargeBinary, nullable=False),
    ),
)

records = Table(
    "records",
    metadata,
    *_items(  # columns (Table takes them positionally)
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column("id", String(64), nullable=False, unique=True),
        Column("prev", String(64), nullable=False),
        Column("recorded_at", String(40), nullable=False),  # ISO 8601, UTC
        Column("engine_version", Text, nullable=False),
        Column("policy_name", Text, nullable=False),
        Column("policy_version", Text, nullable=False),
        Column("policy_digest", String(64), nullable=False),
        Column("files", Text, nullable=False),  # [[path, sha256], ...], the manifest first
        Column("fact_models", Text, nullable=False),  # [{"module", "sha256"}, ...]
        Column("facts", Text, nullable=False),  # the cohort
        Column("facts_sha256", String(64), nullable=False),
        Column("as_of", String(10), nullable=False),
        Column("stage", Text, nullable=True),
        Column("backend", Text, nullable=False),
        Column("overrides", Text, nullable=False),  # {} when none
        Column("summary", Text, nullable=False),  # the stage summary, or null
    ),
)

decisions = Table(
    "record_decisions",
    metadata,
    *_items(  # columns (Table takes them positionally)
        Column("record_seq", Integer, ForeignKey("records.seq"), primary_key=True),
        Column("position", Integer, primary_key=True, autoincrement=False),
        Column("subject", Text, nullable=False),
        Column("outcome", Text, nullable=False),
        Column("decision", Text, nullable=False),  # the decision's JSON: outcome, reasons, references, placement
        Column("explanation", Text, nullable=False),  # its explanation graph, node-link
        Index("record_decisions_by_subject", "subject", "record_seq"),
    ),
)

chain = Table(
    "record_chain",
    metadata,
    *_items(  # columns (Table takes them positionally)
        Column("name", String(32), primary_key=True),
        Column("length", Integer, nullable=False),
        Column("head", String(64), nullable=False),
        Column("schema_version", Integer, nullable=False),
    ),
)
