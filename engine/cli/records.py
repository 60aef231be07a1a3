"""Decision records on the command line: `--record DB` on `policy evaluate`, replay, history, verify.

    policy evaluate RULES FACTS --record decisions.db     evaluate, and append the record
    policy replay   DB RECORD_ID                          evaluate again from the record alone
    policy history  DB SUBJECT_ID                         a subject's decisions over time
    policy records  verify DB                             check the chain: no edit, no deletion
    policy records  list DB                               the records, oldest first
    policy records  show DB RECORD_ID                     one record as JSON

DB is a SQLite file (created by `--record` if missing) or a `postgresql://` URL. A record id
may be shortened to a unique prefix of at least 8 hex digits. Exit codes: 0 success (replay
identical, chain intact); 1 replay differs or cannot evaluate, chain broken; 2 bad input (no
such database, not a record database, unknown record id).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from engine.cli.common import Handler, UsageError, add_trust_option, fact_modules
from engine.core.errors import RecordError
from engine.core.text import json_text, shown, shown_lines
from engine.embedding.policy import Policy
from engine.evaluation.result import Result

if TYPE_CHECKING:  # the records pass (SQLAlchemy) is imported when a command uses it, not at start-up
    from engine.records import RecordStore, StoredRecord
    from engine.records.store import RecordSummary

__all__ = ["register", "record_if_asked", "cmd_replay", "cmd_history", "cmd_verify", "cmd_list", "cmd_show", "opened"]

DB_HELP = "the record database: a SQLite file, or a postgresql://USER@HOST/DB URL"


@contextmanager
def opened(target: str, create: bool = False) -> Iterator[RecordStore]:
    """The record store at `target`; its errors (no such database, unknown record) are usage errors (exit 2)."""
    try:
        from engine.records import RecordStore

        with RecordStore.open(target, create=create) as store:
            yield store
    except RecordError as error:
        raise UsageError(str(error)) from None


def record_if_asked(args: argparse.Namespace, policy: Policy, result: Result) -> StoredRecord | None:
    """With `--record DB`: the record of this evaluation, appended to DB (created if missing); else None."""
    if getattr(args, "record", None) is None:
        return None
    with opened(args.record, create=True) as store:
        try:
            from engine.records import draft_record

            return store.append(draft_record(policy, result, args.facts))
        except RecordError as error:
            raise UsageError(str(error)) from None


def cmd_replay(args: argparse.Namespace) -> int:
    with opened(args.db) as store:
        try:
            from engine.records import replay_record

            report = replay_record(store, args.id, fact_modules(args))
        except RecordError as error:
            raise UsageError(str(error)) from None
    record = report.record
    if args.format == "json":
        data = {
            "record": record.id,
            "identical": report.identical,
            "error": report.error,
            "notes": report.notes,
            "diff": report.diff() or None,
        }
        print(json_text(data, indent=2))
        return 0 if report.identical else 1
    head = (
        f"record {record.id[:12]} (number {record.seq}): {record.policy['name']} {record.policy['version']} "
        f"({record.policy['digest'][:12]}) · stage {record.stage} · as of {record.as_of} · backend {record.backend}"
    )
    lines = [head] + [f"note: {n}" for n in report.notes]
    if report.error is not None:
        lines.append(f"replay failed: cannot evaluate from the record: {report.error}")
    elif report.identical:
        lines.append(f"identical: {len(record.decisions)} decision(s), byte for byte")
    else:
        lines += ["differs from the record:", report.diff()]
    print(shown_lines("\n".join(lines)))
    return 0 if report.identical else 1


def _summary_table(rows: list[RecordSummary], with_outcome: bool) -> str:
    head = ["RECORD", "#", "RECORDED", "POLICY", "VERSION", "DIGEST", "AS OF", "STAGE", "BACKEND"]
    head += ["OUTCOME"] if with_outcome else ["DECISIONS"]
    table = [head] + [
        [r.id[:12], str(r.seq), r.recorded_at, r.policy, r.version, r.digest[:12], r.as_of, str(r.stage), r.backend]
        + [str(r.outcome) if with_outcome else str(r.decisions)]
        for r in rows
    ]
    widths = [max(len(shown(row[i])) for row in table) for i in range(len(head))]
    return "\n".join("  ".join(shown(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table)


def cmd_history(args: argparse.Namespace) -> int:
    with opened(args.db) as store:
        rows = store.history(args.subject)
    if args.format == "json":
        print(json_text({"subject": args.subject, "decisions": [r.to_json() for r in rows]}, indent=2))
    elif not rows:
        print(shown(f"no decision about `{args.subject}` in {store.name}"))
    else:
        print(_summary_table(rows, with_outcome=True))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with opened(args.db) as store:
        rows = store.summaries(limit=args.limit)
    if args.format == "json":
        print(json_text({"records": [r.to_json() for r in rows]}, indent=2))
    else:
        print(_summary_table(rows, with_outcome=False) if rows else shown(f"no records in {store.name}"))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with opened(args.db) as store:
        try:
            record = store.get(args.id)
        except RecordError as error:
            raise UsageError(str(error)) from None
    print(json_text(record.to_json(), indent=2))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    with opened(args.db) as store:
        from engine.records import verify_chain

        report = verify_chain(store)
    if args.format == "json":
        print(json_text(report.to_json(), indent=2))
    elif report.ok:
        print(shown(f"ok: {report.records} record(s), chained; head {report.head}"))
    else:
        print(shown_lines("\n".join(str(p) for p in report.problems)))
        print(shown(f"failed: {len(report.problems)} problem(s) in {report.records} record(s)"))
    return 0 if report.ok else 1


def _db_command(commands: Any, name: str, help: str, handler: Handler) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=help, description=help)
    sub.add_argument("db", metavar="DB", help=DB_HELP)
    sub.set_defaults(handler=handler)
    return sub


def add_record_option(parser: argparse.ArgumentParser) -> None:
    """`--record DB` (on `policy evaluate`)."""
    parser.add_argument(
        "--record",
        metavar="DB",
        help="append a decision record to DB (a SQLite file, created if missing, or a postgresql:// URL); "
        "its id is printed below the table, or as `record` in JSON",
    )


def check_record_target(args: argparse.Namespace) -> None:
    """With `--record DB`, fail on a database that cannot be used before anything is evaluated."""
    if getattr(args, "record", None) is not None:
        with opened(args.record, create=True):
            pass


def register(commands: Any) -> None:
    """`policy replay`, `policy history`, `policy records verify|list|show` (`--record` is on `evaluate`)."""
    replay = _db_command(
        commands,
        "replay",
        "evaluate a record again from the record alone; exit 1 with a diff if it differs",
        cmd_replay,
    )
    replay.add_argument("id", metavar="RECORD_ID", help="the record's id, or a unique prefix of 8+ hex digits")
    add_trust_option(replay)
    replay.add_argument("--format", choices=["text", "json"], default="text")
    history = _db_command(commands, "history", "a subject's recorded decisions over time", cmd_history)
    history.add_argument("subject", metavar="SUBJECT_ID", help="the subject's id, e.g. naver-cloud")
    history.add_argument("--format", choices=["table", "json"], default="table")
    records = commands.add_parser(
        "records",
        help="verify, list or show decision records",
        description="verify, list or show the decision records in DB (a SQLite file or a postgresql:// URL)",
    )
    actions = records.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = _db_command(
        actions, "verify", "check the record chain: exit 1 naming each edited or deleted record", cmd_verify
    )
    verify.add_argument("--format", choices=["text", "json"], default="text")
    listing = _db_command(actions, "list", "the records, oldest first", cmd_list)
    listing.add_argument("--limit", type=int, metavar="N", help="only the last N records")
    listing.add_argument("--format", choices=["table", "json"], default="table")
    show = _db_command(actions, "show", "one record as JSON: inputs, decisions, explanations", cmd_show)
    show.add_argument("id", metavar="RECORD_ID", help="the record's id, or a unique prefix of 8+ hex digits")
