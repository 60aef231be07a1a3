"""The figures of docs/performance.md, rendered from the benchmark scripts' JSON.

    .venv/bin/python tests/benchmarks/run.py --json /tmp/run.json
    .venv/bin/python tests/benchmarks/peers.py --json /tmp/peers.json
    .venv/bin/python tests/benchmarks/report.py /tmp/run.json /tmp/peers.json --write docs/performance.md

Prints the Markdown tables (the targets with their verdicts, per-decision figures by backend, the
whole process, memory, the peer table), or with `--write FILE` replaces the part of FILE between
the two marker lines below, so the document's figures are regenerated, never retyped.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["render", "write", "START", "END"]

START = "<!-- figures: tests/benchmarks/report.py writes from here to the end marker; do not edit by hand -->"
END = "<!-- end of figures -->"


def _ratio(value: float | None) -> str:
    return f"{value:,.1f}x" if value is not None else ""


def _about(name: str, figures: dict[str, Any]) -> str:
    quick = " **(--quick: a smoke run, not the benchmark's sizes)**" if figures.get("quick") else ""
    return f"- `{name}`: {figures['date']}, commit `{figures['commit'].split()[0]}`; {figures['machine']}{quick}"


def render(run: dict[str, Any], peers: dict[str, Any] | None) -> str:
    lines = ["**Runs** (figures below are from these):", "", _about("run.py", run)]
    if peers:
        lines.append(_about("peers.py", peers))
    lines += ["", "### Targets", "", "| target | figure | ratio | limit | verdict |", "|---|---|---|---|---|"]
    for t in run.get("targets", []):
        verdict = t["verdict"] if t["verdict"] != "missed" else "**missed**"
        limit = f"≤ {t['limit']:g}x" if t["limit"] is not None else ""
        lines.append(f"| {t['name']} | {t['figure']} | {_ratio(t['ratio'])} | {limit} | {verdict} |")
    backends = run.get("backends", {})
    if backends:
        missing = "; ".join(f"`{k}`: {v}" for k, v in backends.get("not_loaded", {}).items())
        lines += [
            "",
            f"Default backend: `{backends['default']}`; backends measured: "
            + ", ".join(f"`{b}`" for b in backends.get("loaded", []))
            + (f"; not loaded: {missing}" if missing else ""),
        ]
    for key in sorted((k for k in run if re.fullmatch(r"speed\.\d+", k)), key=lambda k: int(k.split(".")[1])):
        size = int(key.split(".")[1])
        lines += [
            "",
            f"### Per decision, stage-1 cohort of {size} teams (CPU time, best of several runs)",
            "",
            "| | per decision | against hand-written Python |",
            "|---|---|---|",
        ]
        for row in run[key]:
            ratio = _ratio(row["ratio"])
            if row["what"].startswith("durable backend against"):
                ratio += " (against the hand-written durable ruleset)"
            lines.append(f"| {row['what']} | {row['us_per_decision']:,.1f} µs | {ratio} |")
    flat, hand = run.get("scale.flatness"), run.get("scale.flatness_hand")
    if flat and hand:
        lines += [
            "",
            "### Per decision by cohort size (one cohort per size, each in a fresh process; wall clock, trace on)",
            "",
            "| subjects | default evaluator | hand-written stage 1, same facts | engine / hand-written |",
            "|---|---|---|---|",
        ]
        for size in sorted(flat, key=int):
            lines.append(
                f"| {int(size):,} | {flat[size]:,.1f} µs | {hand[size]:,.1f} µs | {flat[size] / hand[size]:.2f}x |"
            )
    memory = run.get("scale.peak_rss_mib")
    if memory and "facts_mib" in memory:
        lines += [
            "",
            f"### Memory of {memory['size']:,} subjects, trace=False (one process; RSS)",
            "",
            "| | RSS |",
            "|---|---|",
            f"| after loading the package | {memory['loaded_mib']:,.0f} MiB |",
            f"| after validating the facts, before the evaluation starts | {memory['facts_mib']:,.0f} MiB |",
            f"| peak, the evaluation included | {memory['mib']:,.0f} MiB |",
        ]
    process = run.get("process")
    if process:
        cpu, wall = process["cpu_s"], process["wall_s"]
        lines += [
            "",
            f"### Whole process (best of {process['runs']}, run alternately)",
            "",
            "| | CPU (user + system) | wall clock |",
            "|---|---|---|",
            f"| `policy evaluate rules/sovereign_ai examples/stage1.yaml` | {cpu['evaluate'] * 1e3:,.0f} ms "
            f"| {wall['evaluate'] * 1e3:,.0f} ms |",
            f'| `python -c "import pydantic, yaml"` | {cpu["baseline"] * 1e3:,.0f} ms '
            f"| {wall['baseline'] * 1e3:,.0f} ms |",
            f"| ratio | {process['ratio']:.1f}x | {wall['evaluate'] / wall['baseline']:.1f}x |",
        ]
        floors = process.get("floors", {})
        if floors:
            lines += [
                "",
                "The floors under the target, in the same alternation: what a process pays in imports "
                "alone, before it reads a file: pydantic's model machinery, the package's fact models, the engine's "
                "rule-file models.",
                "",
                "| floor | CPU (user + system) | against the baseline |",
                "|---|---|---|",
            ]
            for key, label in floors.items():
                lines.append(f"| {label} | {cpu[key] * 1e3:,.0f} ms | {cpu[key] / cpu['baseline']:.1f}x |")
    memory = [(k.split(".", 1)[1], v) for k, v in run.items() if k.startswith("rss.")]
    if memory or "reloads" in run:
        lines += ["", "### Memory over many decisions and reloads (issue 5's targets, kept)", ""]
        for backend, m in memory:
            verdict = "met" if m["growth"] <= 0.05 else "**missed**"
            lines.append(
                f"- RSS over {m['decisions']:,} decisions, `{backend}`: {m['before_mib']:.1f} → "
                f"{m['after_mib']:.1f} MiB ({m['growth']:+.2%}; under 5%: {verdict}; {m['seconds']:.0f} s)"
            )
        if "reloads" in run:
            r = run["reloads"]
            lines.append(
                f"- {r['count']:,} hot reloads (durable): rulesets live {r['rulesets_before']} before, "
                f"{r['rulesets_after']} after; RSS {r['rss_before_mib']:.1f} → {r['rss_after_mib']:.1f} MiB"
            )
    if peers:
        lines += [
            "",
            f"### Peers: the stage-1 determination on {peers['size']:,} generated consortia "
            f"(CPU time of one pass, best of {peers['runs']}; hand-written Python: best of {peers['runs'] * 5})",
            "",
            f"Outcomes: {', '.join(f'{k} {v}' for k, v in peers['outcomes'].items())}. Every peer with a figure "
            "gave the engine's outcome for every consortium.",
            "",
            "| | version | per decision | against hand-written Python |",
            "|---|---|---|---|",
        ]
        for name, row in peers["peers"].items():
            if "ratio" in row:
                lines.append(
                    f"| {name} | {row['version']} | {row['us_per_decision']:,.1f} µs | {_ratio(row['ratio'])} |"
                )
            else:
                lines.append(f"| {name} | | | {row['note']} |")
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    """Replace what lies between START and END in `path` with `text`."""
    document = path.read_text()
    if START not in document or END not in document:
        raise SystemExit(f"{path}: the marker lines are missing:\n{START}\n{END}")
    head, rest = document.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n\n{text}\n{END}{tail}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the JSON of `run.py --json`")
    parser.add_argument("peers", type=Path, nargs="?", help="the JSON of `peers.py --json`")
    parser.add_argument("--write", type=Path, help="replace the figures in this Markdown file")
    args = parser.parse_args(argv)
    text = render(json.loads(args.run.read_text()), json.loads(args.peers.read_text()) if args.peers else None)
    if args.write:
        write(args.write, text)
    else:
        print(text)


if __name__ == "__main__":
    main()
