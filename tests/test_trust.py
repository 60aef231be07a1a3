"""A rule package is data: loading one never runs code it brought or named, nor changes sys.path.

Fact models come only from modules the operator trusts: entry points of installed distributions
(`engine.fact_models`), `POLICY_FACT_MODULES`, `--facts-module`, `load_policy(fact_modules=...)`.
And a reload reads a consistent snapshot of the package, even while a file is rewritten in place.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine import PolicyError, PolicyStore, load_policy
from engine.cli import main
from engine.language.factmodels import ENV_VAR, trusted_fact_modules
from engine.service.server import create_app
from tests.conftest import EXAMPLES, GRANTS, RULES

EVIL = "import pathlib\npathlib.Path({marker!r}).write_text('ran')\nprint('package code ran')\n"


@pytest.fixture
def untrusting(monkeypatch: pytest.MonkeyPatch) -> None:
    """No module is trusted by name: only the entry points of installed distributions."""
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "ran.txt"


def _package_bringing_code(tmp_path: Path, marker: Path, module: str = "evil") -> Path:
    package = tmp_path / "pkg"
    shutil.copytree(RULES, package)
    (package / f"{module}.py").write_text(EVIL.format(marker=str(marker)), encoding="utf-8")
    (package.parent / f"{module}_parent.py").write_text(EVIL.format(marker=str(marker)), encoding="utf-8")
    manifest = package / "policy.yaml"
    text = manifest.read_text(encoding="utf-8").replace("subject: policy.facts:Consortium", f"subject: {module}:Cohort")
    # The cohort model names a module beside the package folder (once found on sys.path too).
    text = text.replace("cohort: policy.facts:Cohort", f"cohort: {module}_parent:Cohort")
    manifest.write_text(text, encoding="utf-8")
    return package


def test_a_python_file_beside_policy_yaml_is_never_run(tmp_path: Path, marker: Path, untrusting: None) -> None:
    package = _package_bringing_code(tmp_path, marker)
    path_before = list(sys.path)
    with pytest.raises(PolicyError) as raised:
        load_policy(package)
    assert not marker.exists() and "evil" not in sys.modules
    assert sys.path == path_before
    assert "evil_parent" not in sys.modules
    subject, cohort = [d for d in raised.value.diagnostics if d.code == "untrusted-fact-model"]
    assert str(subject.span).endswith("policy.yaml:11:12") and str(cohort.span).endswith("policy.yaml:12:11")
    assert "module `evil` is not trusted" in subject.message and "engine.fact_models" in (subject.help or "")
    assert "module `evil_parent` is not trusted" in cohort.message


def test_yaml_alone_cannot_import_an_installed_module(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], untrusting: None
) -> None:
    package = tmp_path / "pkg"
    shutil.copytree(RULES, package)
    manifest = package / "policy.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("policy.facts:Cohort", "this:Cohort"))
    had_this = "this" in sys.modules
    assert main(["check", str(package)]) == 1
    out, err = capsys.readouterr()
    assert "Beautiful is better than ugly" not in out + err and ("this" in sys.modules) == had_this
    assert "error[untrusted-fact-model]: fact model `this:Cohort`: module `this` is not trusted" in out + err


def test_the_shipped_package_is_trusted_through_its_entry_point(untrusting: None) -> None:
    trusted = trusted_fact_modules(environ={})
    assert trusted.origins["policy.facts"].startswith("entry point `sovereign_ai`")
    assert load_policy(RULES).evaluate(EXAMPLES / "stage1.yaml").outcomes()["naver-cloud"] == "disqualified"


def test_a_module_named_by_the_operator_is_trusted_on_the_cli_and_the_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], untrusting: None
) -> None:
    facts = tmp_path / "facts.yaml"
    facts.write_text(
        "context: {stage: award, date: 2026-03-01}\napplicants: [{id: ann, income: 1000.0, age: 30, documents: []}]\n"
    )
    assert main(["evaluate", str(GRANTS), str(facts)]) == 1
    assert "module `grants_facts` is not trusted" in capsys.readouterr().err
    module = str(GRANTS / "grants_facts.py")
    assert main(["evaluate", str(GRANTS), str(facts), "--facts-module", module]) == 0
    assert "ann" in capsys.readouterr().out
    assert load_policy(GRANTS, fact_modules=[module]).ir.name == "small-grants"


def test_a_module_name_that_is_neither_a_name_nor_a_file_is_refused(untrusting: None) -> None:
    with pytest.raises(ImportError, match="neither a module name nor the path of a .py file"):
        trusted_fact_modules(["not a module!"])


@pytest.fixture
def grants_store(tmp_path: Path, untrusting: None) -> Iterator[tuple[PolicyStore, Path]]:
    package = tmp_path / "grants"
    shutil.copytree(GRANTS, package)
    with PolicyStore(package, fact_modules=[GRANTS / "grants_facts.py"]) as store:
        yield store, package


def test_a_reload_never_imports_a_module_that_was_not_trusted_at_first_load(
    grants_store: tuple[PolicyStore, Path], marker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, package = grants_store
    (package / "evil.py").write_text(EVIL.format(marker=str(marker)), encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, str(package / "evil.py"))  # trusted now, but not when the store was made
    manifest = package / "policy.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("grants_facts:Batch", "evil:Batch"))
    report = store.reload_report()
    assert report.status == "rejected" and not marker.exists()
    assert [d.code for d in report.diagnostics] == ["untrusted-fact-model"]
    assert store.current.ir.name == "small-grants" and store.generation == 1


def test_http_reload_of_a_package_naming_its_own_code_is_rejected_and_runs_nothing(
    grants_store: tuple[PolicyStore, Path], marker: Path
) -> None:
    store, package = grants_store
    (package / "evil.py").write_text(EVIL.format(marker=str(marker)), encoding="utf-8")
    manifest = package / "policy.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("grants_facts:Batch", "evil:Batch"))
    transport = httpx.ASGITransport(app=create_app(store))

    async def reload() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/v1/reload")

    response = asyncio.run(reload())
    assert response.status_code == 422 and response.json()["status"] == "rejected"
    assert not marker.exists() and "evil" not in sys.modules


THRESHOLD = """parameters:
  minimum_total_score:
    title: Minimum total score to stay in the programme
    reference: test
    values:
      2026-01-15: {value}
