"""Golden check cases: one broken rule package per file, with the exact diagnostics it must produce.

Each case under `tests/golden/check/` edits a fresh copy of `rules/sovereign_ai` and lists the first
line of every diagnostic `load_policy` reports (paths relative to the package, sorted by position),
warnings included (a package with warnings only loads, and its warnings are compared). A case that
documents an engine bug carries `xfail: "reason"` and still states the correct diagnostics.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine import Diagnostic, PolicyError, load_policy

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules" / "sovereign_ai"
CASES = Path(__file__).resolve().parent / "golden" / "check"
CASE_KEYS = {"description", "replace", "write", "expect", "expect_help", "xfail"}


@dataclass(frozen=True)
class Case:
    name: str
    data: dict[str, Any]


def _load_case(path: Path) -> Case:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: a case is a mapping"
    unknown = set(data) - CASE_KEYS
    assert not unknown, f"{path.name}: unknown case keys {sorted(unknown)}"
    assert data.get("description"), f"{path.name}: a case needs a description"
    assert data.get("replace") or data.get("write"), f"{path.name}: a case needs `replace` or `write`"
    assert data.get("expect"), f"{path.name}: a case needs `expect`"
    return Case(path.stem, data)


def _params() -> list[Any]:
    params = []
    for path in sorted(CASES.glob("*.yaml")):
        case = _load_case(path)
        marks = [pytest.mark.xfail(strict=True, reason=case.data["xfail"])] if case.data.get("xfail") else []
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


def _apply_edits(package: Path, case: Case) -> None:
    for edit in case.data.get("replace") or []:
        target = package / edit["file"]
        text = target.read_text(encoding="utf-8")
        found = text.count(edit["old"])
        if found != 1:
            pytest.fail(
                f"{case.name}: `old` of the edit to {edit['file']} matches {found} times, not once: {edit['old']!r}"
            )
        target.write_text(text.replace(edit["old"], edit["new"]), encoding="utf-8")
    for name, text in (case.data.get("write") or {}).items():
        (package / name).write_text(text, encoding="utf-8")


def _relative(diagnostic: Diagnostic, package: Path) -> str:
    first = diagnostic.render().splitlines()[0]
    return first.replace(f"{package}/", "").replace(str(package), ".")


def _sorted(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=lambda d: (d.sort_key(), d.message))


def _diagnostics_of(case: Case, tmp_path: Path) -> tuple[list[str], list[str]]:
    package = tmp_path / "pkg"
    shutil.copytree(RULES, package)
    _apply_edits(package, case)
    try:
        found = _sorted(load_policy(package).warnings)  # a package with warnings only still loads
    except PolicyError as caught:
        found = _sorted(caught.diagnostics)
    return [_relative(d, package) for d in found], [d.help or "" for d in found]


@pytest.mark.parametrize("case", _params())
def test_bad_package_reports_exactly_the_expected_diagnostics(case: Case, tmp_path: Path) -> None:
    lines, helps = _diagnostics_of(case, tmp_path)
    assert lines == case.data["expect"], case.data["description"]
    for wanted in case.data.get("expect_help") or []:
        assert any(wanted in help for help in helps), f"no diagnostic help contains {wanted!r}: {helps}"


def test_golden_cases_exist_one_per_failure_mode() -> None:
    names = [p.stem for p in CASES.glob("*.yaml")]
    assert len(names) >= 20 and len(set(names)) == len(names)


def test_good_package_loads_with_zero_warnings() -> None:
    policy = load_policy(RULES)
    assert policy.warnings == []
    assert policy.check() == []
    assert {"sovereign", "weights_trained_by_team", "meets_minimum_total"} <= set(policy.ir.rules)
    assert set(policy.ir.stages) == {"stage1", "additional_call", "stage2", "final"}
