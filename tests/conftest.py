"""Shared fixtures and the Hypothesis profiles (`ci` is deterministic and the default)."""

from __future__ import annotations

import os
import re
import shutil
import sys
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


# --- a skipped durable test is a failure where durable-rules installs ---------------------------
# pyproject.toml installs `durable-rules` on Python < 3.13 only; there, every "both backends" claim
# must be tested, so a test marked `durable` (or skipped for want of durable_rules) that skips is
# reported as a failure. On Python 3.13+, where the README says the durable backend is unavailable,
# such tests skip.
DURABLE_INSTALLS = sys.version_info < (3, 13)
_MISSING_DURABLE = re.compile(r"durable.*(not installed|not available|could not import|no module named)", re.I | re.S)


def durable_skip_refused(marked: bool, reason: str) -> str | None:
    """Why a skip is not allowed here (None: it is)."""
    if DURABLE_INSTALLS and (marked or _MISSING_DURABLE.search(reason)):
        return (
            f"skipped on Python {sys.version.split()[0]}, where durable-rules installs and the durable "
            f"backend must be tested: {reason}"
        )
    return None


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        refused = durable_skip_refused(item.get_closest_marker("durable") is not None, _skip_reason(report))
        if refused:
            report.outcome = "failed"
            report.longrepr = refused


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.skipped:
        refused = durable_skip_refused(False, _skip_reason(report))
        if refused:
            report.outcome = "failed"
            report.longrepr = refused
