"""Table and scale parameters: `minimum_by_lead_kind(lead.kind)`, `benefit_scale(income)`; checked, dated, explained."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from engine import PolicyError, load_policy
from engine.cli.main import main
from engine.explanation.diff import diff
from engine.explanation.document import render_document
from engine.language.ir import Scale
from engine.verification.casefile import run_file
from engine.verification.mutate import mutants, run_mutants
from engine.verification.search import hints_of
from engine.verification.testing import prepare
from engine.verification.verify import search_invariants
from tests.conftest import BENEFIT, EXAMPLES, RULES
from tests.strategies import benefit_claims

GOLDEN_CLAIMS = Path(__file__).parent / "golden" / "benefit" / "claims_2026.txt"

BACKENDS = ["generated", "python", "durable"]

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


# --- the third programme: an income-tested benefit written with tables and a marginal scale ---

CLAIMS = BENEFIT / "tests" / "facts" / "claims_2026.yaml"
BENEFIT_BACKENDS = ["generated", "python", pytest.param("durable", marks=pytest.mark.durable)]


def _benefit(backend: str = "python") -> Any:
    if backend == "durable":
        pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    return load_policy(BENEFIT, backend=backend)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def benefit() -> Any:
    return _benefit()


@pytest.mark.parametrize("backend", BENEFIT_BACKENDS)
def test_the_benefit_programmes_policy_tests_pass_on_both_backends(backend: str) -> None:
    policy = _benefit(backend)
    results = [r for path in sorted((BENEFIT / "tests").glob("*.yaml")) for r in run_file(policy, path)]
    assert len(results) == 7
    assert all(r.passed for r in results), [(r.name, r.failures) for r in results if not r.passed]


@pytest.mark.parametrize("backend", BENEFIT_BACKENDS)
def test_the_june_claims_match_their_golden_table(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Golden decision case: the table of `policy evaluate` for the June 2026 claims, on each backend."""
    if backend == "durable":
        pytest.importorskip("durable", reason="durable_rules is not installed here (Python 3.13+?)")
    assert main(["evaluate", str(BENEFIT), str(CLAIMS), "--backend", backend]) == 0
    table = capsys.readouterr().out.replace(f"backend {backend}", "backend python")
    assert table == GOLDEN_CLAIMS.read_text(encoding="utf-8")


def test_the_benefit_invariants_hold_under_search(benefit: Any) -> None:
    report = search_invariants(benefit, examples=40)
    assert report.violations == [], [v.message for v in report.violations]
    assert {i.id for i in benefit.ir.invariants} >= {"entitled_only_within_the_income_cap"}


def test_mutation_moves_every_row_and_bracket_and_the_tests_notice(benefit: Any) -> None:
    found = [m for m in mutants(benefit.ir) if m.owner.startswith("parameter:")]
    rows = {m.before.split(":")[0] for m in found if m.owner == "parameter:income_cap_by_size"}
    assert rows == {"row 1", "row 2", "row 3", "row 4", "otherwise"}
    brackets = {m.before.split(":")[0] for m in found if m.owner == "parameter:taper"}
    assert brackets == {
        "bracket 1 rate",
        "bracket 2 threshold",
        "bracket 2 rate",
        "bracket 3 threshold",
        "bracket 3 rate",
    }
    assert {m.before.split(":")[0] for m in found if m.owner == "parameter:housing_supplement"} >= {
        "row capital, renter"
    }
    spans = {(str(m.span).split("/")[-1], m.before) for m in found if m.before.startswith(("row 2:", "bracket 2 rate"))}
    assert ("policy.yaml:23:30", "row 2: 1850 (from 2026-07-01)") in spans  # each mutant is located at its row
    assert ("policy.yaml:69:13", "bracket 2 rate: 0.35 (from 2026-07-01)") in spans
    cases, problems = prepare(benefit)
    assert problems == [] and len(cases) == 7
    report = run_mutants(benefit, cases, examples=0)
    survivors = [m.describe() for m in report.survived]
    assert not [s for s in survivors if "parameter" in s], survivors


