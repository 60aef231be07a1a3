"""The README's command-line tour runs as written: every command of its first block exits 0
without a traceback, and the sample output of `policy evaluate` is what the command prints."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, RULES

README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## The command line", 1)[1].split("\n## ", 1)[0]


def _commands() -> list[str]:
    block = re.findall(r"```sh\n(.*?)```", SECTION, re.S)[0]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.startswith("policy ")]


def _policy(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "engine", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_every_command_of_the_command_line_tour_runs(tmp_path: Path) -> None:
    commands = _commands()
    assert len(commands) >= 15
    work = tmp_path / "work"
    shutil.copytree(RULES.parent, work / "rules")
    shutil.copytree(ROOT / "examples", work / "examples")
    edited = tmp_path / "new"
    shutil.copytree(RULES, edited)
    params = edited / "parameters.yaml"
    params.write_text(params.read_text().replace("2026-01-15: 70.0", "2026-01-15: 75.0"))
    record = None
    for line in commands:
        args = shlex.split(line)[1:]
        if args[0] == "serve":
            continue  # a server: tests/test_server.py runs it
        args = [str(edited) if a == "NEW_FOLDER" else a for a in args]
        if args[0] == "replay":
            assert record is not None, "the tour records a decision before it replays one"
            args = [a if a != "RECORD_ID" else record for a in args]
        done = _policy(args, work)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr, line
        if "--record" in args:
            found = re.search(r"record ([0-9a-f]{64})", done.stdout + done.stderr)
            assert found, done.stdout
            record = found.group(1)
    assert (work / "report.html").stat().st_size > 0 and (work / "policy.html").stat().st_size > 0


def test_the_sample_evaluate_output_is_what_the_command_prints() -> None:
    sample = re.search(r"```\n\$ (policy evaluate [^\n]*)\n(.*?)```", SECTION, re.S)
    assert sample is not None
    done = _policy(shlex.split(sample.group(1))[1:], ROOT)
    assert done.returncode == 0, done.stderr
    shown = [line.rstrip() for line in done.stdout.splitlines()]
    expected = [line.rstrip() for line in sample.group(2).splitlines()]
    assert len(shown) == len(expected), done.stdout
    for got, wanted in zip(shown, expected, strict=True):
        pieces = wanted.split("...")  # the README shortens long lines with "...", their ends too
        pattern = ".*".join(re.escape(p) for p in pieces) + (".*" if len(pieces) > 1 else "")
        assert re.fullmatch(pattern, got), f"README: {wanted}\nprinted: {got}"


@pytest.mark.parametrize("word", ["evaluate", "explain", "report", "check", "test", "schema", "diff", "doc"])
def test_each_command_the_readme_names_has_help(word: str) -> None:
    done = _policy([word, "--help"], ROOT)
    assert done.returncode == 0 and "usage: " in done.stdout
