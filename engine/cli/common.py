"""What every command shares: the error for bad usage, reading a date, loading the package."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.core.i18n import LANGUAGES
from engine.embedding.policy import Policy, load_policy
from engine.evaluation.result import Result
from engine.source.loader import MANIFEST
from engine.source.yamlsource import parse_yaml

__all__ = [
    "UsageError",
    "Handler",
    "load",
    "parse_date",
    "facts_command",
    "add_trust_option",
    "add_whatif_options",
    "add_period_option",
    "fact_modules",
    "decide",
    "parameter_overrides",
    "fact_overrides",
    "whatif_note",
    "find_package",
    "Progress",
]

Handler = Callable[[argparse.Namespace], int]
LARGE_COHORT = 2000  # subjects from which `policy evaluate` (explain, report) shows progress on a terminal


class UsageError(Exception):
    """Bad arguments (exit code 2)."""


def load(args: argparse.Namespace) -> Policy:
    """The package named on the command line, on the backend asked for, with `--set` in force."""
    policy = load_policy(args.rules, backend=getattr(args, "backend", "generated"), fact_modules=fact_modules(args))
    overrides = parameter_overrides(args)
    return policy.with_parameters(overrides) if overrides else policy


def find_package(given: str | None, command: str, under: Path = Path("rules")) -> Path:
    """The package given, else the only package under `./rules`; a clear usage error listing them otherwise."""
    if given:
        return Path(given)
    found = sorted(p.parent for p in under.glob(f"*/{MANIFEST}"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(f"give the rule package: `{command} RULES` (no package under `{under}/`)")
    listed = ", ".join(f"`{p.as_posix()}`" for p in found)
    raise UsageError(f"give the rule package: `{command} RULES`; `{under}/` holds {len(found)}: {listed}")


class Progress:
    """A progress bar on the terminal (tqdm, imported only when one is shown); nothing when stderr is not a terminal."""

    def __init__(self, description: str, unit: str, total: int | None = None) -> None:
        self.bar: Any = None
        if sys.stderr.isatty():
            from tqdm import tqdm  # lazily: start-up time of every command matters

            size = shutil.get_terminal_size()  # a terminal that reports no size (0 rows: no bar at all) gets 80x24
            self.bar = tqdm(
                total=total,
                desc=description,
                unit=unit,
                leave=False,
                file=sys.stderr,
                ncols=size.columns,
                nrows=size.lines,
            )

    def tick(self) -> None:
        """One more step done."""
        if self.bar is not None:
            self.bar.update(1)

    def at(self, done: int, total: int) -> None:
        """`done` steps of `total` done."""
        if self.bar is not None:
            self.bar.total = total
            self.bar.n = done
            self.bar.refresh()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def decide(args: argparse.Namespace) -> tuple[Policy, Result]:
    """Load the package and decide the cohort of `args.facts`, with `--set` and `--set-fact` in force."""
    policy = load(args)
    changes = fact_overrides(args)
    cohort = policy.with_facts(args.facts, changes) if changes else policy.load_cohort(args.facts)
    outside = bool(getattr(args, "outside_period", False))
    size = len(getattr(cohort, policy.ir.schema.subjects_field, None) or ())
    if size < LARGE_COHORT:  # no progress bar (nor its import) for the usual cohort
        return policy, policy.evaluate(cohort, as_of=parse_date(args.as_of), stage=args.stage, outside_period=outside)
    with Progress("deciding", "subject", total=2 * size) as progress:  # two passes: before and after ranking
        result = policy.evaluate(
            cohort, as_of=parse_date(args.as_of), stage=args.stage, outside_period=outside, tick=progress.tick
        )
    return policy, result


def _scalar(text: str, where: str) -> Any:
    """A value given on the command line, read as YAML (`80`, `true`, `[a, b]`, `2026-08-01`, text)."""
    document = parse_yaml(text, where)
    if document.diagnostics:
        raise UsageError(f"{where}: `{text}` is not a value: {document.diagnostics[0].message}")
    return document.data


def _assignments(items: list[str] | None, option: str) -> list[tuple[str, Any]]:
    found = []
    for item in items or ():
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise UsageError(f"{option} takes NAME=VALUE, not `{item}`")
        found.append((name.strip(), _scalar(value, f"{option} {name.strip()}")))
    return found


def parameter_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """`--set NAME=VALUE`: parameters set for this run (type-checked when applied)."""
    return dict(_assignments(getattr(args, "set", None), "--set"))


def fact_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """`--set-fact ID.PATH=VALUE`: one subject's facts changed for this run."""
    changes: dict[str, dict[str, Any]] = {}
    for name, value in _assignments(getattr(args, "set_fact", None), "--set-fact"):
        subject, dot, path = name.partition(".")
        if not dot or not path:
            raise UsageError(f"--set-fact takes ID.PATH=VALUE (e.g. nc-ai.scores.expert=30), not `{name}`")
        changes.setdefault(subject, {})[path] = value
    return changes


def whatif_note(args: argparse.Namespace, result: Result | None = None) -> str | None:
    """One line naming the overrides in force, or None when the package and facts are as written."""
    given = [f"{n}={v!r}" for n, v in _assignments(getattr(args, "set", None), "--set")]
    given += [f"{n}={v!r}" for n, v in _assignments(getattr(args, "set_fact", None), "--set-fact")]
    if result is not None and result.outside_period:
        given.append(f"stage `{result.stage}` decided as of {result.as_of}, outside its period (--outside-period)")
    return "what-if: " + ", ".join(given) if given else None


def add_period_option(parser: argparse.ArgumentParser) -> None:
    """`--outside-period`: let a stage decide as of a date outside the period it declares (a what-if)."""
    parser.add_argument(
        "--outside-period",
        action="store_true",
        help="decide a stage as of a date outside the period it declares (`dates:`), as a what-if; "
        "without it such a date is refused",
    )


def add_whatif_options(parser: argparse.ArgumentParser, facts: bool = True) -> None:
    """`--set` and `--set-fact`: what-if without editing the package or the fact file."""
    parser.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="set a parameter for this run (type-checked; a dated parameter takes it on every date); repeatable",
    )
    if not facts:
        return
    parser.add_argument(
        "--set-fact",
        action="append",
        metavar="ID.PATH=VALUE",
        help="change one subject's fact for this run, e.g. nc-ai.scores.expert=30 (validated); repeatable",
    )


def fact_modules(args: argparse.Namespace) -> list[str]:
    """The fact-model modules the person running the command trusts (`--facts-module`)."""
    return list(getattr(args, "facts_module", None) or ())


def add_trust_option(parser: argparse.ArgumentParser) -> None:
    """`--facts-module`: a module (name, or path of a .py file) trusted to define fact models."""
    parser.add_argument(
        "--facts-module",
        action="append",
        metavar="MODULE_OR_FILE",
        help="trust this module (a name, or the path of a .py file) to define the package's fact models; "
        "repeatable (installed distributions register theirs under the `engine.fact_models` entry points)",
    )


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
    add_period_option(sub)
    sub.add_argument(
        "--backend",
        choices=["generated", "python", "durable"],
        default="generated",
        help="the evaluator: generated (default), python (the reference closures) or durable (Rete)",
    )
    add_trust_option(sub)
    add_whatif_options(sub)
    sub.set_defaults(handler=handler)
    return sub


def add_lang_option(command: argparse.ArgumentParser) -> None:
    """`--lang en|ko`: the language people read the output in (the package's words where it gives them)."""
    command.add_argument(
        "--lang",
        choices=list(LANGUAGES),
        default="en",
        help="language of the text for people: en (default) or ko; text a package does not give in it stays English",
    )