def test_the_explanation_shows_the_row_and_the_bracket_used(benefit: Any) -> None:
    decision = benefit.evaluate(CLAIMS).decisions["h3-family"]
    text = decision.explain().to_text()
    assert (
        "parameter full_benefit_by_size(4) = 950 (no row for it: the table's `otherwise`), in force since 2026-01-01"
        in text
    )
    assert "parameter taper(1500.0) = 430.0 (marginal scale: bracket 3, from 1000.0 at rate 0.5)" in text
    assert "parameter housing_supplement(rural, renter) = 50" in text
    nodes = {n["id"]: n for n in decision.explain().to_json()["nodes"]}
    assert nodes["parameter:taper"]["value"] == 430.0
    assert nodes["parameter:taper"]["lookups"] == [
        "taper(1500.0) = 430.0 (marginal scale: bracket 3, from 1000.0 at rate 0.5)"
    ]


def test_a_key_without_a_row_and_no_otherwise_is_undetermined_and_named(tmp_path: Path) -> None:
    folder = tmp_path / "benefit"
    shutil.copytree(BENEFIT, folder, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    text = (folder / "policy.yaml").read_text(encoding="utf-8").replace("        otherwise: 3000\n", "", 1)
    (folder / "policy.yaml").write_text(text, encoding="utf-8")
    result = load_policy(folder).evaluate(CLAIMS)
    large = result.decisions["h4-large"]  # six people: no row in January's table, and no `otherwise`
    assert large.outcome == "undetermined"
    why = "income_cap_by_size(6): the table has no row for it and no `otherwise`"
    assert large.missing == (why,)
    assert f"needs {why}" in large.explain().to_text()
    assert result.decisions["h1-single"].outcome == "entitled"


def test_the_row_in_force_follows_the_as_of_date(benefit: Any) -> None:
    june = benefit.evaluate(CLAIMS).decisions["h6-near-cap"]
    july = benefit.evaluate(CLAIMS, as_of="2026-07-01").decisions["h6-near-cap"]
    assert (june.outcome, july.outcome) == ("ineligible", "entitled")
    assert "income_cap_by_size(2) = 1800, in force since 2026-01-01" in june.explain().to_text()
    assert "full_benefit_by_size(2) = 730, in force since 2026-07-01" in july.explain().to_text()


def test_a_table_cannot_be_set_as_one_value_in_a_what_if(benefit: Any) -> None:
    with pytest.raises(PolicyError, match="`income_cap_by_size` is a table"):
        benefit.with_parameters({"income_cap_by_size": 2000})


@pytest.mark.durable
@given(claims=benefit_claims())
def test_both_backends_agree_on_generated_benefit_claims(benefit: Any, claims: dict[str, Any]) -> None:
    """On every generated set of claims, both backends give the same outcomes, reasons, values and grants."""
    durable = _durable_benefit()

    def view(result: Any) -> Any:
        return {i: (d.outcome, d.missing, d.reasons, dict(d.trace), d.grants) for i, d in result.decisions.items()}

    assert view(durable.evaluate(claims)) == view(benefit.evaluate(claims))


_DURABLE: list[Any] = []


def _durable_benefit() -> Any:
    if not _DURABLE:
        _DURABLE.append(_benefit("durable"))
    return _DURABLE[0]


def test_scales_marginal_and_single_rate() -> None:
    """Marginal: each slice at its bracket's rate; single-rate: the whole amount at its bracket's rate."""
    brackets = ((0.0, 0.0), (400.0, 0.3), (1000.0, 0.5))
    assert Scale("marginal", brackets).apply(1500.0) == pytest.approx(430.0)
    assert Scale("single_rate", brackets).apply(1500.0) == pytest.approx(750.0)
    assert Scale("marginal", brackets).apply(400.0) == 0.0 and Scale("marginal", ((10.0, 0.5),)).apply(5.0) == 0.0
    assert Scale("single_rate", brackets).bracket_of(999.99) == 1


@given(amount=st.floats(0, 1e6), more=st.floats(0, 1e6))
def test_a_marginal_scale_with_rates_below_one_never_falls_and_never_outgrows_the_amount(
    amount: float, more: float
) -> None:
    """For rates in [0, 1], a marginal scale's result is non-decreasing in the amount and at most the amount."""
    scale = Scale("marginal", ((0.0, 0.1), (100.0, 0.4), (5000.0, 0.9)))
    assert 0 <= scale.apply(amount) <= amount + 1e-6
    assert scale.apply(amount + more) >= scale.apply(amount) - 1e-6


def test_why_not_names_the_row_and_proposes_another_key(benefit: Any, tmp_path: Path) -> None:
    answer = benefit.evaluate(CLAIMS).decisions["h6-near-cap"].why_not("entitled").to_text()
    assert "it needs ≤ 1800 (`income_cap_by_size(2)`, the row for `size` = 2): -20.0" in answer
    assert "monthly_income: 1820.0 → 1800.0" in answer and "size: 2 → 3" in answer
    upstage = load_policy(_package(tmp_path)).evaluate(EXAMPLES / "stage1.yaml").decisions["upstage"]
    text = upstage.why_not("advanced").to_text()
    assert "needs ≥ 80.0 (`minimum_by_lead_kind(company)`, the row for `lead.kind` = company): +0.2" in text
    assert "scores.expert: 28.4 → 28.6" in text


def test_the_document_shows_tables_and_scales_as_tables(benefit: Any) -> None:
    text = render_document(benefit.ir, "md")
    assert "| key | from 2026-01-01 | from 2026-07-01 |\n|---|---|---|\n| 1 | 1200 | 1250 |" in text
    assert "| (otherwise) | 3000 | 3100 |" in text
    assert "| capital, renter | 150 |" in text
    assert "| 2 | from 400.0 at rate 0.3 (marginal) | from 400.0 at rate 0.35 (marginal) |" in text
    assert "is at most [the highest monthly income that qualifies, by household size]" in text


def test_the_diff_shows_changed_rows_and_names_the_row_a_decision_used(benefit: Any, tmp_path: Path) -> None:
    folder = tmp_path / "benefit"
    shutil.copytree(BENEFIT, folder, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    text = (folder / "policy.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "values: {1: 1200, 2: 1800, 3: 2300, 4: 2700}", "values: {1: 1200, 2: 1850, 3: 2300, 4: 2700, 5: 2900}"
    )
    (folder / "policy.yaml").write_text(text, encoding="utf-8")
    found = diff(benefit, load_policy(folder), [CLAIMS])
    changes = {c.node: (c.what, c.old, c.new) for c in found.changes}
    assert changes == {
        "parameter:income_cap_by_size[2]": (
            "changed",
            "1800 from 2026-01-01, 1850 from 2026-07-01",
            "1850 from 2026-01-01, 1850 from 2026-07-01",
        ),
        "parameter:income_cap_by_size[5]": ("added", None, "2900 from 2026-01-01"),
    }
    (moved,) = found.decisions
    assert (moved.id, moved.old_outcome, moved.new_outcome) == ("h6-near-cap", "ineligible", "entitled")
    assert moved.causes == ("parameter:income_cap_by_size[2]",)  # the row of 5 people is not h6's


def test_the_service_shows_a_table_and_a_scale_in_force_and_explains_the_row(tmp_path: Path) -> None:
    from engine import PolicyStore
    from tests.test_server import serving

    claims = json.loads(json.dumps(yaml.safe_load(CLAIMS.read_text(encoding="utf-8")), default=str))
    with PolicyStore(BENEFIT) as store, serving(store) as http:
        parameters = {p["name"]: p for p in http.get("/v1/policy", params={"as_of": "2026-07-02"}).json()["parameters"]}
        cap = parameters["income_cap_by_size"]
        assert cap["since"] == "2026-07-01" and cap["value"]["otherwise"] == 3100
        assert cap["value"]["rows"][0] == {"keys": [1], "value": 1250}
        assert parameters["taper"]["value"]["brackets"][1] == {"threshold": 400.0, "rate": 0.35}
        response = http.post("/v1/evaluate", json=claims)
        assert response.status_code == 200, response.text
        decided = {d["id"]: d for d in response.json()["decisions"]}
        assert decided["h1-single"]["outcome"] == "entitled"


def test_a_decision_with_tables_is_recorded_and_replays_identically(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "decisions.db"
    assert main(["evaluate", str(BENEFIT), str(CLAIMS), "--record", str(db), "--format", "json"]) == 0
    record = str(json.loads(capsys.readouterr().out)["record"])
    assert main(["replay", str(db), record]) == 0
    assert "identical" in capsys.readouterr().out


def test_the_html_report_of_a_cohort_with_tables_renders(benefit: Any) -> None:
    from engine.explanation.report import render_report

    page = render_report(benefit, benefit.evaluate(CLAIMS))
    assert "h3-family" in page and "income_cap_by_size" in page


def _benefit_copy(tmp_path: Path, old: str, new: str, file: str = "policy.yaml") -> Path:
    folder = tmp_path / "benefit"
    shutil.copytree(BENEFIT, folder, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    text = (folder / file).read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    (folder / file).write_text(text.replace(old, new), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("old", "new", "file", "expected"),
    [
        (
            "        rural: {renter: 50, owner: 0}\n",
            "        rural: {renter: 50}\n",
            "policy.yaml",
            "benefit.yaml:10:46: error[missing-row]: table `housing_supplement` has no row for `rural, owner`",
        ),
        (
            "        city: {renter: 100, owner: 0}\n",
            "        city: 100\n",
            "policy.yaml",
            "policy.yaml:44:3: error[table-keys]: the rows of table `housing_supplement` mix one key and two keys",
        ),
        (
            "values: {capital: 60000, city: 45000, rural: 35000}",
            "values: {capital: 60000, 2: 45000, rural: 35000}",
            "policy.yaml",
            "policy.yaml:30:15: error[table-keys]: the keys of table `asset_cap_by_region` mix text and numbers",
        ),
        (
            "values: {capital: 60000, city: 45000, rural: 35000}",
            "values: {capital: 60000, city: 45000, rural: none}",
            "policy.yaml",
            "policy.yaml:30:7: error[parameter-type]: the values of table `asset_cap_by_region` have different types",
        ),
        (
            "values: {capital: 60000, city: 45000, rural: 35000}",
            "values: {capital: cheap, city: dear, rural: dearer}",
            "policy.yaml",
            "benefit.yaml:29:11: error[type-mismatch]: cannot compare number with text",
        ),
        (
            "expr: taper(monthly_income)",
            "expr: taper(region)",
            "benefit.yaml",
            "benefit.yaml:7:17: error[type-mismatch]: the amount of scale `taper` must be number, but this is one of",
        ),
        (
            "expr: full_benefit_by_size(size)",
            "expr: full_benefit_by_size(size, region)",
            "benefit.yaml",
            "benefit.yaml:4:11: error[bad-call]: `full_benefit_by_size` takes 1 argument, not 2",
        ),
        (
            "values: {1: 1200, 2: 1800, 3: 2300, 4: 2700}",
            "values: {1.5: 1200, 2: 1800, 3: 2300, 4: 2700}",
            "policy.yaml",
            "policy.yaml:20:18: error[invalid-field]: `parameters.income_cap_by_size.tables.2026-01-01.values.1.5`: "
            "its key must be a whole number or text, but this is the number `1.5`",
        ),
        (
            "          - {threshold: 400, rate: 0.3}\n",
            "          - {threshold: 400, rate: [0.3]}\n",
            "policy.yaml",
            "policy.yaml:63:36: error[invalid-field]: `parameters.taper.scales.2026-01-01.brackets[1].rate`: "
            "must be a number, but this is a list of numbers",
        ),
    ],
    ids=[
        "two-key-missing-row",
        "one-and-two-keys",
        "text-and-number-keys",
        "cells-of-two-types",
        "text-cells",
        "scale-of-text",
        "arity",
        "key-of-a-number",
        "rate-of-a-list",
    ],
)
def test_tables_and_scales_are_checked_with_located_diagnostics(
    tmp_path: Path, old: str, new: str, file: str, expected: str
) -> None:
    folder = _benefit_copy(tmp_path, old, new, file)
    with pytest.raises(PolicyError) as caught:
        load_policy(folder)
    found = [d.render().splitlines()[0].replace(f"{folder}/", "") for d in caught.value.diagnostics]
    assert any(f.startswith(expected) for f in found), found


def test_a_table_named_like_a_builtin_function_is_refused(tmp_path: Path) -> None:
    folder = _benefit_copy(tmp_path, "  asset_cap_by_region:\n", "  max:\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(folder)
    assert any(
        d.code == "reserved-name" and "`max` is a builtin function" in d.message for d in caught.value.diagnostics
    )


def test_the_invariant_search_draws_keys_and_thresholds_from_tables_and_scales(benefit: Any, tmp_path: Path) -> None:
    hints = hints_of(benefit.ir)
    assert {1.0, 2.0, 3.0, 4.0, 1200.0, 3100.0, 400.0, 1000.0, 35000.0} <= set(hints.numbers)
    assert {"capital", "renter"} <= set(hints.texts)
    sovereign = load_policy(_package(tmp_path))
    assert {"company", "research_institute", "university"} <= set(hints_of(sovereign.ir).texts)
    report = search_invariants(sovereign, examples=20)
    assert report.violations == [], [v.message for v in report.violations]
