"""`policy evaluate`, `policy explain` and `policy report`: decide a cohort, and say why."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from engine.cli.common import UsageError, facts_command, load, parse_date
from engine.evaluation.result import Decision, Result
from engine.explanation.cohort_explain import explain_cohort
from engine.explanation.report import render_report

__all__ = ["register", "cmd_evaluate", "cmd_explain", "cmd_report"]


def _evaluate(args: argparse.Namespace) -> Result:
    return load(args).evaluate(args.facts, as_of=parse_date(args.as_of), stage=args.stage)


def cmd_evaluate(args: argparse.Namespace) -> int:
    result = _evaluate(args)
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        print(_table(result))
    return 0


def _table(result: Result) -> str:
    head = (
        f"policy {result.policy.name} {result.policy.version} · stage {result.stage} · as of "
        f"{result.as_of} · backend {result.backend}"
    )
    width = max([len(i) for i in result.decisions] + [2])
    lines = [head, "", f"{'ID'.ljust(width)}  {'OUTCOME'.ljust(13)}  RANK"]
    for decision in result.decisions.values():
        lines.append(f"{decision.id.ljust(width)}  {decision.outcome.ljust(13)}  {_rank(decision)}")
        lines += [f"{' ' * (width + 2)}{line}" for line in _decisive(decision)]
    if result.summary and result.summary.slots is not None:
        s = result.summary
        lines += [
            "",
            f"{s.slots} place(s): {s.filled} filled, {s.open} left open"
            + (f" → {s.open_slots_to}: {s.open_slots_title}" if s.open_slots_to else ""),
        ]
        if s.tie_at_cut_off:
            lines.append("warning: subjects are tied on every ranking key across the last place")
    return "\n".join(lines)


def _rank(decision: Decision) -> str:
    p = decision.placement
    return f"{p.rank} of {p.pool_size}" if p and p.rank is not None else "-"


def _decisive(decision: Decision) -> list[str]:
    lines = [
        f"{'✗' if r.status == 'failed' else '?' if r.status == 'undetermined' else '✓'} {r.rule}: {r.message}"
        for r in decision.causes
    ]
    if decision.missing:
        lines.append("missing: " + ", ".join(decision.missing))
    return lines


def cmd_explain(args: argparse.Namespace) -> int:
    policy = load(args)
    result = policy.evaluate(args.facts, as_of=parse_date(args.as_of), stage=args.stage)
    if args.id is None:
        if args.why_not:
            raise UsageError("--why-not needs the id of a subject")
        cohort = explain_cohort(policy, result)
        print(json.dumps(cohort.to_json(), indent=2, ensure_ascii=False) if args.format == "json" else cohort.to_text())
        return 0
    decision = result.decisions.get(args.id)
    if decision is None:
        known = ", ".join(result.decisions)
        raise UsageError(f"no subject `{args.id}` in {args.facts}; ids: {known}")
    if args.why_not:
        answer = decision.why_not(args.why_not)
        print(
            json.dumps(answer.to_json(), indent=2, ensure_ascii=False, default=str)
            if args.format == "json"
            else answer.to_text()
        )
        return 0
    explanation = decision.explain()
    if args.format == "json":
        print(
            json.dumps(
                {"decision": decision.to_json(), "graph": explanation.to_json()},
                indent=2,
                ensure_ascii=False,
                default=str,
            )
        )
    elif args.format == "dot":
        print(explanation.to_dot())
    elif args.format == "mermaid":
        print(explanation.to_mermaid())
    else:
        print(explanation.to_text())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    policy = load(args)
    result = policy.evaluate(args.facts, as_of=parse_date(args.as_of), stage=args.stage)
    page = render_report(policy, result)  # built whole before writing: no partial file on error
    Path(args.output).write_text(page, encoding="utf-8")
    print(f"wrote {args.output}: {len(result.decisions)} decision(s) of stage {result.stage}")
    return 0


def register(commands: Any) -> None:
    evaluate = facts_command(commands, "evaluate", "decide every consortium of a cohort", cmd_evaluate)
    evaluate.add_argument("--format", choices=["table", "json"], default="table")
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
