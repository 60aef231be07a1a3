"""Outcome rows state grants: what selection brings, with a quantity read as of the evaluation's date.

Checked (a quantity is a number; names resolve; located diagnostics), carried on each `Decision`
(JSON, CLI table, explanation text and graph, HTML report), and the same on both backends.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine import PolicyError, load_policy
from engine.cli import main
from engine.explanation.report import render_report
from tests.conftest import GRANTS

AMOUNT = """  grant_amount:
    title: Amount of one grant
    reference: Grant rules art. 6
    unit: EUR
    values:
      2026-01-01: 5000
      2026-07-01: 6000
"""
GRANTED = """      - outcome: granted
        when: true
        grants:
          - id: cash
            title: Cash grant
            quantity: {quantity}
            unit: EUR
            reference: Grant rules art. 6
          - id: mentoring
            title: A mentor for a year
"""
BACKENDS = ["generated", "python", pytest.param("durable", marks=pytest.mark.durable)]


def granting(folder: Path, quantity: str = "grant_amount") -> Path:
    """A copy of the grants package whose `granted` row brings a cash grant and a mentor."""
    shutil.copytree(GRANTS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = folder / "policy.yaml"
    text = manifest.read_text(encoding="utf-8").replace("values:\n  verified", "values:\n  verified", 1)
    text = text.replace("    value: 2\nvalues:", "    value: 2\n" + AMOUNT + "values:")
    text = text.replace("      - outcome: granted\n        when: true\n", GRANTED.format(quantity=quantity))
    manifest.write_text(text, encoding="utf-8")
    return folder


def batch(date: str = "2026-03-01", income: float | None = 20000.0) -> dict[str, Any]:
    applicants = [{"id": "a", "income": income, "age": 30}, {"id": "b", "income": 50000.0, "age": 40}]
    return {"context": {"stage": "award", "date": date}, "applicants": applicants}


@pytest.fixture()
def package(tmp_path: Path) -> Path:
    return granting(tmp_path / "grants")


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_deciding_row_brings_its_grants_with_the_quantity_in_force(package: Path, backend: str) -> None:
    if backend == "durable":
        pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    policy = load_policy(package, backend=backend)
    march, july = (policy.evaluate(batch(d)).decisions for d in ("2026-03-01", "2026-07-15"))
    assert [(g.id, g.quantity, g.unit) for g in march["a"].grants] == [("cash", 5000, "EUR"), ("mentoring", None, None)]
    assert july["a"].grants[0].quantity == 6000
    assert march["b"].outcome == "refused" and march["b"].grants == ()
    data = march["a"].to_json()
    assert data["grants"][0] == {
        "id": "cash",
        "title": "Cash grant",
        "quantity": 5000,
        "unit": "EUR",
        "reference": "Grant rules art. 6",
    }
    assert march["b"].to_json()["grants"] == []


def test_both_backends_give_the_same_grants(package: Path) -> None:
    pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    python, durable = load_policy(package), load_policy(package, backend="durable")
    for date in ("2026-03-01", "2026-07-15"):
        a, b = python.evaluate(batch(date)), durable.evaluate(batch(date))
        assert {i: d.grants for i, d in a.decisions.items()} == {i: d.grants for i, d in b.decisions.items()}
    durable.close()


def test_a_quantity_that_cannot_be_computed_says_what_is_missing(tmp_path: Path) -> None:
    policy = load_policy(granting(tmp_path / "g", quantity="grant_amount * age / 30"))
    applicants = [{"id": "a", "income": 1000.0, "age": 30}]
    decision = policy.decide(applicants[0], as_of="2026-03-01", stage="award")
    cohort = {"context": {"stage": "award", "date": "2026-03-01"}, "applicants": applicants}
    assert policy.evaluate(cohort).decisions["a"].grants[0].quantity == 5000
    assert decision.grants == policy.evaluate(cohort).decisions["a"].grants  # ranked alone, as in a cohort of one


def test_the_table_explanation_and_report_show_the_grants(
    package: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    facts = tmp_path / "batch.json"
    facts.write_text(json.dumps(batch()), "utf-8")
    assert main(["evaluate", str(package), str(facts)]) == 0
    assert "grants: Cash grant 5,000 EUR; A mentor for a year" in capsys.readouterr().out
    decision = load_policy(package).evaluate(batch()).decisions["a"]
    explanation = decision.explain()
    text = explanation.to_text()
    assert "+ Cash grant: 5,000 EUR (grant `cash`)  [Grant rules art. 6]" in text
    assert "parameter `grant_amount` = 5000, in force since 2026-01-01" in text
    graph = explanation.graph
    grant = "grant:award.3.cash"
    assert graph.nodes[grant]["kind"] == "grant" and graph.has_edge(grant, "decision:a")
    assert graph.has_edge("parameter:grant_amount", grant)
    assert all(graph.in_degree(n) > 0 or graph.nodes[n]["kind"] in ("fact", "parameter") for n in graph)
    policy = load_policy(package)
    page = render_report(policy, policy.evaluate(batch()))
    assert "Cash grant 5,000 EUR" in page and "<th>grants</th>" in page


def test_a_grant_is_a_node_of_the_static_graph_under_its_row(package: Path) -> None:
    graph = load_policy(package).ir.graph
    assert graph.has_edge("outcome:award.3", "grant:award.3.cash")
    assert graph.has_edge("parameter:grant_amount", "grant:award.3.cash")


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("\"'many'\"", "error[type-mismatch]: the quantity of grant `cash` must be number, but this is text"),
        ("grant_amont", "error[unknown-name]: unknown name `grant_amont`"),
        ("adult", "error[type-mismatch]: the quantity of grant `cash` must be number, but this is boolean"),
    ],
)
def test_a_bad_quantity_is_a_located_diagnostic(tmp_path: Path, quantity: str, expected: str) -> None:
    folder = granting(tmp_path / "g", quantity=quantity)
    with pytest.raises(PolicyError) as caught:
        load_policy(folder)
    found = [f"{d.severity}[{d.code}]: {d.message}" for d in caught.value.diagnostics]
    assert any(f.startswith(expected) for f in found), found
    located = [d for d in caught.value.diagnostics if d.severity == "error"][0]
    assert located.span.file.endswith("policy.yaml") and located.span.line > 60


def test_a_grant_listed_twice_in_a_row_is_refused(tmp_path: Path) -> None:
    folder = granting(tmp_path / "g")
    manifest = folder / "policy.yaml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.replace("- id: mentoring", "- id: cash"), "utf-8")
    with pytest.raises(PolicyError, match="grant `cash` is listed twice"):
        load_policy(folder)
