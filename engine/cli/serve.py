"""`policy serve RULES`: the HTTP service (FastAPI on uvicorn) over a hot-reloadable policy.

Binds to 127.0.0.1 by default: the service has no authentication, so exposing it (`--host
0.0.0.0`) is a deliberate choice, and the command says so. `POST /v1/reload` (or `--watch
SECONDS`) swaps in a new version of the rule package without a restart; a broken one is
rejected and the previous version keeps answering.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from typing import Any

from engine.cli.common import UsageError, add_trust_option, fact_modules
from engine.core.text import shown

__all__ = ["register", "cmd_serve"]


def register(commands: Any) -> None:
    """Add the `serve` subcommand to the `policy` command line."""
    help = "serve the policy over HTTP (evaluate, explain, policy, reload, healthz)"
    serve = commands.add_parser("serve", help=help, description=help)
    serve.add_argument("rules", help="the rule package (folder holding policy.yaml)")
    add_trust_option(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8181, help="port (default: 8181)")
    serve.add_argument(
        "--backend",
        choices=["generated", "python", "durable"],
        default="generated",
        help="the evaluator (default: generated)",
    )
    serve.add_argument(
        "--watch", type=float, metavar="SECONDS", help="reload the package when its files change, polling every SECONDS"
    )
    serve.add_argument(
        "--max-body",
        type=int,
        default=1024 * 1024,
        metavar="BYTES",
        help="largest request body accepted (default: 1 MiB)",
    )
    serve.add_argument(
        "--record",
        metavar="DB",
        help="keep decision records in DB (a SQLite file, created if missing, or a postgresql:// URL): "
        "`POST /v1/evaluate?record=true` appends one; `GET /v1/records` reads them",
    )
    serve.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"], default="info")
    serve.set_defaults(handler=cmd_serve)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _log_to_stderr(level: str) -> None:
    """Reloads, rejections and internal errors of the engine, in the server's log."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    logger = logging.getLogger("engine")
    logger.addHandler(handler)
    logger.setLevel(level.upper())


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from engine.embedding.store import PolicyStore
    from engine.service.server import create_app

    if args.watch is not None and args.watch <= 0:
        print("error: --watch needs a positive number of seconds", file=sys.stderr)
        return 2
    _log_to_stderr(args.log_level)
    records = _records(args.record)  # a database that cannot be used: exit 2, before anything is loaded
    store = PolicyStore(
        args.rules, backend=args.backend, fact_modules=fact_modules(args)
    )  # a broken package: PolicyError, exit 1
    identity = store.current.identity
    print(
        shown(f"policy {identity.name} {identity.version} ({identity.digest[:12]}) · backend {args.backend}"),
        file=sys.stderr,
    )
    if not _loopback(args.host):
        print(
            f"warning: listening on {args.host}: reachable from other machines, and the service has no authentication",
            file=sys.stderr,
        )
    if args.watch:
        store.watch(args.watch)
    app = create_app(store, max_body=args.max_body, records=records)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    finally:
        store.close()
        if records is not None:
            records.close()
    return 0


def _records(target: str | None) -> Any:
    """The record store of `--record DB`, or None."""
    if target is None:
        return None
    from engine.core.errors import RecordError
    from engine.records.store import RecordStore

    try:
        return RecordStore.open(target, create=True)
    except RecordError as error:
        raise UsageError(str(error)) from None
