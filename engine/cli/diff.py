"""`policy diff OLD [NEW] [FACTS...]`: what an edit of a rule package changes, and why.

OLD and NEW are package folders or `REV:PATH` (a git revision of a package in this repository,
read with git). Without NEW, the package is compared with itself under the `--set` overrides.
With fact files, every decision that changes is listed with the edits that caused it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from engine.cli.common import (
    UsageError,
    add_period_option,
    add_trust_option,
    add_whatif_options,
    fact_modules,
    parameter_overrides,
    parse_date,
)
from engine.core.text import json_text
from engine.embedding.policy import Policy, load_policy
from engine.source.loader import manifest_path

__all__ = ["register", "cmd_diff"]


def _is_package(spec: str) -> bool:
    from engine.source.revision import is_revision  # git, for the command that reads revisions

    return is_revision(spec) or (Path(spec).is_dir() and manifest_path(Path(spec)).is_file())


def _load(spec: str, args: argparse.Namespace, scratch: Path) -> Policy:
    from engine.source.revision import export_revision, is_revision

    if is_revision(spec):
        folder = scratch / f"side{len(list(scratch.iterdir()))}"
        folder.mkdir()
        spec = str(export_revision(spec, folder))
    return load_policy(spec, backend=args.backend, fact_modules=fact_modules(args))


def cmd_diff(args: argparse.Namespace) -> int:
    from engine.explanation.diff import diff  # imported by the command that compares

    rest = list(args.paths)
    new_spec = rest.pop(0) if rest and _is_package(rest[0]) else None
    overrides = parameter_overrides(args)
    if new_spec is None and not overrides:
        raise UsageError("give the new version of the package (a folder or REV:PATH), or --set NAME=VALUE")
    with tempfile.TemporaryDirectory(prefix="policy-diff-") as scratch:
        old = _load(args.old, args, Path(scratch))
        new = _load(new_spec, args, Path(scratch)) if new_spec else old
        if overrides:
            new = new.with_parameters(overrides)
        report = diff(
            old,
            new,
            [Path(p) for p in rest],
            as_of=parse_date(args.as_of),
            stage=args.stage,
            outside_period=args.outside_period,
        )
    if args.format == "json":
        print(json_text(report.to_json(), indent=2))
    elif args.format == "html":
        if not args.output:
            raise UsageError("--format html needs -o FILE.html")
    else:
        print(report.to_text())
    if args.output:
        page = report.to_html() if args.format == "html" else report.to_text()
        Path(args.output).write_text(page, encoding="utf-8")
    return 1 if args.fail_on_change and report.changed else 0


def register(commands: Any) -> None:
    help = "what an edit of a rule package changes: definitions by meaning, and the decisions that move"
    sub = commands.add_parser("diff", help=help, description=help)
    sub.add_argument("old", help="the old package: a folder, or REV:PATH (e.g. HEAD~1:rules/sovereign_ai)")
    sub.add_argument(
        "paths",
        nargs="*",
        metavar="[NEW] FACTS",
        help="the new package (a folder or REV:PATH; omitted: OLD with the --set overrides), then fact files",
    )
    sub.add_argument("--as-of", help="evaluate as of this date (YYYY-MM-DD); default: each cohort's date")
    sub.add_argument("--stage", help="the stage to decide; default: each cohort's stage")
    add_period_option(sub)
    sub.add_argument("--backend", choices=["generated", "python", "durable"], default="generated", help="the evaluator")
    sub.add_argument("--format", choices=["text", "json", "html"], default="text")
    sub.add_argument("-o", "--output", help="also write the report to this file (html: the only output)")
    sub.add_argument("--fail-on-change", action="store_true", help="exit 1 when any decision changes (for CI)")
    add_trust_option(sub)
    add_whatif_options(sub, facts=False)
    sub.set_defaults(handler=cmd_diff)
