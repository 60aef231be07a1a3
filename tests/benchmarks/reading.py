"""Benchmarks of the reading pass (issue 9): large fact files through `policy evaluate`, YAML and JSON.

    .venv/bin/python tests/benchmarks/reading.py            # 10,000 and 100,000 consortia (about two minutes)
    .venv/bin/python tests/benchmarks/reading.py --quick    # 1,000 and 10,000
    .venv/bin/python tests/benchmarks/reading.py --json figures.json

Run by hand, never by pytest (no `test_` names here). Writes cohorts of N consortia (the five of
`examples/stage1.yaml`, repeated with new ids) as YAML and as JSON, then prints: the time to read
each file (`read_document`, the fast path without positions); `Policy.evaluate` on the data
already parsed (the baseline); `policy evaluate rules/sovereign_ai FILE` in a child process, wall
time and peak RSS (from `os.wait4`), as a ratio against the baseline (target <= 2x); and the large
JSON cohort through the CLI, with its peak RSS (target <= 4 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from engine import load_policy  # noqa: E402
from engine.cli.main import tune_gc  # noqa: E402
from engine.source.files import MAX_INPUT_BYTES, size_text  # noqa: E402
from engine.source.yamlsource import dump_yaml, read_document  # noqa: E402

__all__ = ["main", "cohort", "write_json", "run_cli"]

RULES = ROOT / "rules" / "sovereign_ai"
TARGETS = {"cli": 2.0, "rss_gib": 4.0}
figures: dict[str, Any] = {}


def show(label: str, value: str, ratio: float | None = None, target: float | None = None, key: str = "") -> None:
    verdict = ""
    if ratio is not None:
        verdict = f"  {ratio:7.2f}x"
        if target is not None:
            verdict += f"  (target <= {target}x: {'met' if ratio <= target else f'MISSED by {ratio / target:.1f}x'})"
    print(f"  {label:52} {value:>16}{verdict}")
    if key:
        figures[key] = {"value": value, "ratio": ratio, "target": target}


def _base() -> dict[str, Any]:
    document = read_document(ROOT / "examples" / "stage1.yaml")
    assert not document.diagnostics, document.diagnostics
    return json.loads(json.dumps(document.data, default=str))  # dates as text, as a JSON file holds them


def cohort(size: int) -> dict[str, Any]:
    """The stage-1 cohort with `size` consortia: the five examples repeated, each with a new id."""
    base = _base()
    teams = []
    for i in range(size):
        team = json.loads(json.dumps(base["consortia"][i % len(base["consortia"])]))
        team["id"] = f"{team['id']}-{i}"
        teams.append(team)
    return {**base, "consortia": teams}


def write_json(path: Path, size: int) -> None:
    """A cohort of `size` consortia written one consortium at a time (the writer never holds them all)."""
    base = _base()
    head = {k: v for k, v in base.items() if k != "consortia"}
    with path.open("w", encoding="utf-8") as out:
        out.write(json.dumps(head)[:-1] + ', "consortia": [\n')
        for i in range(size):
            team = dict(base["consortia"][i % len(base["consortia"])], id=f"team-{i}")
            out.write(("" if i == 0 else ",\n") + json.dumps(team))
        out.write("\n]}\n")


# The child reports its own peak (VmHWM of its address space): `ru_maxrss` of a child also counts
# the parent's pages at the fork, which would charge the benchmark's own data to the CLI.
_CHILD = (
    "import sys\n"
    "from engine.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "peak = next(line for line in open('/proc/self/status') if line.startswith('VmHWM:')).split()[1]\n"
    "sys.stderr.write(f'\\nVmHWM {peak}\\n')\n"
    "sys.exit(code)\n"
)


def run_cli(path: Path) -> tuple[float, int]:
    """`policy evaluate` on `path` in a child process: wall seconds and peak RSS in KiB."""
    start = time.perf_counter()
    command = [sys.executable, "-c", _CHILD, "evaluate", str(RULES), str(path)]
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - start
    err = done.stderr.decode(errors="replace")
    if done.returncode != 0 or "VmHWM" not in err:
        raise SystemExit(f"policy evaluate {path.name} exited {done.returncode}:\n{err[-2000:]}")
    return seconds, int(err.rsplit("VmHWM", 1)[1].split()[0])


def best(fn: Any, repeat: int = 2) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return min(runs)


def section_cli(folder: Path, size: int) -> None:
    print(f"\n{size:,} consortia: read, evaluate, and `policy evaluate` (child process)")
    data = cohort(size)
    files = {"yaml": folder / f"cohort-{size}.yaml", "json": folder / f"cohort-{size}.json"}
    files["yaml"].write_text(dump_yaml(data), encoding="utf-8")
    files["json"].write_text(json.dumps(data, indent=1), encoding="utf-8")
    policy = load_policy(RULES)
    tune_gc()  # the same collector settings as `policy evaluate`, so the ratio is reading and start-up alone
    baseline = best(lambda: policy.evaluate(data))
    show("Policy.evaluate on parsed data (baseline)", f"{baseline:.2f} s", key=f"evaluate_{size}")
    for kind, path in files.items():
        size_shown = size_text(path.stat().st_size)
        read = best(lambda path=path: read_document(path, lazy=True))
        show(f"read {kind} ({size_shown})", f"{read:.2f} s", read / baseline, key=f"read_{kind}_{size}")
        seconds, rss = run_cli(path)
        show(f"policy evaluate {kind}", f"{seconds:.2f} s", seconds / baseline, TARGETS["cli"], f"cli_{kind}_{size}")
        show("  peak RSS of that process", f"{rss / 1024:,.0f} MiB", key=f"rss_{kind}_{size}")


def section_large(folder: Path, size: int) -> None:
    print(f"\n{size:,} consortia from one JSON file through `policy evaluate`")
    path = folder / f"cohort-{size}.json"
    write_json(path, size)
    limit = size_text(MAX_INPUT_BYTES)
    show("file size", f"{size_text(path.stat().st_size)}", key=f"size_json_{size}")
    print(f"  (input limit {limit})")
    seconds, rss = run_cli(path)
    show("policy evaluate json", f"{seconds:.1f} s", key=f"cli_json_{size}")
    gib = rss / 1024 / 1024
    show("peak RSS of that process", f"{gib:.2f} GiB", gib / TARGETS["rss_gib"], 1.0, f"rss_json_{size}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a check that it runs")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as folder:
        section_cli(Path(folder), 1_000 if args.quick else 10_000)
        section_large(Path(folder), 10_000 if args.quick else 100_000)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
