"""Golden decision cases (tests/golden/decide/*.yaml), each run on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import Policy, load_policy
from engine.verification.casefile import load_cases, run_case
from tests.conftest import RULES

GOLDEN = Path(__file__).parent / "golden" / "decide"
CASES = [
    (path, i, case.name) for path in sorted(GOLDEN.glob("*.yaml")) for i, case in enumerate(load_cases(path)[0].cases)
]


@pytest.fixture(scope="module", params=["generated", "python", pytest.param("durable", marks=pytest.mark.durable)])
def backend_policy(request: pytest.FixtureRequest) -> Policy:
    if request.param == "durable":
        pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    return load_policy(RULES, backend=request.param)


@pytest.mark.parametrize(("path", "index", "name"), CASES, ids=[f"{p.stem}:{n}" for p, _, n in CASES])
def test_golden_case(backend_policy: Policy, path: Path, index: int, name: str) -> None:
    cases, source = load_cases(path)
    result = run_case(backend_policy, cases.cases[index], path, source.span(("cases", index)))
    assert result.passed, "\n".join(result.failures)
