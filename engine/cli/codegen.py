"""`policy compile`: the Python source the default (`generated`) evaluator wrote for a stage."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.common import UsageError, add_trust_option, load
from engine.core.text import shown_lines
from engine.evaluation.generated import PHASES, stage_programs

__all__ = ["register", "cmd_compile"]


def cmd_compile(args: argparse.Namespace) -> int:
    policy = load(args)
    stages = policy.compiled.stages
    if args.stage not in stages:
        raise UsageError(f"no stage `{args.stage}` in {policy.ir.name}: the stages are {', '.join(stages)}")
    for program in stage_programs(policy.compiled, args.stage):
        if args.phase in (None, program.phase):
            print(shown_lines(program.source), end="")
    return 0


def register(commands: Any) -> None:
    help = "print the Python function the default evaluator generated for a stage (each phase), as it runs"
    sub = commands.add_parser("compile", help=help, description=help)
    sub.add_argument("rules", help="the rule package (folder holding policy.yaml)")
    sub.add_argument("--stage", required=True, help="the stage whose generated functions to print")
    sub.add_argument(
        "--phase",
        choices=list(PHASES),
        help="only this phase: `pool` (definitions, pool and tracks, before the ranking) or `rows` (after it)",
    )
    add_trust_option(sub)
    sub.set_defaults(handler=cmd_compile)
