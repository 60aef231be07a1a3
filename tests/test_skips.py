"""CI fails when a durable test skips where durable-rules installs (tests/conftest.py's hooks)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DURABLE_INSTALLS, ROOT

SKIPPING = """
import pytest

@pytest.mark.durable
def test_marked():
    pytest.skip("durable_rules is not installed here")

def test_unmarked_but_for_durable():
    pytest.importorskip("durable_rules_that_does_not_exist", reason="durable_rules is not installed here")

def test_other_skips_are_allowed():
    pytest.skip("headless Chromium is not installed")
"""


def _run(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_skipping.py").write_text(SKIPPING, encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", "-rA"]
    command += ["--rootdir", str(tmp_path), str(tmp_path / "test_skipping.py")]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not DURABLE_INSTALLS, reason="Python 3.13+: durable-rules does not install, durable tests skip")
def test_a_durable_test_that_skips_fails_where_durable_rules_installs(tmp_path: Path) -> None:
    done = _run(tmp_path)
    assert done.returncode == 1, done.stdout
    assert "2 failed, 1 skipped" in done.stdout, done.stdout
    assert "where durable-rules installs and the durable backend must be tested" in done.stdout


@pytest.mark.skipif(DURABLE_INSTALLS, reason="durable-rules installs on this Python")
def test_durable_tests_skip_where_durable_rules_does_not_install(tmp_path: Path) -> None:
    done = _run(tmp_path)
    assert done.returncode == 0 and "3 skipped" in done.stdout, done.stdout


def test_durable_rules_imports_where_pyproject_installs_it() -> None:
    """The marker in pyproject.toml and DURABLE_INSTALLS agree with what imports here."""
    assert "durable-rules==2.0.28; python_version < '3.13'" in (ROOT / "pyproject.toml").read_text()
    if DURABLE_INSTALLS:
        import durable  # noqa: F401  (fails, not skips, where it should install)


def test_dask_distributed_imports_where_dev_py_installs_it() -> None:
    """`dev.py test` installs the `scale` extra (dask.distributed), so the LocalCluster test of
    tests/test_scale.py runs rather than skips; it skips only where the extra was not installed."""
    assert 'scale = ["dask[distributed]' in (ROOT / "pyproject.toml").read_text()
    assert "[test,scale,bench]" in (ROOT / "dev.py").read_text()
    import distributed  # noqa: F401  (fails, not skips, in the environment dev.py and CI build)