"""


def _package_with_threshold_last(tmp_path: Path) -> Path:
    """The Sovereign AI package with its minimum score alone at the end of `threshold.yaml`."""
    package = tmp_path / "pkg"
    shutil.copytree(RULES, package)
    parameters = package / "parameters.yaml"
    text = parameters.read_text(encoding="utf-8")
    start, end = text.index("  minimum_total_score:"), text.index("  weight_benchmark:")
    parameters.write_text(text[:start] + text[end:], encoding="utf-8")
    manifest = package / "policy.yaml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace(
            "  - parameters.yaml\n", "  - parameters.yaml\n  - threshold.yaml\n"
        )
    )
    (package / "threshold.yaml").write_text(THRESHOLD.format(value="70.0"), encoding="utf-8")
    return package


def test_a_reload_under_in_place_rewrites_only_ever_swaps_in_a_whole_version(tmp_path: Path) -> None:
    """A file rewritten in place (truncated, then written in two parts) is never read half-written.

    Cut after the first digit of the score, the half-written file is still a valid package (a
    minimum of 7 or 6 points): read once, it would be swapped in and decide wrongly.
    """
    package = _package_with_threshold_last(tmp_path)
    target = package / "threshold.yaml"
    texts = [THRESHOLD.format(value="70.0"), THRESHOLD.format(value="65.0")]
    stop = threading.Event()

    def rewrite_in_place() -> None:
        turn = 0
        while not stop.is_set():
            text = texts[turn % 2]
            cut = text.index("2026-01-15: ") + len("2026-01-15: ") + 1
            with target.open("w", encoding="utf-8") as handle:  # truncates, as an editor saving in place
                handle.write(text[:cut])
                handle.flush()
                time.sleep(0.02)
                handle.write(text[cut:])
            time.sleep(0.3)
            turn += 1

    store = PolicyStore(package)
    writer = threading.Thread(target=rewrite_in_place, daemon=True)
    seen: set[float] = set()
    try:
        writer.start()
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            if store.reload_report().ok:
                seen.add(store.current.compiled.parameters_on(dt.date(2026, 1, 15))["minimum_total_score"])
    finally:
        stop.set()
        writer.join()
        store.close()
    assert seen and seen <= {70.0, 65.0}, f"a half-written version was swapped in: {sorted(seen)}"
