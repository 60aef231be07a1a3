"""Many cohorts at once: sequentially, on threads, and on worker processes.

    .venv/bin/python examples/embed_batch.py

A thread pool shares the loaded `Policy`; a process pool (or any other executor, such as a Dask
`distributed` client's `client.get_executor()`) is sent the package path, its digest and the
cohort data, and each worker loads the package once. Results come back in input order.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from engine import FactError, evaluate_many, load_policy

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    policy = load_policy(ROOT / "rules" / "sovereign_ai")
    base = policy.load_cohort(ROOT / "examples" / "stage1.yaml").model_dump(mode="json")
    cohorts = [base, ROOT / "examples" / "wildcard.yaml"]
    for expert in (26.4, 28.0, 31.0):  # what if Naver Cloud had not applied, and NC AI's expert score were ...
        others = [c for c in base["consortia"] if c["id"] not in ("naver-cloud", "nc-ai")]
        nc_ai = next(c for c in base["consortia"] if c["id"] == "nc-ai")
        cohorts.append({**base, "consortia": [*others, {**nc_ai, "scores": {**nc_ai["scores"], "expert": expert}}]})

    sequential = evaluate_many(policy, cohorts)
    with ThreadPoolExecutor(4) as pool:
        threaded = evaluate_many(policy, cohorts, executor=pool)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        processed = evaluate_many(policy, cohorts, executor=pool)
    assert [r.to_json() for r in threaded] == [r.to_json() for r in sequential] == [r.to_json() for r in processed]
    for result in processed:
        print(f"{result.stage:16}", ", ".join(f"{k}: {v}" for k, v in result.outcomes().items()))
    print("explained in this process:", processed[0].decisions["nc-ai"].explain().to_text().splitlines()[0])

    broken = {**base, "consortia": base["consortia"][:1] + [{"id": "Not An Id"}]}
    answers = evaluate_many(policy, [broken, base], return_exceptions=True)
    print(
        "first cohort rejected:",
        isinstance(answers[0], FactError),
        "- second decided:",
        answers[1].outcomes()["lg-ai-research"],
    )  # type: ignore[union-attr]


if __name__ == "__main__":  # needed: spawned worker processes import this module
    main()
