"""The `policy` command line: one module per command group, on top of every other folder.

Owns the commands people run: `main` builds the parser and maps errors to exit codes (0 success, 1 evaluation or check
failure, 2 bad usage or unreadable input); each command group (`decide`, `package`,
`consistency`, `serve`) registers its subcommands. The only folder that prints; it may import every
other folder of the engine.
"""

from engine.core.collector import long_lived as _long_lived

with _long_lived():  # the loader, the checker and the evaluators: built once, kept (see `engine.core.collector`)
    from engine.cli.main import COMMAND_MODULES, UsageError, build_parser, main

__all__ = ["main", "build_parser", "UsageError", "COMMAND_MODULES"]
