"""The `policy` command line: the parser, the command groups, and errors mapped to exit codes.

Exit codes: 0 success, 1 evaluation or check failure, 2 bad usage or unreadable/invalid input.
No traceback reaches a user unless `--debug` is given.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence

from engine.cli.common import UsageError
from engine.core.errors import EngineError, FactError, PolicyError
from engine.core.text import shown_lines
from engine.source.document import INPUT_CODES

__all__ = ["main", "build_parser", "UsageError", "COMMAND_MODULES", "COMMAND_HOMES", "tune_gc", "GC_THRESHOLD"]

# The command groups, in the order `policy --help` lists them. Each has `register(commands)`
# taking the argparse subparsers and setting `handler` (a function of the parsed arguments
# returning the exit code).
COMMAND_MODULES: tuple[str, ...] = (
    "engine.cli.decide",
    "engine.cli.package",
    "engine.cli.doc",
    "engine.cli.serve",
    "engine.cli.consistency",
    "engine.cli.diff",
    "engine.cli.records",
    "engine.cli.scaffold",
    "engine.cli.letter",
    "engine.cli.codegen",
)

# The command groups each command needs, so that one command imports and registers only its own
# (`check` takes its search options from `consistency`). A command not named here, and `--help`,
# build the whole parser: this only spares a command the start-up of the others.
COMMAND_HOMES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("evaluate", "explain", "report"), ("engine.cli.decide",)),
    **dict.fromkeys(("graph", "check", "schema"), ("engine.cli.package", "engine.cli.consistency")),
    "doc": ("engine.cli.doc",),
    "serve": ("engine.cli.serve",),
    "test": ("engine.cli.consistency",),
    "diff": ("engine.cli.diff",),
    **dict.fromkeys(("replay", "history", "records"), ("engine.cli.records",)),
    "init": ("engine.cli.scaffold",),
    "letter": ("engine.cli.letter",),
    "compile": ("engine.cli.codegen",),
}

# Diagnostics that mean the input could not be used at all (exit 2, not 1): unreadable files,
# values that cannot exist, an include leading out of the package, a bad --set or git revision.
_INPUT_CODES = INPUT_CODES | {"no-manifest", "include-outside-package", "bad-override", "bad-revision"}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `policy` parser: with every command, or (given `command`) with only the groups it needs."""
    parser = argparse.ArgumentParser(
        prog="policy", description="Decide, explain and check public-programme policies written as YAML rules."
    )
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_HOMES.get(command or "", COMMAND_MODULES):
        importlib.import_module(name).register(commands)
    return parser


def _exit_code(error: EngineError) -> int:
    if isinstance(error, FactError):
        return 2
    if isinstance(error, PolicyError) and error.diagnostics and all(d.code in _INPUT_CODES for d in error.diagnostics):
        return 2
    return 1


# A cohort's evaluation builds many small objects that live until its result is printed; with the
# interpreter's default threshold (700) the cyclic collector scans them again and again, which
# doubled the time of `policy evaluate` on 10,000 consortia. One command is one short process.
GC_THRESHOLD = (100_000, 50, 50)


def tune_gc() -> None:
    """What `policy` does before its first command in a process: what is loaded by then is never
    scanned again, and the cyclic collector runs every 100,000 allocations instead of 700 (cycles
    are still collected). Once per process: callers of `main()` in a long-lived process are not
    frozen again at every call."""
    if gc.get_threshold() != GC_THRESHOLD:
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLD)


def _command_of(argv: Sequence[str]) -> str | None:
    """The command named in `argv` (after the global `--debug`); None if an option comes first (`--help`)."""
    for arg in map(str, argv):
        if arg != "--debug":
            return None if arg.startswith("-") else arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    tune_gc()
    try:
        return int(args.handler(args))
    except UsageError as error:
        print(shown_lines(f"error: {error}"), file=sys.stderr)
        return 2
    except EngineError as error:
        if args.debug:
            raise
        print(shown_lines(str(error)), file=sys.stderr)
        return _exit_code(error)
    except BrokenPipeError:
        return 0
    except (OSError, ImportError) as error:
        if args.debug:
            raise
        print(shown_lines(f"error: {error}"), file=sys.stderr)
        return 2
    except Exception as error:  # a bug of ours: say so plainly, no traceback without --debug
        if args.debug:
            raise
        message = f"internal error: {type(error).__name__}: {error} (run with --debug for the traceback)"
        print(shown_lines(message), file=sys.stderr)
        return 1
