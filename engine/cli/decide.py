"""`policy evaluate`, `policy explain` and `policy report`: decide a cohort, and say why.

What is printed never drives the terminal: every value in a table or text has its control
characters shown escaped (`engine.core.text.shown`), and JSON is strict (`json_text`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.cli.common import UsageError, decide, fact_overrides, facts_command, whatif_note
from engine.cli.records import add_record_option, check_record_target, record_if_asked
from engine.core.text import json_text, shown, shown_lines
from engine.evaluation.result import Decision, Result, StageSummary, quantity_text
from engine.explanation.cohort_explain import explain_cohort
from engine.explanation.report import render_report

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
        print(_table(result, whatif_note(args, result)))
        if record is not None:
            print()
            print(shown(f"record {record.id} (number {record.seq} in {args.record})"))
    return 0


def _table(result: Result, note: str | None = None) -> str:
    head = (
        f"policy {result.policy.name} {result.policy.version} · stage {result.stage} · as of "
        f"{result.as_of} · backend {result.backend}"
    )
    width = max([len(shown(i)) for i in result.decisions] + [2])
    capacity = result.summary is not None and result.summary.capacity is not None
    wide = max([len(shown(d.outcome)) for d in result.decisions.values()] + [13])  # a long outcome name widens it
    header = f"{'ID'.ljust(width)}  {'OUTCOME'.ljust(wide)}  {'RANK'.ljust(8)}" + ("  AWARDED" if capacity else "")
    lines = [head, *([note] if note else []), "", header.rstrip()]
    for decision in result.decisions.values():
        row = f"{shown(decision.id).ljust(width)}  {decision.outcome.ljust(wide)}  {_rank(decision).ljust(8)}"
        if capacity:
            unit = result.summary.unit if result.summary else None
            row += "  " + (quantity_text(decision.awarded, unit) if decision.awarded is not None else "-")
        lines.append(row.rstrip())
        lines += [f"{' ' * (width + 2)}{line}" for line in _decisive(decision)]
    if result.summary is not None:
        lines += _summary_lines(result.summary)
    return "\n".join(shown(line) for line in lines)  # an id's or message's control characters shown escaped


def _summary_lines(s: StageSummary) -> list[str]:
    """Places filled and left open; capacity used and left; each track's places."""
    lines: list[str] = []
    if s.slots is not None:
        lines.append(s.places_text())
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


def _rank(decision: Decision) -> str:
    return decision.placement.rank_text() if decision.placement else "-"


def _decisive(decision: Decision) -> list[str]:
    lines = [
        f"{'✗' if r.status == 'failed' else '?' if r.status == 'undetermined' else '✓'} {r.rule}: {r.message}"
        for r in decision.causes
    ]
    if decision.allocation is not None and decision.allocation.allotment != "not_in_pool":
        lines.append("allocation: " + decision.allocation.note())
    if decision.grants:
        lines.append("grants: " + "; ".join(g.describe() for g in decision.grants))
    if decision.missing:
        lines.append("missing: " + ", ".join(decision.missing))
    return lines


def cmd_explain(args: argparse.Namespace) -> int:
    policy, result = decide(args)
    note = whatif_note(args, result)
    if note and args.format == "text":
        print(shown(note) + "\n")
    if args.id is None:
        if args.why_not:
            raise UsageError("--why-not needs the id of a subject")
        cohort = explain_cohort(policy, result)
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
        text = {"dot": explanation.to_dot, "mermaid": explanation.to_mermaid, "text": explanation.to_text}[args.format]
        print(shown_lines(text()))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    policy, result = decide(args)
    page = render_report(policy, result)  # built whole before writing: no partial file on error
    Path(args.output).write_text(page, encoding="utf-8")
    print(shown(f"wrote {args.output}: {len(result.decisions)} decision(s) of stage {result.stage}"))
    return 0


def register(commands: Any) -> None:
    evaluate = facts_command(commands, "evaluate", "decide every consortium of a cohort", cmd_evaluate)
    evaluate.add_argument("--format", choices=["table", "json"], default="table")
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
    report = facts_command(
        commands, "report", "write a self-contained HTML report of every decision of a cohort", cmd_report
    )
    report.add_argument("-o", "--output", required=True, help="the HTML file to write, e.g. report.html")
