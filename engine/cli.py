"""The `policy` command line: evaluate, explain (why, why not, the stage), report, graph, check, schema.

The only module that prints. Exit codes: 0 success, 1 evaluation or check failure, 2 bad usage
or unreadable/invalid input. No traceback reaches a user unless `--debug` is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.cohort_explain import explain_cohort
from engine.errors import EngineError, FactError, PolicyError
from engine.graph import graph_dot, graph_json, graph_mermaid, graph_text
from engine.loader import MANIFEST, load_sources
from engine.policy import Policy, load_policy
from engine.report import render_report
from engine.result import Decision, Result

__all__ = ["main", "build_parser", "UsageError", "COMMAND_MODULES"]

# Modules that add subcommands: each has `register(commands)` taking the argparse subparsers
# and setting `handler` (a function of the parsed arguments returning the exit code).
COMMAND_MODULES: tuple[str, ...] = ("engine.cli_serve", "engine.cli_consistency")

_INPUT_CODES = {"no-manifest", "unreadable-file", "yaml-syntax", "json-syntax"}


class UsageError(Exception):
    """Bad arguments (exit code 2)."""


def _policy(args: argparse.Namespace) -> Policy:
    return load_policy(args.rules, backend=getattr(args, "backend", "python"))


def _evaluate(args: argparse.Namespace) -> Result:
    return _policy(args).evaluate(args.facts, as_of=_date(args.as_of), stage=args.stage)


def cmd_evaluate(args: argparse.Namespace) -> int:
    result = _evaluate(args)
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        print(_table(result))
    return 0


def _table(result: Result) -> str:
    head = f"policy {result.policy.name} {result.policy.version} · stage {result.stage} · as of {result.as_of} · backend {result.backend}"
    width = max([len(i) for i in result.decisions] + [2])
    lines = [head, "", f"{'ID'.ljust(width)}  {'OUTCOME'.ljust(13)}  RANK"]
    for decision in result.decisions.values():
        lines.append(f"{decision.id.ljust(width)}  {decision.outcome.ljust(13)}  {_rank(decision)}")
        lines += [f"{' ' * (width + 2)}{line}" for line in _decisive(decision)]
    if result.summary and result.summary.slots is not None:
        s = result.summary
        lines += ["", f"{s.slots} place(s): {s.filled} filled, {s.open} left open" + (f" → {s.open_slots_to}: {s.open_slots_title}" if s.open_slots_to else "")]
        if s.tie_at_cut_off:
            lines.append("warning: subjects are tied on every ranking key across the last place")
    return "\n".join(lines)


def _rank(decision: Decision) -> str:
    p = decision.placement
    return f"{p.rank} of {p.pool_size}" if p and p.rank is not None else "-"


def _decisive(decision: Decision) -> list[str]:
    lines = [f"{'✗' if r.status == 'failed' else '?' if r.status == 'undetermined' else '✓'} {r.rule}: {r.message}" for r in decision.causes]
    if decision.missing:
        lines.append("missing: " + ", ".join(decision.missing))
    return lines


def cmd_explain(args: argparse.Namespace) -> int:
    policy = _policy(args)
    result = policy.evaluate(args.facts, as_of=_date(args.as_of), stage=args.stage)
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
        print(json.dumps(answer.to_json(), indent=2, ensure_ascii=False, default=str) if args.format == "json" else answer.to_text())
        return 0
    explanation = decision.explain()
    if args.format == "json":
        print(json.dumps({"decision": decision.to_json(), "graph": explanation.to_json()}, indent=2, ensure_ascii=False, default=str))
    elif args.format == "dot":
        print(explanation.to_dot())
    elif args.format == "mermaid":
        print(explanation.to_mermaid())
    else:
        print(explanation.to_text())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    policy = _policy(args)
    result = policy.evaluate(args.facts, as_of=_date(args.as_of), stage=args.stage)
    page = render_report(policy, result)  # built whole before writing: no partial file on error
    Path(args.output).write_text(page, encoding="utf-8")
    print(f"wrote {args.output}: {len(result.decisions)} decision(s) of stage {result.stage}")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    ir = load_policy(args.rules).ir
    if args.format == "json":
        print(json.dumps(graph_json(ir), indent=2, ensure_ascii=False))
    else:
        print({"text": graph_text, "dot": graph_dot, "mermaid": graph_mermaid}[args.format](ir))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    policy = load_policy(args.rules)
    from engine.cli_consistency import check_package  # the invariant search and the analyses it feeds

    return check_package(policy, args)


def cmd_schema(args: argparse.Namespace) -> int:
    rules = args.rules or _default_rules()
    source = load_sources(rules)
    from engine.checker import _import_model

    target = source.manifest.facts.subject if args.subject else source.manifest.facts.cohort
    model = _import_model(target, source.root)
    print(json.dumps(model.model_json_schema(), indent=2))
    return 0


def _default_rules() -> Path:
    found = sorted(p.parent for p in Path("rules").glob(f"*/{MANIFEST}"))
    if len(found) != 1:
        raise UsageError("give the rule package: `policy schema RULES`")
    return found[0]


def _date(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"`{text}` is not a date (YYYY-MM-DD)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="policy", description="Decide, explain and check public-programme policies written as YAML rules.")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def facts_command(name: str, help: str, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("rules", help="the rule package (folder holding policy.yaml)")
        sub.add_argument("facts", help="the cohort fact file (YAML or JSON)")
        sub.add_argument("--as-of", help="evaluate as of this date (YYYY-MM-DD); default: the cohort's date")
        sub.add_argument("--stage", help="the stage to decide; default: the cohort's stage")
        sub.add_argument("--backend", choices=["python", "durable"], default="python", help="the evaluator (default: python)")
        sub.set_defaults(handler=handler)
        return sub

    facts_command("evaluate", "decide every consortium of a cohort", cmd_evaluate).add_argument("--format", choices=["table", "json"], default="table")
    explain = facts_command("explain", "explain one decision as a chain from facts to outcome (or, without ID, the stage)", cmd_explain)
    explain.add_argument("id", nargs="?", help="the subject's id, e.g. naver-cloud; without it, the stage over the cohort is explained")
    explain.add_argument("--why-not", metavar="OUTCOME", help="what stands between the decision and OUTCOME, and the smallest changes of facts that reach it")
    explain.add_argument("--format", choices=["text", "json", "dot", "mermaid"], default="text")
    report = facts_command("report", "write a self-contained HTML report of every decision of a cohort", cmd_report)
    report.add_argument("-o", "--output", required=True, help="the HTML file to write, e.g. report.html")
    graph = commands.add_parser("graph", help="print the static dependency graph of a rule package", description="print the static dependency graph of a rule package")
    graph.add_argument("rules")
    graph.add_argument("--format", choices=["text", "json", "dot", "mermaid"], default="text")
    graph.set_defaults(handler=cmd_graph)
    check = commands.add_parser("check", help="check a rule package and report every problem", description="check a rule package and report every problem")
    check.add_argument("rules")
    check.add_argument("--format", choices=["text", "json"], default="text")
    check.set_defaults(handler=cmd_check)
    schema = commands.add_parser("schema", help="print the JSON Schema of fact files", description="print the JSON Schema of fact files")
    schema.add_argument("rules", nargs="?", help="the rule package (default: the only one under ./rules)")
    schema.add_argument("--subject", action="store_true", help="the schema of one subject instead of a cohort file")
    schema.set_defaults(handler=cmd_schema)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    return parser


def _exit_code(error: EngineError) -> int:
    if isinstance(error, FactError):
        return 2
    if isinstance(error, PolicyError) and error.diagnostics and all(d.code in _INPUT_CODES for d in error.diagnostics):
        return 2
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except EngineError as error:
        if args.debug:
            raise
        print(str(error), file=sys.stderr)
        return _exit_code(error)
    except BrokenPipeError:
        return 0
    except (OSError, ImportError) as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # a bug of ours: say so plainly, no traceback without --debug
        if args.debug:
            raise
        print(f"internal error: {type(error).__name__}: {error} (run with --debug for the traceback)", file=sys.stderr)
        return 1
