"""`policy evaluate`, `policy explain` and `policy report`: decide a cohort, and say why.

What is printed never drives the terminal: every value in a table or text has its control
characters shown escaped (`engine.core.text.shown`), and JSON is strict (`json_text`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
import unicodedata
from pathlib import Path
from typing import Any

from engine.cli.common import UsageError, add_lang_option, decide, fact_overrides, facts_command, whatif_note
from engine.cli.records import add_record_option, check_record_target, record_if_asked
from engine.core.i18n import Words
from engine.core.text import json_text, shown, shown_lines
from engine.evaluation.result import Decision, Result, StageSummary, quantity_text
from engine.explanation.letter import outcome_label, subject_name

__all__ = ["register", "cmd_evaluate", "cmd_explain", "cmd_report"]


def cmd_evaluate(args: argparse.Namespace) -> int:
    check_record_target(args)
    policy, result = decide(args)
    record = record_if_asked(args, policy, result)
    if args.format == "json":
        data = result.to_json()
        if fact_overrides(args):
            data["fact_overrides"] = fact_overrides(args)
        if record is not None:
            data["record"] = record.id
        print(json_text(data, indent=2, default=str))
    else:
        width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
        print(_table(result, whatif_note(args, result), args.lang, width, policy.ir))
        if record is not None:
            print()
            print(shown(f"record {record.id} (number {record.seq} in {args.record})"))
    return 0


def _table(result: Result, note: str | None = None, lang: str = "en", width: int | None = None, ir: Any = None) -> str:
    """The outcomes as a table: columns as wide as their content (ids, outcomes, ranks); the subject's
    name last; reasons under each row, wrapped to `width` (a terminal's) with their lines aligned."""
    w = Words(lang)
    head = w(
        "policy {name} {version} · stage {stage} · as of {date} · backend {backend}",
        name=result.policy.name,
        version=result.policy.version,
        stage=result.stage,
        date=result.as_of,
        backend=result.backend,
    )
    decisions = list(result.decisions.values())
    outcomes = {d.id: d.outcome if lang == "en" else outcome_label(ir, d.outcome, lang) for d in decisions}
    ids = max([_cells(shown(i)) for i in result.decisions] + [2])
    outs = max([_cells(o) for o in outcomes.values()] + [13])  # a long outcome name widens it
    rank_of = {d.id: _rank(d, w) for d in decisions}
    ranks = max([_cells(r) for r in rank_of.values()] + [8])
    capacity = result.summary is not None and result.summary.capacity is not None
    unit = result.summary.unit if result.summary else None
    given = {d.id: quantity_text(d.awarded, unit) if d.awarded is not None else "-" for d in decisions}
    awarded = max([_cells(g) for g in given.values()] + [7]) if capacity else 0
    named = ir is not None and getattr(ir.schema, "name_field", None) is not None
    header = f"{_pad(w('ID'), ids)}  {_pad(w('OUTCOME'), outs)}  {_pad(w('RANK'), ranks)}"
    header += f"  {_pad(w('AWARDED'), awarded)}" if capacity else ""
    header += "  " + w("NAME") if named else ""
    lines = [head, *([note] if note else []), "", header.rstrip()]
    for decision in decisions:
        row = (
            f"{_pad(shown(decision.id), ids)}  {_pad(outcomes[decision.id], outs)}  {_pad(rank_of[decision.id], ranks)}"
        )
        row += f"  {_pad(given[decision.id], awarded)}" if capacity else ""
        row += f"  {subject_name(ir, decision) or ''}" if named else ""
        lines.append(row.rstrip())
        for line in _decisive(decision, w):
            lines += _wrapped(line, ids + 2, width)
    if result.summary is not None:
        lines += _summary_lines(result.summary, w)
    return "\n".join(shown(line) for line in lines)  # an id's or message's control characters shown escaped


def _cells(text: str) -> int:
    """Terminal columns `text` takes: wide (East Asian) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _cells(text))


def _wrapped(line: str, indent: int, width: int | None) -> list[str]:
    """A reason line under its row; wrapped to `width`, its continuation lines under its text."""
    pad = " " * indent
    if width is None or _cells(pad + line) <= width:
        return [pad + line]
    hang = " " * (line.index(": ") + 2 if ": " in line[:60] else 2)
    first = textwrap.wrap(line, width=max(width - indent, 30), break_on_hyphens=False)[0]
    rest = textwrap.wrap(line[len(first) :].strip(), width=max(width - indent - len(hang), 20), break_on_hyphens=False)
    return [pad + first] + [pad + hang + part for part in rest]


def _places_text(s: StageSummary, w: Words) -> str:
    """`4 place(s): 3 filled, 1 left open → ...` in the reader's language."""
    if w.lang == "en":
        return s.places_text()
    text = w("{slots} place(s): {filled} filled", slots=s.slots, filled=s.filled)
    text += w(", {pending} pending (undetermined decisions)", pending=s.pending) if s.pending else ""
    text += w(", {open} left open", open=s.open)
    return text + (f" → {s.open_slots_to}: {w.of(s.open_slots_title)}" if s.open_slots_to else "")


def _summary_lines(s: StageSummary, w: Words | None = None) -> list[str]:
    """Places filled and left open; capacity used and left; each track's places."""
    lines: list[str] = []
    if s.slots is not None:
        lines.append(_places_text(s, w or Words("en")))
    if s.capacity is not None:
        used, left = quantity_text(s.capacity_used, s.unit), quantity_text(s.capacity_left, s.unit)
        lines.append(f"capacity {quantity_text(s.capacity, s.unit)}: {used} awarded, {left} left")
    for t in s.tracks:
        fate = "released to the general ranking" if t.unfilled_to == "release" else "kept open"
        rest = f"; {t.unfilled} unfilled, {fate}"
        lines.append(
            f"track {t.id}: {t.reserved} place(s) reserved, {t.filled} filled by its subjects"
            + (rest if t.unfilled else "")
        )
    if s.tie_at_cut_off:
        lines.append("warning: subjects are tied on every ranking key across the last place")
    return [""] + lines if lines else []


def _rank(decision: Decision, w: Words) -> str:
    p = decision.placement
    if p is None or w.lang == "en":
        return p.rank_text() if p else "-"
    if p.rank is not None:
        return w("{rank} of {size}", rank=p.rank, size=p.pool_size)
    if p.rank_range is not None:
        return w("{best} to {worst} of {size}", best=p.rank_range[0], worst=p.rank_range[1], size=p.pool_size)
    return "-"


def _decisive(decision: Decision, w: Words | None = None) -> list[str]:
    w = w or Words()
    lines = [
        f"{'✗' if r.status == 'failed' else '?' if r.status == 'undetermined' else '✓'} {r.rule}: {w.of(r.message)}"
        for r in decision.causes
    ]
    if decision.allocation is not None and decision.allocation.allotment != "not_in_pool":
        lines.append("allocation: " + decision.allocation.note())
    if decision.grants:
        lines.append("grants: " + "; ".join(_grant(g, w) for g in decision.grants))
    if decision.missing:
        lines.append("missing: " + ", ".join(decision.missing))
    return lines


def _grant(grant: Any, w: Words) -> str:
    title = w.of(grant.title)
    if grant.missing:
        return f"{title} (quantity undetermined: missing {', '.join(grant.missing)})"
    return f"{title} {quantity_text(grant.quantity, grant.unit)}" if grant.quantity is not None else str(title)


def cmd_explain(args: argparse.Namespace) -> int:
    policy, result = decide(args)
    note = whatif_note(args, result)
    if note and args.format == "text":
        print(shown(note) + "\n")
    if args.id is None:
        if args.why_not:
            raise UsageError("--why-not needs the id of a subject")
        from engine.explanation.cohort_explain import explain_cohort  # imported by the commands that explain

        cohort = explain_cohort(policy, result, args.lang)
        print(json_text(cohort.to_json(), indent=2) if args.format == "json" else cohort.to_text())
        return 0
    decision = result.decisions.get(args.id)
    if decision is None:
        known = ", ".join(shown(i) for i in result.decisions)
        raise UsageError(f"no subject `{shown(args.id)}` in {shown(args.facts)}; ids: {known}")
    if args.why_not:
        answer = decision.why_not(args.why_not)
        print(json_text(answer.to_json(), indent=2, default=str) if args.format == "json" else answer.to_text())
        return 0
    explanation = decision.explain()
    if args.format == "json":
        data = {"decision": decision.to_json(), "graph": explanation.to_json()}
        data |= {"overrides": result.policy.to_json()["overrides"]} if result.policy.overrides else {}
        print(json_text(data, indent=2, default=str))
    else:
        text = {"dot": explanation.to_dot, "mermaid": explanation.to_mermaid}.get(args.format)
        print(shown_lines(text() if text else explanation.to_text(args.lang)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from engine.explanation.report import render_report  # imported by the command that writes a report

    policy, result = decide(args)
    page = render_report(policy, result, args.lang)  # built whole before writing: no partial file on error
    Path(args.output).write_text(page, encoding="utf-8")
    print(shown(f"wrote {args.output}: {len(result.decisions)} decision(s) of stage {result.stage}"))
    return 0


def register(commands: Any) -> None:
    evaluate = facts_command(commands, "evaluate", "decide every subject of a cohort", cmd_evaluate)
    evaluate.add_argument("--format", choices=["table", "json"], default="table")
    add_lang_option(evaluate)
    add_record_option(evaluate)
    explain = facts_command(
        commands,
        "explain",
        "explain one decision as a chain from facts to outcome (or, without ID, the stage)",
        cmd_explain,
    )
    explain.add_argument(
        "id", nargs="?", help="the subject's id, e.g. naver-cloud; without it, the stage over the cohort is explained"
    )
    explain.add_argument(
        "--why-not",
        metavar="OUTCOME",
        help="what stands between the decision and OUTCOME, and the smallest changes of facts that reach it",
    )
    explain.add_argument("--format", choices=["text", "json", "dot", "mermaid"], default="text")
    add_lang_option(explain)
    report = facts_command(
        commands, "report", "write a self-contained HTML report of every decision of a cohort", cmd_report
    )
    report.add_argument("-o", "--output", required=True, help="the HTML file to write, e.g. report.html")
    add_lang_option(report)
