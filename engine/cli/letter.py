"""`policy letter`: the decision letter an official sends to one subject (or to every subject).

`policy letter RULES FACTS ID` prints the letter as text; `-o FILE.html` writes it as one HTML
page; `--all -o DIR` writes one page per subject (`DIR/<id>.html`). `--lang ko` writes it in Korean.
Every page is built before any is written: an error leaves no partial letter behind.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.cli.common import UsageError, add_lang_option, decide, facts_command
from engine.core.text import shown
from engine.explanation.letter import write_letter

__all__ = ["register", "cmd_letter"]


def cmd_letter(args: argparse.Namespace) -> int:
    if args.all == (args.id is not None):
        raise UsageError("give the id of one subject, or --all (with -o DIR)")
    if args.all and not args.output:
        raise UsageError("--all writes one page per subject: give the folder with -o DIR")
    policy, result = decide(args)
    if args.id is not None and args.id not in result.decisions:
        known = ", ".join(shown(i) for i in result.decisions)
        raise UsageError(f"no subject `{shown(args.id)}` in {shown(args.facts)}; ids: {known}")
    ids = list(result.decisions) if args.all else [args.id]
    letters = {i: write_letter(policy, result, i, args.lang) for i in ids}
    if args.output is None:
        print(letters[args.id].to_text())
        return 0
    if args.all:
        folder = Path(args.output)
        pages = {folder / f"{i}.html": letter.to_html() for i, letter in letters.items()}
        folder.mkdir(parents=True, exist_ok=True)
        for path, page in pages.items():
            path.write_text(page, encoding="utf-8")
        print(shown(f"wrote {len(pages)} letter(s) to {folder}"))
        return 0
    Path(args.output).write_text(letters[args.id].to_html(), encoding="utf-8")
    print(shown(f"wrote {args.output}: the letter to {args.id}"))
    return 0


def register(commands: Any) -> None:
    letter = facts_command(
        commands,
        "letter",
        "write the decision letter to one subject: outcome, rank, reasons with legal references, "
        "grants and the objection deadline",
        cmd_letter,
    )
    letter.add_argument("id", nargs="?", help="the subject's id, e.g. naver-cloud")
    letter.add_argument("--all", action="store_true", help="one letter per subject (needs -o DIR)")
    letter.add_argument("-o", "--output", help="the HTML file to write (with --all: the folder)")
    add_lang_option(letter)
