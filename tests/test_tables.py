"""Table and scale parameters: `minimum_by_lead_kind(lead.kind)`, `benefit_scale(income)`; checked, dated, explained."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import load_policy
from tests.conftest import EXAMPLES, RULES

BACKENDS = ["python", "durable"]

MINIMUM_BY_KIND = """
  minimum_by_lead_kind:
    title: Minimum total score by the kind of lead organisation
    reference: "Illustrative: a stricter minimum for companies"
    unit: points
    tables:
      2026-01-15:
        values: {company: 80.0, research_institute: 70.0, university: 65.0}
        otherwise: 70.0
"""


def _package(tmp_path: Path, table: str = MINIMUM_BY_KIND, minimum: str = "minimum_by_lead_kind(lead.kind)") -> Path:
    copy = tmp_path / "rules"
    shutil.copytree(RULES, copy)
    parameters = copy / "parameters.yaml"
    parameters.write_text(parameters.read_text(encoding="utf-8") + table, encoding="utf-8")
    stage1 = copy / "stage1.yaml"
    text = stage1.read_text(encoding="utf-8").replace(
        "when: total_score >= minimum_total_score", f"when: total_score >= {minimum}"
    )
    text = text.replace("minimum of {minimum_total_score}", "minimum of {" + minimum + "}")
    stage1.write_text(text, encoding="utf-8")
    return copy


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_minimum_by_lead_kind_eliminates_upstage_and_keeps_sk_telecom_and_lg(tmp_path: Path, backend: str) -> None:
    policy = load_policy(_package(tmp_path), backend=backend)  # type: ignore[arg-type]
    result = policy.evaluate(EXAMPLES / "stage1.yaml")
    outcomes = result.outcomes()
    assert outcomes["upstage"] == "eliminated"  # 79.8, a company: below 80.0
    assert outcomes["sk-telecom"] == "advanced"  # 81.2, a company
    assert outcomes["lg-ai-research"] == "advanced"  # 90.2, a research institute (70.0)
    upstage = result.decisions["upstage"]
    decisive = {r.rule: r.message for r in upstage.reasons if r.role == "decisive"}
    assert decisive["meets_minimum_total"] == "total score 79.8 is below the minimum of 80.0"
    text = upstage.explain().to_text()
    assert "minimum_by_lead_kind(company) = 80.0, in force since 2026-01-15" in text
