#!/usr/bin/env python3
"""Set-up and the two quick-start commands, with nothing but Python 3.11+ installed.

    python3 dev.py demo    # create .venv, install, evaluate the stage-1 cohort and explain a decision
    python3 dev.py test    # create .venv, install, run the whole test suite (deterministic Hypothesis)

Both create `.venv` beside this file on first use and reinstall only when `pyproject.toml`
changes. Extra arguments after `test` go to pytest (e.g. `python3 dev.py test -k cli`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"


def _stamp() -> Path:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    return VENV / f".installed-{digest}"


def ensure_environment() -> None:
    """Create the virtual environment and install the project into it (once per pyproject)."""
    if sys.version_info < (3, 11):  # noqa: UP036 - tells users of older Pythons what they need
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating {VENV.name} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if not _stamp().exists():
        print("installing the project and its test tools (first run only) ...", flush=True)
        pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        subprocess.run(pip + ["-e", f"{ROOT}[test,scale,bench]"], check=True, cwd=ROOT)
        for old in VENV.glob(".installed-*"):
            old.unlink()
        _stamp().touch()


def run(*command: str) -> int:
    print("$ " + " ".join(command), flush=True)
    return subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT).returncode


def demo() -> int:
    code = run("policy", "evaluate", "rules/sovereign_ai", "examples/stage1.yaml")
    if code == 0:
        print(flush=True)
        code = run("policy", "explain", "rules/sovereign_ai", "examples/stage1.yaml", "naver-cloud")
    return code


def test(extra: list[str]) -> int:
    env = dict(os.environ, HYPOTHESIS_PROFILE=os.environ.get("HYPOTHESIS_PROFILE", "ci"))
    code = subprocess.run([str(PYTHON), "-m", "pytest", *extra], cwd=ROOT, env=env).returncode
    if code == 5:  # pytest: no tests collected
        print("error: no tests were collected", file=sys.stderr)
        return 1
    return code


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__)
        return 2
    try:
        ensure_environment()
    except subprocess.CalledProcessError as error:
        print(f"error: set-up failed ({error})", file=sys.stderr)
        return 2
    return demo() if argv[0] == "demo" else test(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
