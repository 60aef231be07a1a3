#!/usr/bin/env python3
"""The engine's own mutation score: mutate the core with Cosmic Ray's operators, run the tests that
cover each module, and count the mutants the suite kills.

    .venv/bin/python tests/mutation/run.py --sample 40        # a quick, reproducible sample
    .venv/bin/python tests/mutation/run.py                    # every mutant (hours)
    .venv/bin/python tests/mutation/run.py --module stages    # the modules whose path contains `stages`

Needs the `mutation` extra (`pip install -e '.[mutation]'`); it is not run by the test suite or CI.
The worktree is never touched: the project is copied to a temporary folder, each mutant is applied
there by Cosmic Ray (`cosmic_ray.mutating.mutate_and_test`), and the tests run there (so `engine`
is imported from the copy). Mutants listed as equivalent in docs/testing.md (same behaviour as the
original, so no test can kill them) are reported apart and left out of the score; so are mutants
inside type annotations, which are never evaluated.

Prints each surviving mutant with its place (`file:line:col`) and diff, then
`engine mutation score: K of N killed (P%)`; exits 1 when the score is below `--target` (90%).
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EQUIVALENTS_DOC = ROOT / "docs" / "testing.md"

# The core, and the tests that decide each module's behaviour (fast, decisive files first: `-x`
# stops at the first failure, so a killed mutant usually costs a few seconds).
SEMANTICS = ["tests/test_logic_table.py", "tests/test_semantics.py", "tests/test_grants.py"]
DECISIONS = ["tests/test_sovereign_ai.py", "tests/test_golden_decide.py", "tests/test_programme.py"]
RANKING = ["tests/test_ranking.py", "tests/test_allocation.py", "tests/test_periods.py", "tests/test_uncertain.py"]
PROPERTIES = ["tests/test_properties.py"]
MODULES: dict[str, list[str]] = {
    "engine/evaluation/compiler.py": [
        *SEMANTICS,
        "tests/test_expr.py",
        *DECISIONS,
        *PROPERTIES,
        "tests/test_uncertain.py",
        "tests/test_decisions.py",
        "tests/test_generated.py",  # the generated code held to the closures' answers, on rules written for both
    ],
    "engine/evaluation/generated.py": [
        "tests/test_generated.py",
        *SEMANTICS,
        *DECISIONS,
        *PROPERTIES,
        "tests/test_uncertain.py",
    ],
    "engine/evaluation/compiled.py": [*SEMANTICS, *DECISIONS, *RANKING, *PROPERTIES],
    "engine/evaluation/evaluate.py": [
        *SEMANTICS,
        *RANKING,
        *DECISIONS,
        *PROPERTIES,
        "tests/test_decisions.py",
        "tests/test_scale.py",  # a cohort over chunks: the worker's steps
    ],
    "engine/evaluation/stages.py": [*RANKING, *SEMANTICS, *DECISIONS, *PROPERTIES],
    "engine/evaluation/uncertain.py": ["tests/test_intervals.py", *RANKING, *SEMANTICS, *DECISIONS],
    "engine/evaluation/durable/backend.py": [
        *SEMANTICS,
        "tests/test_ranking.py",
        "tests/test_allocation.py",
        "tests/test_durable_host.py",
        "tests/test_durable_lowering.py",
        *DECISIONS,
        *PROPERTIES,
    ],
    "engine/language/checker.py": [
        "tests/test_golden_check.py",
        "tests/test_soundness.py",
        "tests/test_expr.py",
        *SEMANTICS,
        "tests/test_sovereign_ai.py",
        "tests/test_reading.py",
        *RANKING,
        "tests/test_explain.py",  # the policy's graph: nodes, edges and outcome rows as the checker records them
    ],
    "engine/explanation/whynot.py": [
        "tests/test_explain.py",
        "tests/test_sovereign_ai.py",
        "tests/test_allocation.py",
        *PROPERTIES,
    ],
}
IGNORED = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", ".hypothesis", ".mypy_cache", ".ruff*")


@dataclass(frozen=True)
class Outcome:
    place: str
    operator: str
    original: str
    mutated: str
    killed: bool
    diff: str
    output: str


def equivalents(doc: Path = EQUIVALENTS_DOC) -> set[tuple[str, str, str]]:
    """(module, original line, mutated line) of each mutant docs/testing.md shows to be equivalent.

    Rows of its table look like: | `engine/x.py` | `original line` → `mutated line` | why |"""
    row = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*`(.+?)`\s*→\s*`(.+?)`\s*\|")
    found: set[tuple[str, str, str]] = set()
    for line in doc.read_text(encoding="utf-8").splitlines() if doc.exists() else []:
        match = row.match(line)
        if match:
            found.add((match.group(1), _norm(match.group(2)), _norm(match.group(3))))
    return found


def _norm(code: str) -> str:
    return " ".join(code.replace("\\|", "|").split())


def _changed_line(diff: str) -> tuple[str, str]:
    """The first removed and added lines of a unified diff (the mutated line, before and after)."""
    removed = next((line[1:] for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")), "")
    added = next((line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")), "")
    return _norm(removed), _norm(added)


def annotations(path: Path) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the type annotations of a module are (start and end, line and column).

    Every engine module starts with `from __future__ import annotations`, so annotations are never
    evaluated: a mutant inside one (`int | None` → `int // None`) is equivalent by construction."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        parts: list[ast.expr | None] = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            parts.append(node.returns)
        elif isinstance(node, ast.arg):
            parts.append(node.annotation)
        elif isinstance(node, ast.AnnAssign):
            parts.append(node.annotation)
        for part in parts:
            if part is not None:
                found.append(((part.lineno, part.col_offset), (part.end_lineno or 0, part.end_col_offset or 0)))
    return found


def mutants(copy: Path, modules: list[str]) -> Iterator[tuple[str, object]]:
    """Every Cosmic Ray mutation of `modules` in the copy, in a stable order, less those inside
    type annotations (equivalent: never evaluated)."""
    from cosmic_ray.commands.init import _all_work_items

    for module in modules:
        path = copy / module
        assert "from __future__ import annotations" in path.read_text(encoding="utf-8"), module
        spans = annotations(path)
        for item in _all_work_items([path], {}):
            spec = item.mutations[0]
            if not any(start <= tuple(spec.start_pos) <= end for start, end in spans):
                yield module, spec


def run_tests(copy: Path, tests: list[str], timeout: float) -> tuple[bool, str]:
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    done = subprocess.run(command, cwd=copy, capture_output=True, text=True, timeout=timeout)
    return done.returncode == 0, done.stdout[-2000:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=None, help="test a random sample of N mutants")
    parser.add_argument("--seed", type=int, default=16, help="seed of the sample (default: 16)")
    parser.add_argument("--module", action="append", help="only modules whose path contains this text")
    parser.add_argument("--target", type=float, default=0.9, help="lowest passing score (default: 0.9)")
    parser.add_argument("--list", action="store_true", help="list the mutants that would run, and stop")
    args = parser.parse_args(argv)
    try:
        from cosmic_ray.mutating import mutate_and_test
    except ImportError:
        print("error: Cosmic Ray is not installed: pip install -e '.[mutation]'", file=sys.stderr)
        return 2

    modules = [m for m in MODULES if not args.module or any(part in m for part in args.module)]
    with tempfile.TemporaryDirectory(prefix="engine-mutation-") as folder:
        copy = Path(folder) / "project"
        shutil.copytree(ROOT, copy, ignore=IGNORED)
        os.environ["PYTHONPATH"] = str(copy)  # `policy` subprocesses of the tests import the copy too
        os.environ["HYPOTHESIS_PROFILE"] = "ci"
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        everything = list(mutants(copy, modules))
        chosen = random.Random(args.seed).sample(everything, args.sample) if args.sample else everything
        chosen.sort(key=lambda pair: (pair[0], pair[1].start_pos))  # type: ignore[attr-defined]
        print(f"{len(everything)} mutants in {len(modules)} modules; testing {len(chosen)}", flush=True)
        if args.list:
            for module, spec in chosen:
                print(f"  {module}:{spec.start_pos[0]}:{spec.start_pos[1]} {spec.operator_name}")  # type: ignore[attr-defined]
            return 0
        timeouts: dict[str, float] = {}
        for module in sorted({m for m, _ in chosen}):
            start = time.monotonic()
            ok, output = run_tests(copy, MODULES[module], timeout=1800)
            if not ok:
                print(f"error: the tests of {module} fail before any mutation:\n{output}", file=sys.stderr)
                return 2
            timeouts[module] = 3 * (time.monotonic() - start) + 30
        known = equivalents()
        outcomes: list[Outcome] = []
        equivalent: list[Outcome] = []
        previous = os.getcwd()
        os.chdir(copy)  # Cosmic Ray runs the test command in the current folder
        try:
            for number, (module, spec) in enumerate(chosen, 1):
                tests = " ".join(MODULES[module])
                command = f"{sys.executable} -m pytest -x -q -p no:cacheprovider {tests}"
                result = mutate_and_test([spec], command, timeouts[module])
                if result.diff is None:
                    continue  # Cosmic Ray found nothing to mutate here
                original, mutated = _changed_line(result.diff)
                line, column = spec.start_pos  # type: ignore[attr-defined]
                outcome = Outcome(
                    place=f"{module}:{line}:{column + 1}",
                    operator=spec.operator_name,  # type: ignore[attr-defined]
                    original=original,
                    mutated=mutated,
                    killed=result.is_killed,
                    diff=result.diff,
                    output=result.output or "",
                )
                if (module, original, mutated) in known:
                    equivalent.append(outcome)
                else:
                    outcomes.append(outcome)
                verdict = "killed" if outcome.killed else "SURVIVED"
                print(f"[{number}/{len(chosen)}] {verdict}: {outcome.place} {outcome.operator}", flush=True)
        finally:
            os.chdir(previous)
    survivors = [o for o in outcomes if not o.killed]
    for o in survivors:
        print(f"survived: {o.place} ({o.operator}): `{o.original}` → `{o.mutated}`")
    for o in equivalent:
        print(f"equivalent (docs/testing.md): {o.place}: `{o.original}` → `{o.mutated}`")
    killed = len(outcomes) - len(survivors)
    score = killed / len(outcomes) if outcomes else 1.0
    print(f"engine mutation score: {killed} of {len(outcomes)} killed ({score:.0%})")
    return 0 if score >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
