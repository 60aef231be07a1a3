"""Static analyses (shadowed rows, dated values, stage periods) and the search-based ones."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from engine import Policy, PolicyError, Span, load_policy
from engine.language.analysis import Observed, decidable_from, search_findings, shadowing, stage_parameters
from engine.language.expr import parse_expression
from engine.language.ir import OutcomeRow, Stage
from engine.verification.verify import search_invariants
from tests.conftest import ROOT

GRANTS = ROOT / "tests" / "fixtures" / "grants"
SPAN = Span("stage.yaml", 1, 1)


def _stage(*conditions: str | bool) -> Stage:
    rows = tuple(OutcomeRow(i + 1, f"o{i + 1}", parse_expression(c, SPAN)) for i, c in enumerate(conditions))
    return Stage("s", "S", "ref", parse_expression(True, SPAN), (), None, None, None, rows)


@pytest.mark.parametrize(
    ("conditions", "shadowed"),
    [
        (("a", "a"), [(2, 1)]),
        ((True, "a"), [(2, 1)]),
        (("a or b", "b and c"), [(2, 1)]),
        (("a", "b", "a or b"), [(3, 2)]),
        (("a and b", "a"), []),
        (("not a", "a"), []),
        (("a", "b", True), []),
        (("x > 1", "x > 2"), []),  # implied by arithmetic, not by shape: left to the search
    ],
)
def test_a_row_is_shadowed_when_earlier_rows_hold_whenever_it_does(
    conditions: tuple[str | bool, ...], shadowed: list[tuple[int, int]]
) -> None:
    """Shadowing is found from the shape of conditions: equal, implied by a conjunct, or an earlier `true`."""
    assert [(row.index, blame.index) for row, blame in shadowing(_stage(*conditions))] == shadowed


def test_the_shipped_package_has_no_static_findings(policy: Policy) -> None:
    assert policy.warnings == []


def test_stage_parameters_include_those_of_every_rule_and_value(policy: Policy) -> None:
    assert {"teams_kept", "minimum_total_score", "pretrained_weights_allowed_for", "parity_target_share"} <= set(
        stage_parameters(policy.ir, "stage1")
    )
    assert decidable_from(policy.ir, "stage1") == dt.date(2026, 1, 15)


def _grants(tmp_path: Path, old: str, new: str) -> Path:
    package = tmp_path / "grants"
    shutil.copytree(GRANTS, package)
    manifest = package / "policy.yaml"
    text = manifest.read_text(encoding="utf-8")
    assert text.count(old) == 1
    manifest.write_text(text.replace(old, new), encoding="utf-8")
    return package


def test_a_stage_period_inside_every_parameter_validity_is_accepted(tmp_path: Path) -> None:
    package = _grants(tmp_path, "    pool: eligible\n", "    dates: {from: 2026-01-01}\n    pool: eligible\n")
    assert load_policy(package).ir.stages["award"].dates == (dt.date(2026, 1, 1), None)


def test_a_stage_period_starting_before_a_parameter_is_an_error(tmp_path: Path) -> None:
    package = _grants(
        tmp_path, "    pool: eligible\n", "    dates: {from: 2025-12-31, until: 2026-12-31}\n    pool: eligible\n"
    )
    with pytest.raises(PolicyError) as caught:
        load_policy(package)
    [found] = [d for d in caught.value.diagnostics if d.severity == "error"]
    assert (
        found.code == "parameter-not-in-force"
        and "`income_cap`" in found.message
        and found.span
        and found.span.line > 0
    )


def test_a_period_that_ends_before_it_starts_is_refused(tmp_path: Path) -> None:
    package = _grants(
        tmp_path, "    pool: eligible\n", "    dates: {from: 2026-12-31, until: 2026-01-01}\n    pool: eligible\n"
    )
    with pytest.raises(PolicyError, match="`until` comes before `from`"):
        load_policy(package)


def test_the_search_reports_a_rule_that_never_holds_with_a_witness(tmp_path: Path) -> None:
    package = _grants(
        tmp_path, '    when: any(d.kind == "tax_return" for d in documents)\n', "    when: len(documents) < 0\n"
    )
    policy = load_policy(package)
    report = search_invariants(policy, examples=100)
    found = {d.code: d for d in search_findings(policy.ir, report.observed, set())}
    assert found["rule-never-holds"].message.startswith("rule `has_tax_return` never held in")
    assert (found["rule-never-holds"].help or "").startswith("witness: it failed with `documents` =")


def test_the_search_reports_a_rule_that_always_holds_and_a_row_that_never_decides(tmp_path: Path) -> None:
    package = _grants(tmp_path, "    when: stage.rank <= stage.slots\n", "    when: stage.rank >= 1\n")
    policy = load_policy(package)
    report = search_invariants(policy, examples=100)
    found = search_findings(policy.ir, report.observed, set())
    codes = {(d.code, d.span.line if d.span else 0) for d in found}
    assert ("rule-always-holds", policy.ir.rules["within_grants"].span.line) in codes
    waiting = policy.ir.stages["award"].outcomes[1]
    assert ("row-never-decides", waiting.span.line) in codes


def test_nothing_is_reported_when_the_search_saw_nothing(policy: Policy) -> None:
    assert search_findings(policy.ir, Observed(), set()) == []
