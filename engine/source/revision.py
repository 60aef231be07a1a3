"""A package as it was at a git revision (`REV:PATH`), read with git: nothing is checked out.

`export_revision("HEAD~1:rules/sovereign_ai", into)` writes the files of that folder at that
revision under `into` (a folder the caller owns, e.g. a temporary one) and returns the package's
folder there. Git runs as a program with its arguments as a list (no shell); the working tree,
the index and HEAD are left alone.
"""

from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath

from engine.core.diagnostics import Diagnostic, Span
from engine.core.errors import PolicyError

__all__ = ["is_revision", "export_revision"]


def is_revision(spec: str) -> bool:
    """Whether `spec` reads as `REV:PATH` rather than a folder on disk."""
    rev, colon, _ = spec.partition(":")
    return bool(colon and rev) and not Path(spec).exists() and len(rev) > 1  # `C:\\...` is a Windows drive


def _git(args: list[str], spec: str) -> bytes:
    try:
        done = subprocess.run(["git", *args], capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise _bad(spec, f"git could not be run: {error}") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise _bad(spec, message[-1] if message else f"git {args[0]} failed")
    return done.stdout


def _bad(spec: str, message: str) -> PolicyError:
    return PolicyError([Diagnostic(code="bad-revision", message=f"`{spec}`: {message}", span=Span(spec))])


def export_revision(spec: str, into: Path) -> Path:
    """Write the folder `PATH` as it was at `REV` under `into`; return the package folder there."""
    rev, _, path = spec.partition(":")
    folder = PurePosixPath(path.strip("/") or ".")
    listing = _git(["ls-tree", "-r", "-z", "--full-name", "--name-only", rev, "--", f"./{folder}"], spec)
    names = [n for n in listing.decode("utf-8").split("\0") if n]
    if not names:
        raise _bad(spec, f"no files under `{folder}` at revision `{rev}`")
    prefix = _git(["rev-parse", "--show-prefix"], spec).decode("utf-8").strip()
    base = PurePosixPath(prefix) / folder if prefix else folder
    for name in names:
        relative = PurePosixPath(name).relative_to(base) if str(base) != "." else PurePosixPath(name)
        if ".." in relative.parts:
            raise _bad(spec, f"`{name}` leads out of the package folder")
        target = into.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_git(["cat-file", "blob", f"{rev}:{name}"], spec))
    return into
