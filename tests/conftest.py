"""Shared fixtures and the Hypothesis profiles (`ci` is deterministic and the default)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from engine import Policy, load_policy
from engine.language.factmodels import ENV_VAR

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules" / "sovereign_ai"
EXAMPLES = ROOT / "examples"
GRANTS = ROOT / "tests" / "fixtures" / "grants"
GPU_HOURS = ROOT / "rules" / "gpu_call"  # the second real package: its facts declared in a schema file, no Python
BENEFIT = ROOT / "tests" / "fixtures" / "benefit"

# The grants and benefit fixtures' fact models live beside their test packages, not in an installed
# distribution: the tests trust those files by name, as an operator would with
# `POLICY_FACT_MODULES` (tests of the trust model itself remove it). Sovereign AI's models are
# trusted through the `engine.fact_models` entry point in pyproject.toml.
os.environ[ENV_VAR] = os.pathsep.join([str(GRANTS / "grants_facts.py"), str(BENEFIT / "benefit_facts.py")])

settings.register_profile(
    "ci", derandomize=True, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(RULES)


@pytest.fixture(scope="session")
def stage1(policy: Policy):  # type: ignore[no-untyped-def]
    return policy.evaluate(EXAMPLES / "stage1.yaml")


@pytest.fixture(scope="session")
def wildcard(policy: Policy):  # type: ignore[no-untyped-def]
    return policy.evaluate(EXAMPLES / "wildcard.yaml")


def chromium() -> str | None:
    """Debian's headless Chromium, if installed (tests that need it skip with the reason otherwise)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_command(profile: Path) -> list[str]:
    """Chromium headless with a fresh profile and none of the background networking this closed
    machine refuses (each refusal is a wait), ready for `--dump-dom URL` or `--screenshot=FILE URL`."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
    flags += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    return [chromium() or "chromium", *flags, f"--user-data-dir={profile}"]
