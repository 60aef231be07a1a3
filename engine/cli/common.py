"""What every command shares: the error for bad usage, reading a date, loading the package."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from typing import Any

from engine.embedding.policy import Policy, load_policy

__all__ = ["UsageError", "Handler", "load", "parse_date", "facts_command"]

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """Bad arguments (exit code 2)."""


def load(args: argparse.Namespace) -> Policy:
    """The package named on the command line, on the backend asked for."""
    return load_policy(args.rules, backend=getattr(args, "backend", "python"))


def parse_date(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"`{text}` is not a date (YYYY-MM-DD)") from None


def facts_command(commands: Any, name: str, help: str, handler: Handler) -> argparse.ArgumentParser:
    """A subcommand over a rule package and a cohort fact file (evaluate, explain, report)."""
    sub = commands.add_parser(name, help=help, description=help)
    sub.add_argument("rules", help="the rule package (folder holding policy.yaml)")
    sub.add_argument("facts", help="the cohort fact file (YAML or JSON)")
    sub.add_argument("--as-of", help="evaluate as of this date (YYYY-MM-DD); default: the cohort's date")
    sub.add_argument("--stage", help="the stage to decide; default: the cohort's stage")
    sub.add_argument(
        "--backend", choices=["python", "durable"], default="python", help="the evaluator (default: python)"
    )
    sub.set_defaults(handler=handler)
    return sub
