"""Verifying the chain: every record unedited, none deleted, every file intact.

Walks the records in `seq` order and checks, for each, that

- its `seq` follows the one before (a gap is a deleted record);
- its `prev` is the id of the record before it (`GENESIS` for the first);
- its digest, computed again from what is stored now (decisions and explanations included,
  through the outcome's SHA-256), is its id: any edited column or decision row changes it;
- its facts match their stored SHA-256, and each of its package files is stored and matches
  its SHA-256;

and then that the chain's head (`record_chain`) names the last record (deleting the newest
records is seen there), and that no decision row belongs to a record that is gone. Each problem
names the record. A chain whose rows were all rewritten consistently, head included, verifies:
keep the head's digest somewhere else (it is printed) to detect that too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.core.errors import RecordError
from engine.records import schema
from engine.records.canonical import sha256_hex
from engine.records.record import StoredRecord
from engine.records.store import RecordStore

__all__ = ["Problem", "ChainReport", "verify_chain"]


@dataclass(frozen=True)
class Problem:
    """What is wrong with one record (or with the chain as a whole when `seq` is None)."""

    seq: int | None
    id: str | None
    message: str

    def __str__(self) -> str:
        where = f"record {self.seq} ({self.id[:12]})" if self.seq is not None and self.id else "chain"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class ChainReport:
    """The outcome of `verify_chain`: how many records, the head's digest, and every problem found."""

    records: int
    head: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, object]:
        problems = [{"seq": p.seq, "id": p.id, "message": p.message} for p in self.problems]
        return {"ok": self.ok, "records": self.records, "head": self.head, "problems": problems}


def _record_problems(record: StoredRecord, expected_seq: int, prev: str) -> list[str]:
    found = []
    if record.seq != expected_seq:
        gap = record.seq - expected_seq
        missing = f"record {expected_seq} is" if gap == 1 else f"records {expected_seq}–{record.seq - 1} are"
        found.append(f"{missing} missing before it (deleted)")
    if record.prev != prev:
        found.append(f"its `prev` is {record.prev[:12]}, but the record before it is {prev[:12]} (the chain is broken)")
    try:
        digest = record.digest
    except (ValueError, RecordError) as error:
        found.append(f"its stored content cannot be read ({error}): it was edited")
    else:
        if digest != record.id:
            found.append("its stored content no longer matches its digest: it was edited after it was recorded")
    if sha256_hex(record.facts) != record.facts_sha256:
        found.append("its facts no longer match their SHA-256: they were edited")
    return found


def _file_problems(store: RecordStore, records: list[StoredRecord]) -> list[Problem]:
    wanted = {sha for r in records for _, sha in r.files}
    held = store.contents(sorted(wanted))
    bad = {sha for sha, data in held.items() if sha256_hex(data) != sha}
    found = []
    for record in records:
        for path, sha in record.files:
            if sha not in held:
                found.append(Problem(record.seq, record.id, f"its package file `{path}` ({sha[:12]}) is missing"))
            elif sha in bad:
                found.append(Problem(record.seq, record.id, f"its package file `{path}` ({sha[:12]}) was edited"))
    return found


def verify_chain(store: RecordStore) -> ChainReport:
    """Check every record and the links between them; the report lists every problem, naming records."""
    problems: list[Problem] = []
    records: list[StoredRecord] = []
    prev, seq = schema.GENESIS, 0
    for record in store.scan():
        problems += [Problem(record.seq, record.id, m) for m in _record_problems(record, seq + 1, prev)]
        prev, seq = record.id, record.seq
        records.append(record)
    problems += _file_problems(store, records)
    length, head = store.chain_head()
    if (length, head) != (seq, prev):
        problems.append(
            Problem(
                None,
                None,
                f"the chain's head says {length} record(s) ending with {head[:12]}, but the last record is "
                f"{seq} ({prev[:12]}): records were deleted or added outside the chain",
            )
        )
    problems += [
        Problem(None, None, f"decisions of record {s} remain, but record {s} is gone (deleted)")
        for s in store.orphan_decisions()
    ]
    return ChainReport(records=len(records), head=prev, problems=problems)
