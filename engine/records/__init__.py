"""Decision records (after explanation): append-only, hash-chained, replayable evaluations.

Owns the canonical JSON of facts and decisions (`canonical`), the database schema shared by
SQLite and PostgreSQL (`schema`, SQLAlchemy Core), opening a database by file path or URL and
its write lock (`database`), a record drafted from an evaluation (`record`), the store that
appends records to the chain and reads them back (`store`), the chain's verification
(`verify`) and replay from a record alone (`replay`). May import `core`, `source`, `language`,
`evaluation`, `embedding` and `explanation` (a record holds each decision's explanation graph;
replay loads the stored files with `load_policy`); verification, the service and the CLI build
on it. Only this folder imports `sqlalchemy` (and, through it, `psycopg`).

    store = RecordStore.open("decisions.db", create=True)
    result, record = evaluate_and_record(store, policy, "examples/stage1.yaml")
    replay_record(store, record.id).identical      # True
    verify_chain(store).ok                         # True, until a row is edited or deleted
"""

import engine.explanation  # noqa: F401  (registers Decision.explain(), which every record needs)
from engine.records.record import Draft, StoredRecord, draft_record, evaluate_and_record
from engine.records.replay import ReplayReport, replay_record
from engine.records.store import HistoryEntry, RecordStore
from engine.records.verify import ChainReport, Problem, verify_chain

__all__ = [
    "RecordStore",
    "Draft",
    "StoredRecord",
    "HistoryEntry",
    "draft_record",
    "evaluate_and_record",
    "replay_record",
    "ReplayReport",
    "verify_chain",
    "ChainReport",
    "Problem",
]
