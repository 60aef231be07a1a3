"""The public Python surface: an explicit `__all__`, importable, typed, and lint-clean."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import engine
from tests.conftest import ROOT

PUBLIC_MODULES = [
    "engine",
    "engine.core.errors",
    "engine.core.diagnostics",
    "engine.evaluation.result",
    "engine.embedding.policy",
    "engine.explanation.explain",
    "engine.explanation.whynot",
    "engine.explanation.cohort_explain",
    "engine.explanation.report",
    "engine.explanation.graph",
    "engine.embedding.batch",
    "engine.embedding.store",
    "engine.service.server",
    "engine.language.invariants",
    "engine.verification.testing",
    "engine.verification.mutate",
    "policy",
    "policy.facts",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_module_lists_its_surface_and_every_name_exists(name: str) -> None:
    module = importlib.import_module(name)
    assert isinstance(module.__all__, list) and module.__all__
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == []


def test_engine_exports_the_documented_entry_points() -> None:
    assert {
        "load_policy",
        "Policy",
        "Result",
        "Decision",
        "Reason",
        "Explanation",
        "PolicyError",
        "FactError",
        "EvaluationError",
        "OutsidePeriod",
        "Grant",
        "Allocation",
        "TrackSummary",
    } <= set(engine.__all__)


def test_every_error_derives_from_engine_error() -> None:
    for name in ("PolicyError", "FactError", "EvaluationError", "OutsidePeriod", "BackendError", "BackendUnavailable"):
        assert issubclass(getattr(engine, name), engine.EngineError)


def _tool(name: str) -> list[str]:
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return [sys.executable, "-m", name]


def test_ruff_finds_nothing() -> None:
    result = subprocess.run(
        _tool("ruff") + ["check", "engine", "policy", "tests", "examples", "dev.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_leaves_every_line_as_it_is() -> None:
    """Lines of at most 120 characters, formatted one way (`ruff format`, line-length in pyproject.toml)."""
    result = subprocess.run(_tool("ruff") + ["format", "--check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing_in_the_engine_and_the_facts() -> None:
    result = subprocess.run(_tool("mypy") + ["engine", "policy"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
