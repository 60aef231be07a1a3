"""The benchmark scripts keep running: tests/benchmarks/run.py and peers.py on tiny sizes.

No timing is asserted (speed targets are checked by the scripts' printed figures, never by a
timed test); what is checked is that each script runs and that every baseline and peer reaches
the engine's outcome for every subject before anything is timed.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.durable  # the baselines include a hand-written durable_rules ruleset
pytest.importorskip("durable", reason="durable_rules is not installed here")
BENCHMARKS = Path(__file__).resolve().parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
run = importlib.import_module("run")
peers = importlib.import_module("peers")
report = importlib.import_module("report")
ABOUT = {"date": "today", "commit": "abc", "machine": "this one"}


def test_run_checks_every_backend_and_baseline_then_reports_each_target(capsys: pytest.CaptureFixture[str]) -> None:
    run.targets.clear()
    per_decision = run.section_speed((5, 8), seconds=0.002)  # raises SystemExit if a baseline disagrees
    run.section_explain(per_decision, seconds=0.002)
    names = [t.name for t in run.targets]
    assert sum("default evaluator" in n for n in names) == 2  # at 5 and at 8 teams
    assert sum("durable backend" in n for n in names) == 2
    assert any("explanation graph" in n for n in names)
    assert all(t.verdict in ("met", "missed") for t in run.targets)
    table = "\n".join(run.summary(run.targets))
    assert table.count("met") + table.count("missed") >= len(run.targets)
    out = capsys.readouterr().out
    assert "hand-written durable ruleset" in out
    # the floor under the 3x target, checked to settle the evaluation's own values before it is timed
    assert out.count("the generated pool function alone") == 2
    document = report.render({**run.figures, **ABOUT, "targets": [asdict(t) for t in run.targets]}, None)
    assert "| one decision's explanation graph <= 20x one evaluation |" in document
    assert "### Per decision, stage-1 cohort of 8 teams" in document


def test_a_target_without_a_figure_is_reported_as_not_measured_never_invented() -> None:
    missing = run.Target("peak RSS", "", verdict="not measured (tests/benchmarks/scale.py missing)")
    line = run.summary([missing])[-1]
    assert "not measured" in line and "(tests/benchmarks/scale.py missing)" in line and "x " not in line
    with pytest.raises(ValueError, match="needs a ratio"):
        run.Target("peak RSS", "")


def test_whole_process_section_runs_both_commands() -> None:
    run.targets.clear()
    run.section_process(1)
    (target,) = run.targets
    assert target.ratio is not None and target.ratio > 0 and "policy evaluate" in target.name
    process = run.figures["process"]
    assert set(process["floors"]) == {"first_model", "fact_models", "file_models"}
    assert all(process["cpu_s"][key] > 0 for key in process["floors"])  # each floor ran as a process of its own
    document = report.render({**ABOUT, "targets": [], "process": process}, None)
    assert (
        "policy.facts" in document and "engine.source.model" in document and "The floors under the target" in document
    )


def test_generated_cohort_reaches_every_outcome() -> None:
    policy = peers.load_policy(peers.RULES)
    outcomes = set(policy.evaluate(policy.load_cohort(peers.generated(200))).outcomes().values())
    assert outcomes == {"ineligible", "disqualified", "eliminated", "advanced"}


def test_peer_table_checks_every_engine_backend_and_peer_against_the_engine() -> None:
    lines: list[str] = []
    figures = peers.run(size=20, runs=1, out=lines.append)  # raises SystemExit if any disagrees
    timed = [name for name, row in figures["peers"].items() if "ratio" in row]
    assert "hand-written Python (handwritten.plain_stage1)" in timed
    assert any(name.startswith("the engine") for name in timed)
    assert "durable_rules, hand-written" in timed
    document = report.render({**ABOUT, "targets": []}, {**ABOUT, **figures})
    assert "| hand-written Python (handwritten.plain_stage1) |" in document


def test_report_replaces_only_the_figures_between_the_markers(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text(f"# Performance\nprose\n{report.START}\nold figures\n{report.END}\nmore prose\n")
    report.write(page, "new figures\n")
    assert page.read_text() == f"# Performance\nprose\n{report.START}\n\nnew figures\n\n{report.END}\nmore prose\n"


@pytest.mark.parametrize(
    ("module", "make"), [("cedarpy", "cedar_peer"), ("zen", "zen_peer"), ("rule_engine", "rule_engine_peer")]
)
def test_each_peer_gives_the_engines_outcomes(module: str, make: str) -> None:
    pytest.importorskip(module, reason=f"{module} not installed (pip install -e '.[bench]')")
    policy = peers.load_policy(peers.RULES)
    for data in (peers.generated(60, seed=3), policy.load_cohort(run.EXAMPLE).model_dump(mode="json")):
        cohort = policy.load_cohort(data)
        peer = getattr(peers, make)()
        peers.check(peer.name, peer.decide(cohort.consortia), policy.evaluate(cohort).outcomes())


def test_scale_targets_take_their_verdicts_from_scale_py(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The wiring to tests/benchmarks/scale.py (stood in for here: its real functions take minutes)."""
    (tmp_path / "scale.py").write_text("")
    stand_in = SimpleNamespace(
        flatness=lambda sizes: {sizes[0]: 100.0, sizes[-1]: 125.0},
        # over 10^9 bytes; with what the process held before the evaluation (the floor under the target)
        peak_rss_detail=lambda size: {"peak_mib": 960.0, "loaded_mib": 80.0, "facts_mib": 900.0},
        dask_speedup=lambda size: (10.0, 6.0),  # seconds with 1 worker, with 2
    )
    monkeypatch.setattr(run, "HERE", tmp_path)
    monkeypatch.setitem(sys.modules, "scale", stand_in)
    run.targets.clear()
    run.section_scale(quick=True)
    verdicts = {t.name.split(" ")[0]: (t.verdict, t.ratio) for t in run.targets}
    assert verdicts["per-decision"] == ("met", 1.25)
    assert verdicts["10,000"][0] == "missed"
    assert verdicts["fact"] == ("not measured (tests/benchmarks/scale.py has no `validation_flatness`)", None)
    assert verdicts["Dask"] == ("met", 0.6)
    document = report.render({**run.figures, **ABOUT, "targets": [asdict(t) for t in run.targets]}, None)
    assert "| after validating the facts, before the evaluation starts | 900 MiB |" in document
    assert "| peak, the evaluation included | 960 MiB |" in document
