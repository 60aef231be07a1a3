"""The peer comparison of issue 11: one stage-1 determination, the same generated facts, several engines.

    .venv/bin/python tests/benchmarks/peers.py                 # 1,000 generated consortia, best of 5
    .venv/bin/python tests/benchmarks/peers.py --quick         # 100 consortia, one run (a smoke check)
    .venv/bin/python tests/benchmarks/peers.py --json peers.json

Run by hand, never by pytest (no `test_` names here; tests/test_benchmarks.py runs the quick path).

The determination is the four rules stage 1's outcome rows read: `eligible`,
`meets_core_requirements` (sovereignty: pretrained, foreign-lineage, licence and credit tests of
every component, the team's control, and the committee), `meets_minimum_total` and
`ranked_within_slots` (competition ranking on total, expert, benchmark; 4 places), giving
ineligible / disqualified / eliminated / advanced. Every peer starts from the same validated fact
models (`policy.facts.Consortium`) and ends with an outcome per consortium; what a peer needs to
be handed (a dict, a JSON context, per-component counts) is made inside the timed work. None of
the peers ranks a cohort: the ranking (a sort) is done in Python for them, with
`handwritten.ranks`. What each peer writes in its own language:

- hand-written Python (`handwritten.plain_stage1`): everything, the 1x baseline;
- the engine, on each backend that loads: the rule package itself (with its trace, reasons and
  everything a `Result` holds);
- durable_rules, hand-written (`handwritten.DurableStage1`): per-component counts in Python
  (durable cannot quantify over a list), every rule and outcome test in Rete;
- Cedar (`cedarpy`): the same counts in Python (Cedar has no quantifier over a set), each rule a
  `forbid` policy annotated with its outcome, `advanced` a `permit`; the outcome is the first row
  among the policies Cedar reports as determining;
- GoRules ZEN (`zen-engine`): everything but the ranking, in ZEN expressions over the
  consortium's JSON (`some(...)` over components and lineage, the total summed in ZEN) and a
  first-hit decision table for the outcome rows;
- `rule-engine`: everything but the ranking, as four rule-engine rules over the consortium's
  dict (comprehensions over components and lineage).

Each peer is checked to give the engine's outcome for every consortium before it is timed.
Timings are CPU time (`time.process_time`) of one pass over the cohort, the best of five (the
hand-written baseline, the denominator of every ratio and a pass of a few milliseconds: the best
of 25, so that one quiet moment of the machine cannot flatter the others).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from handwritten import PARAMETERS, DurableStage1, counts, plain_stage1, ranks, stage1_keys  # noqa: E402

from engine import BackendUnavailable, load_policy  # noqa: E402

__all__ = ["generated", "engine_backends", "peers", "check", "main", "Peer", "machine", "commit"]

RULES = ROOT / "rules" / "sovereign_ai"
# Names a backend has had or may have: the reference closures, the durable lowering, the
# code-generating evaluator of issue 11 (when it exists). Each is tried; what does not load is skipped.
BACKEND_NAMES = ("generated", "python", "reference", "durable")
ALIASES = ("python", "reference")  # the reference closures go by one of these: the one not in use is not reported
COMPONENT_KINDS = ["language_backbone", "vision_encoder", "audio_encoder", "tokenizer", "architecture_code"]
LEAD_KINDS = ["company"] * 12 + ["university", "research_institute", "public_institution", "nonprofit", "other"]


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    durable = metadata.version("durable-rules")
    return (
        f"{cpu}, {os.cpu_count()} cores, {int(memory) // 1024 // 1024} GiB; Python "
        f"{platform.python_version()} on {platform.system()} {platform.release()}; durable-rules "
        f"{durable}"
    )


def commit() -> str:
    try:
        found = subprocess.run(
            ["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=True
        )
        return found.stdout.strip()[:100]
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _upstream(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    found: dict[str, Any] = {
        "model": f"model-{depth}-{rng.randint(0, 99)}",
        "owner": rng.choice(["Alibaba Cloud", "Meta", "Zhipu AI", "Hanbit Vision Lab", "Upstage"]),
        "country": rng.choice(["KR", "KR", "KR", "CN", "US"]),
        "licence_restricted": rng.random() < 0.1,
        "credited": rng.random() < 0.9,
    }
    if depth < 2 and rng.random() < 0.3:  # a lineage of up to three models
        found["derivation"] = "fine_tuned"
        found["derived_from"] = _upstream(rng, depth + 1)
    return found


def _component(rng: random.Random, n: int) -> dict[str, Any]:
    component: dict[str, Any] = {"name": f"component {n}", "kind": rng.choice(COMPONENT_KINDS)}
    draw = rng.random()
    if draw < 0.75:
        component["weights"] = {"origin": "team"}
    elif draw < 0.85:
        component["weights"] = {
            "origin": "upstream",
            "upstream": _upstream(rng),
            "use": rng.choice(["frozen", "fine_tuned"]),
        }
    draw = rng.random()
    if draw < 0.7:
        component["code"] = {"origin": "team"}
    elif draw < 0.9:
        component["code"] = {"origin": "open_source", "upstream": _upstream(rng)}
    return component


def generated(size: int, seed: int = 11) -> dict[str, Any]:
    """A stage-1 cohort file's data: `size` consortia with complete facts (every fact the
    determination reads is given, so a peer without three-valued logic can decide them all),
    provenance drawn so that every rule fails for some, scores in tenths near the 70-point minimum
    (ties on the total occur, and are broken by the expert and benchmark scores, or not)."""
    rng = random.Random(seed)
    consortia = []
    for i in range(size):
        tenths = rng.randint
        consortia.append(
            {
                "id": f"team-{i}",
                "name": f"Team {i}",
                "lead": {
                    "name": f"Lead {i}",
                    "country": "KR" if rng.random() < 0.95 else rng.choice(["US", "CN"]),
                    "kind": rng.choice(LEAD_KINDS),
                },
                "model": {
                    "name": f"model {i}",
                    "components": [_component(rng, n) for n in range(rng.randint(1, 3))],
                    "team_controls_development": rng.random() < 0.95,
                    "team_controls_operation": rng.random() < 0.95,
                },
                "scores": {
                    "benchmark": {
                        "nia": tenths(50, 100) / 10,
                        "global_common": tenths(100, 200) / 10,
                        "global_individual": tenths(50, 100) / 10,
                    },
                    "expert": tenths(200, 350) / 10,
                    "user": tenths(150, 250) / 10,
                },
                "panel": {"members": 7, "core_requirements_met": rng.choice([True, True, None, None, False])},
                "history": {"entry": "selected_2025", "stages": []},
            }
        )
    context = {"programme": "benchmark", "stage": "stage1", "date": "2026-01-15", "slots_planned": 4}
    return {"context": context, "consortia": consortia}


def engine_backends() -> tuple[list[tuple[str, Any]], list[tuple[str, str]]]:
    """The engine's backends that load here, by name, without repeats (an alias of a backend
    already listed is skipped), and those that do not, with the reason."""
    loaded: list[tuple[str, Any]] = []
    missing: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name in BACKEND_NAMES:
        try:
            policy = load_policy(RULES, backend=name)  # type: ignore[arg-type]
        except (BackendUnavailable, ValueError) as error:
            if name in ALIASES and "unknown backend" in str(error):
                continue  # a name this version of the engine does not use
            missing.append((name, str(error).splitlines()[0]))
            continue
        kind = type(getattr(policy, "_backend", policy)).__name__
        if kind in seen:
            policy.close()
            continue
        seen.add(kind)
        loaded.append((name, policy))
    return loaded, missing


class Peer:
    """One way of deciding the cohort: `decide(subjects) -> {id: outcome}`."""

    def __init__(self, name: str, decide: Callable[[Sequence[Any]], dict[str, str]], version: str = "") -> None:
        self.name, self.decide, self.version = name, decide, version
        self.close: Callable[[], None] = lambda: None


def _keys_and_ranks(subjects: Sequence[Any]) -> tuple[dict[str, tuple[float, float, float]], dict[str, int]]:
    keys = {s.id: stage1_keys(s) for s in subjects}
    return keys, ranks(keys)


# --- Cedar --------------------------------------------------------------------------------------

_CEDAR_RULES = [
    ("ineligible", "context.lead_country != {home}"),
    ("ineligible", "!({kinds}.contains(context.lead_kind))"),
    ("disqualified", "context.pretrained > 0"),
    ("disqualified", "context.foreign > 0"),
    ("disqualified", "context.restricted > 0"),
    ("disqualified", "context.uncredited > 0"),
    ("disqualified", "!context.dev"),
    ("disqualified", "!context.op"),
    ("disqualified", "context.committee_rejected"),
    ("eliminated", 'context.total.lessThan(decimal("{minimum}"))'),
    ("eliminated", "context.rank > {slots}"),
]
ROWS = ("ineligible", "disqualified", "eliminated")


def cedar_peer() -> Peer:
    import cedarpy

    values = {
        "home": json.dumps(PARAMETERS["home"]),
        "kinds": json.dumps(list(PARAMETERS["lead_kinds"])),
        "minimum": f"{PARAMETERS['minimum']:.4f}",
        "slots": PARAMETERS["slots"],
    }
    text = "\n".join(
        f'@id("{outcome}:{n}") forbid(principal, action == Action::"advance", resource) '
        f"when {{ {when.format(**values)} }};"
        for n, (outcome, when) in enumerate(_CEDAR_RULES)
    )
    text += '\n@id("advanced") permit(principal, action == Action::"advance", resource);'
    policies = cedarpy.PolicySet.from_str(text) if hasattr(cedarpy, "PolicySet") else text

    def decide(subjects: Sequence[Any]) -> dict[str, str]:
        keys, rank = _keys_and_ranks(subjects)
        requests = []
        for s in subjects:
            context = counts(s, PARAMETERS["home"], PARAMETERS["allowed"])
            # Cedar decimals carry four places; the totals here are in tenths
            context["total"] = {"__extn": {"fn": "decimal", "arg": f"{keys[s.id][0]:.4f}"}}
            context["rank"] = rank[s.id]
            principal = {"type": "Consortium", "id": s.id}
            requests.append(
                {
                    "principal": principal,
                    "action": 'Action::"advance"',
                    "resource": 'Stage::"stage1"',
                    "context": context,
                }
            )
        outcomes = {}
        for s, answer in zip(subjects, cedarpy.is_authorized_batch(requests, policies, []), strict=True):
            if answer.diagnostics.errors:
                raise RuntimeError(f"Cedar: {answer.diagnostics.errors}")
            if answer.allowed:
                outcomes[s.id] = "advanced"
                continue
            fired = {a.split(":")[0] for a in answer.diagnostics.id_annotations_by_reason.values()}
            outcomes[s.id] = next(row for row in ROWS if row in fired)
        return outcomes

    return Peer("Cedar (cedarpy)", decide, metadata.version("cedarpy"))


# --- GoRules ZEN --------------------------------------------------------------------------------


def _zen_graph() -> dict[str, Any]:
    home, kinds = json.dumps(PARAMETERS["home"]).replace('"', "'"), json.dumps(list(PARAMETERS["lead_kinds"]))
    kinds = kinds.replace('"', "'")
    allowed = json.dumps(list(PARAMETERS["allowed"])).replace('"', "'")
    upstreams = "[#.weights.upstream, #.code.upstream]"
    expressions = {
        "eligible": f"lead.country == {home} and lead.kind in {kinds}",
        "core": (
            f"not some(model.components, #.weights.origin == 'upstream' and not (#.kind in {allowed}))"
            " and not some(model.components, #.weights.upstream != null"
            f" and some(#.weights.upstream.lineage, #.country != {home}))"
            f" and not some(model.components, some({upstreams}, # != null and #.licence_restricted == true))"
            f" and not some(model.components, some({upstreams}, # != null and #.credited != true))"
            " and model.team_controls_development == true and model.team_controls_operation == true"
            " and (panel == null or panel.core_requirements_met != false)"
        ),
        "total": (
            "scores.benchmark.nia + scores.benchmark.global_common + scores.benchmark.global_individual"
            " + scores.expert + scores.user"
        ),
    }
    rows = [
        ("false", "", "", "", "'ineligible'"),
        ("", "false", "", "", "'disqualified'"),
        ("", "", f"< {PARAMETERS['minimum']}", "", "'eliminated'"),
        ("", "", "", f"> {PARAMETERS['slots']}", "'eliminated'"),
        ("", "", "", "", "'advanced'"),
    ]
    inputs = [("eligible", "eligible"), ("core", "core"), ("total", "total"), ("rank", "rank")]
    table = {
        "hitPolicy": "first",
        "inputs": [{"id": i, "name": i, "field": field} for i, field in inputs],
        "outputs": [{"id": "outcome", "name": "outcome", "field": "outcome"}],
        "rules": [
            {"_id": f"r{n}", **dict(zip([i for i, _ in inputs], row[:4], strict=True)), "outcome": row[4]}
            for n, row in enumerate(rows)
        ],
    }
    nodes = [
        {"id": "in", "type": "inputNode", "name": "consortium", "content": {}},
        {
            "id": "rules",
            "type": "expressionNode",
            "name": "rules",
            "content": {
                "expressions": [{"id": k, "key": k, "value": v} for k, v in expressions.items()],
                "passThrough": True,
            },
        },
        {"id": "rows", "type": "decisionTableNode", "name": "outcome rows", "content": table},
        {"id": "out", "type": "outputNode", "name": "outcome", "content": {}},
    ]
    edges = [
        {"id": f"e{n}", "type": "edge", "sourceId": a, "targetId": b}
        for n, (a, b) in enumerate([("in", "rules"), ("rules", "rows"), ("rows", "out")])
    ]
    for node in nodes:
        node["position"] = {"x": 0, "y": 0}
    return {"contentType": "application/vnd.gorules.decision", "nodes": nodes, "edges": edges}


def zen_peer() -> Peer:
    import zen

    decision = zen.ZenEngine().create_decision(json.dumps(_zen_graph()))

    def decide(subjects: Sequence[Any]) -> dict[str, str]:
        _, rank = _keys_and_ranks(subjects)
        outcomes = {}
        for s in subjects:
            context = s.model_dump(mode="json", include={"lead", "model", "scores", "panel"})
            context["rank"] = rank[s.id]
            outcomes[s.id] = decision.evaluate(context)["result"]["outcome"]
        return outcomes

    return Peer("GoRules ZEN (zen-engine)", decide, metadata.version("zen-engine"))


# --- rule-engine --------------------------------------------------------------------------------


def rule_engine_peer() -> Peer:
    import rule_engine

    context = rule_engine.Context(resolver=rule_engine.resolve_item)
    home, kinds = repr(PARAMETERS["home"]), repr(list(PARAMETERS["lead_kinds"]))
    allowed = repr(list(PARAMETERS["allowed"]))
    borrowed = "[u for u in [c['weights']&['upstream'], c['code']&['upstream']] if u != null]"
    components = "[c for c in s['model']['components'] if"
    scores = "s['scores']"
    texts = {
        "eligible": f"s['lead']['country'] == {home} and s['lead']['kind'] in {kinds}",
        "core": (
            f"{components} c['weights']&['origin'] == 'upstream' and c['kind'] not in {allowed}].is_empty"
            f" and {components} c['weights']&['upstream'] != null"
            f" and [a for a in c['weights']['upstream']['lineage'] if a['country'] != {home}].length > 0].is_empty"
            f" and {components} [u for u in {borrowed} if u['licence_restricted']].length > 0].is_empty"
            f" and {components} [u for u in {borrowed} if not u['credited']].length > 0].is_empty"
            " and s['model']['team_controls_development'] and s['model']['team_controls_operation']"
            " and (s['panel'] == null or s['panel']['core_requirements_met'] != false)"
        ),
        "minimum": (
            f"{scores}['benchmark']['nia'] + {scores}['benchmark']['global_common']"
            f" + {scores}['benchmark']['global_individual'] + {scores}['expert'] + {scores}['user']"
            f" >= {PARAMETERS['minimum']}"
        ),
        "ranked": f"rank <= {PARAMETERS['slots']}",
    }
    rules = {name: rule_engine.Rule(text, context=context) for name, text in texts.items()}
    eligible, core, minimum, ranked = rules["eligible"], rules["core"], rules["minimum"], rules["ranked"]

    def decide(subjects: Sequence[Any]) -> dict[str, str]:
        _, rank = _keys_and_ranks(subjects)
        outcomes = {}
        for s in subjects:
            thing = {"s": s.model_dump(mode="json", include={"lead", "model", "scores", "panel"}), "rank": rank[s.id]}
            if not eligible.matches(thing):
                outcomes[s.id] = "ineligible"
            elif not core.matches(thing):
                outcomes[s.id] = "disqualified"
            elif not (minimum.matches(thing) and ranked.matches(thing)):
                outcomes[s.id] = "eliminated"
            else:
                outcomes[s.id] = "advanced"
        return outcomes

    return Peer("rule-engine", decide, metadata.version("rule-engine"))


def durable_peer() -> Peer:
    ruleset = DurableStage1()
    peer = Peer("durable_rules, hand-written", ruleset.decide, metadata.version("durable-rules"))
    peer.close = ruleset.close
    return peer


def peers() -> tuple[list[Peer], list[tuple[str, str]]]:
    """The peers that can run here, and those that cannot (with the reason)."""
    found, missing = [], []
    for label, make in (
        ("durable_rules, hand-written", durable_peer),
        ("Cedar (cedarpy)", cedar_peer),
        ("GoRules ZEN (zen-engine)", zen_peer),
        ("rule-engine", rule_engine_peer),
    ):
        try:
            found.append(make())
        except ImportError as error:
            missing.append((label, f"not installed ({error}; `pip install -e '.[bench]'`)"))
        except Exception as error:  # e.g. durable_rules present but unusable on this Python
            missing.append((label, f"unavailable: {type(error).__name__}: {error}"))
    return found, missing


def check(name: str, got: dict[str, str], expected: dict[str, str]) -> None:
    """Fail loudly if a peer's outcomes differ from the engine's on any consortium."""
    if got != expected:
        wrong = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
        raise SystemExit(
            f"{name} disagrees with the engine on {len(wrong)} consortium(s) (got, engine): {list(wrong.items())[:3]}"
        )


def cpu_seconds(fn: Callable[[], Any], runs: int) -> float:
    """CPU time of one call, the best of `runs`."""
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def run(size: int, runs: int, out: Callable[[str], None] = print) -> dict[str, Any]:
    """Check every peer against the engine, time them, print the table, return the figures."""
    reference = load_policy(RULES)
    cohort = reference.load_cohort(generated(size))
    subjects = cohort.consortia
    expected = reference.evaluate(cohort).outcomes()
    spread = {o: list(expected.values()).count(o) for o in sorted(set(expected.values()))}
    out(
        f"{size:,} generated consortia, outcomes {spread}; "
        f"CPU time of one pass, best of {runs} (hand-written: {runs * 5})"
    )
    check("hand-written Python", plain_stage1(subjects), expected)
    hand = cpu_seconds(lambda: plain_stage1(subjects), runs * 5)
    rows: list[tuple[str, str, float | None, str]] = [("hand-written Python (handwritten.plain_stage1)", "", hand, "")]
    figures: dict[str, Any] = {"size": size, "runs": runs, "outcomes": spread, "peers": {}}
    loaded, unloaded = engine_backends()
    for name, policy in loaded:
        check(f"the engine ({name})", policy.evaluate(cohort).outcomes(), expected)
        rows.append((f"the engine, backend `{name}`", "", cpu_seconds(lambda p=policy: p.evaluate(cohort), runs), ""))
        policy.close()
    for name, reason in unloaded:
        rows.append((f"the engine, backend `{name}`", "", None, reason))
    found, missing = peers()
    for peer in found:
        check(peer.name, peer.decide(subjects), expected)
        rows.append((peer.name, peer.version, cpu_seconds(lambda p=peer: p.decide(subjects), runs), ""))
        peer.close()
    rows += [(label, "", None, reason) for label, reason in missing]
    out(f"  {'':50} {'version':>8} {'CPU / pass':>11} {'per decision':>13} {'ratio':>8}")
    for label, version, seconds, note in rows:
        if seconds is None:
            out(f"  {label:50} {version:>8} {note}")
            figures["peers"][label] = {"note": note}
            continue
        ratio = seconds / hand
        per = seconds / size * 1e6
        out(f"  {label:50} {version:>8} {seconds * 1e3:9.1f} ms {per:10.1f} µs {ratio:7.1f}x")
        figures["peers"][label] = {"version": version, "cpu_s": seconds, "us_per_decision": per, "ratio": ratio}
    out("  every peer above with a figure gave the engine's outcome for every consortium")
    return figures


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 consortia, one run: a check that it runs")
    parser.add_argument("--size", type=int, help="consortia in the generated cohort (default 1,000)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    size = args.size or (100 if args.quick else 1000)
    if args.quick:
        print("--quick: a smoke run (100 consortia, one run): the ratios are not the benchmark's")
    about = {"machine": machine(), "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit()}
    print(f"machine: {about['machine']}\ndate: {about['date']}; commit {about['commit']}")
    figures = {**about, "quick": args.quick, **run(size, 1 if args.quick else 5)}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False))
    return figures


if __name__ == "__main__":
    main()
