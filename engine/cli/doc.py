"""`policy doc`: the rule package as a document for policymakers and the public (Markdown or HTML)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.cli.common import UsageError, add_trust_option, load
from engine.core.text import shown, shown_lines

__all__ = ["register", "cmd_doc"]

_SUFFIXES = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html"}
_FORMATS = tuple(dict.fromkeys(_SUFFIXES.values()))  # engine.explanation.document.FORMATS, without importing it


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    if args.output is None:
        return "md"
    suffix = Path(args.output).suffix.lower()
    if suffix not in _SUFFIXES:
        raise UsageError(f"cannot tell the format of `{args.output}` from its extension: give --format md|html")
    return _SUFFIXES[suffix]


def cmd_doc(args: argparse.Namespace) -> int:
    from engine.explanation.document import render_document  # imported by the command that writes it

    fmt = _format(args)
    ir = load(args).ir
    text = render_document(ir, fmt)
    if args.output is None:
        print(shown_lines(text), end="")
        return 0
    Path(args.output).write_text(text, encoding="utf-8")
    counts = f"{len(ir.stages)} stage(s), {len(ir.rules)} rule(s), {len(ir.values)} value(s), "
    print(shown(f"wrote {args.output}: {counts}{len(ir.parameters)} parameter(s)"))
    return 0


def register(commands: Any) -> None:
    help = "write the rule package as a document (stages, rules, values, parameters in plain words)"
    doc = commands.add_parser("doc", help=help, description=help)
    doc.add_argument("rules", help="the rule package (folder holding policy.yaml)")
    doc.add_argument("-o", "--output", help="the file to write (.md or .html); default: Markdown to stdout")
    doc.add_argument("--format", choices=list(_FORMATS), help="md or html (default: from the extension of -o)")
    add_trust_option(doc)
    doc.set_defaults(handler=cmd_doc)
