"""Embedding the engine in another service: load once, decide many times, explain on demand.

.venv/bin/python examples/embed.py
"""

from __future__ import annotations

from pathlib import Path

from engine import FactError, load_policy

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    policy = load_policy(ROOT / "rules" / "sovereign_ai")  # checked and compiled once; thread-safe
    print(f"{policy.identity.name} {policy.identity.version} ({policy.identity.digest[:12]})")

    result = policy.evaluate(ROOT / "examples" / "stage1.yaml")  # a path, a dict or a Cohort model
    for decision in result.decisions.values():
        print(f"{decision.id:16} {decision.outcome:13} {', '.join(decision.references)[:60]}")

    naver = result.decisions["naver-cloud"]
    for cause in naver.causes:  # the rules at the bottom of each chain of reasons
        print(f"why: [{cause.rule}] {cause.message}")

    explanation = naver.explain()  # built only now, from the decision's trace
    print(
        f"explanation graph: {explanation.graph.number_of_nodes()} nodes, {explanation.graph.number_of_edges()} edges"
    )

    # Facts arrive from other systems as dicts; bad facts raise FactError naming each field.
    cohort = policy.load_cohort(ROOT / "examples" / "stage1.yaml").model_dump()
    cohort["consortia"][4]["scores"]["expert"] = 40.0  # above the 35-point maximum
    try:
        policy.evaluate(cohort)
    except FactError as error:
        print("rejected:", error.diagnostics[0].message)


if __name__ == "__main__":
    main()
