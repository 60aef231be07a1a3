"""`policy doc`: the rule package as a document (Markdown and HTML), and the plain-language words
of expressions it is written in.

The golden file `tests/golden/doc/grants.md` is the Markdown document of the grants fixture,
compared byte for byte. After an intended change of the document, regenerate it by hand and
review the diff:

    .venv/bin/python -m engine doc tests/fixtures/grants --facts-module tests/fixtures/grants/grants_facts.py \
        -o tests/golden/doc/grants.md
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from engine import Policy, load_policy
from engine.cli.main import main
from engine.core.diagnostics import Span
from engine.explanation.document import document_html, document_markdown
from engine.explanation.words import Ref, Words, noun, plain
from engine.language.expr import parse_expression
from engine.language.ir import PolicyIR
from tests.conftest import GRANTS, RULES, chromium, chromium_command

GOLDEN = Path(__file__).parent / "golden" / "doc" / "grants.md"
GRANTS_FACTS = str(GRANTS / "grants_facts.py")


@pytest.fixture(scope="module")
def grants() -> PolicyIR:
    return load_policy(GRANTS, fact_modules=[GRANTS_FACTS]).ir


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def said(ir: PolicyIR, text: str, term: bool = False) -> str:
    node = parse_expression(text, Span("test.yaml", 1, 1))
    words = Words(ir)
    return plain(words.term(node) if term else words.condition(node))


# --- the words of expressions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("age >= minimum_age", "the age is at least the minimum age (18)"),
        ("age > 17", "the age is more than 17"),
        ("age <= 65", "the age is at most 65"),
        ("age < 65", "the age is less than 65"),
        ("region == 'north'", "the region is “north”"),
        ("region != 'north'", "the region is not “north”"),
        ("not age >= minimum_age", "the age is less than the minimum age (18)"),
        (
            "income <= income_cap",
            "the income is at most the highest income that qualifies (30000 from 1 Jan 2026, 40000 from 1 Jul 2026)",
        ),
        ("region in ['north']", "the region is “north”"),
        ("region in ['north', 'south']", "the region is one of “north”, “south”"),
        ("region not in ['north', 'south']", "the region is neither “north” nor “south”"),
        ("income is None", "the income is not given"),
        ("income is not None", "the income is given"),
        ("documents is not None", "the documents are given"),
        ("adult", "“The applicant is an adult” holds"),
        ("not adult", "“The applicant is an adult” fails"),
        ("adult and low_income", "“The applicant is an adult” and “Income is at most the cap” both hold"),
        ("not adult or not low_income", "“The applicant is an adult” fails or “Income is at most the cap” fails"),
        ("not (adult and low_income)", "“The applicant is an adult” fails or “Income is at most the cap” fails"),
        (
            "age > 17 and (income < 10 or region == 'south')",
            "the age is more than 17 and either the income is less than 10 or the region is “south”",
        ),
        (
            "age > 17 or (income < 10 and region == 'south' and adult)",
            "the age is more than 17 or all of (the income is less than 10, the region is “south”, and "
            "“The applicant is an adult” holds)",
        ),
        (
            "any(d.kind == 'tax_return' for d in documents)",
            "at least one document in the documents is such that the document's kind is “tax_return”",
        ),
        (
            "any(d.verified for d in documents if d.kind == 'identity')",
            "at least one document in the documents is such that the document's kind is “identity” and the document's "
            "verified is true",
        ),
        (
            "all(d.verified for d in documents)",
            "every document in the documents is such that the document's verified is true",
        ),
        (
            "not any(d.verified for d in documents)",
            "no document in the documents are such that the document's verified is true",
        ),
        ("len(documents) == 0", "the documents is empty"),
        ("len(documents) > 0", "the documents is not empty"),
        ("stage.rank <= stage.slots", "the applicant's rank in the stage is at most the number of places in the stage"),
        ("True", "always"),
        (
            "age >= 18 if region == 'north' else age >= 21",
            "the age is at least 18 if the region is “north”, otherwise the age is at least 21",
        ),
    ],
)
def test_conditions_read_as_plain_language(grants: PolicyIR, expression: str, expected: str) -> None:
    assert said(grants, expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("income + 1", "the income plus 1"),
        ("income - age * 2", "the income, minus the age times 2"),
        ("(income - age) * 2", "(the income minus the age) times 2"),
        ("income / (age - 1)", "the income divided by (the age minus 1)"),
        ("-income", "minus the income"),
        ("len(documents)", "the number of the documents"),
        (
            "count(d.verified for d in documents)",
            "the number of documents in the documents such that the document's verified is true",
        ),
        (
            "sum(1 for d in documents if d.verified)",
            "the sum of 1 for every document in the documents such that the document's verified is true",
        ),
        ("min(income, 100)", "the lower of the income and 100"),
        ("max(income, 100, age)", "the highest of the income, 100, and the age"),
        ("abs(income)", "the absolute value of the income"),
        ("round(income)", "the income rounded to a whole number"),
        ("round(income, 2)", "the income rounded to 2 decimal places"),
        (
            "[d for d in documents if d.verified]",
            "the documents in the documents such that the document's verified is true",
        ),
        ("verified_documents", "the verified documents"),
        ("grants", "the number of grants (2)"),
        ("['a', 'b']", "“a” and “b”"),
        ("income if income is not None else 0", "the income if the income is given, otherwise 0"),
    ],
)
def test_terms_read_as_plain_language(grants: PolicyIR, expression: str, expected: str) -> None:
    assert said(grants, expression, term=True) == expected


def test_names_link_to_their_definitions_and_facts(grants: PolicyIR) -> None:
    node = parse_expression("any(d.verified for d in documents) and income <= income_cap", Span("t", 1, 1))
    refs = {piece.anchor: piece.text for piece in Words(grants).condition(node) if isinstance(piece, Ref)}
    assert refs == {
        "fact-documents": "the documents",
        "fact-documents-verified": "the document's verified",
        "fact-income": "the income",
        "parameter-income_cap": "the highest income that qualifies",
    }


def test_sovereign_ai_reads_values_lists_and_field_paths(policy: Policy) -> None:
    ir = policy.ir
    assert said(ir, "total_score >= minimum_total_score") == (
        "the total stage-1 score is at least the minimum total score to stay in the programme (70.0 from 15 Jan 2026)"
    )
    assert said(ir, "len(pretrained_components) == 0") == (
        "there are no components whose weights were taken pretrained from another model"
    )
    assert said(ir, "slots_planned > 1".replace("slots_planned", "context.slots_planned")) == (
        "the cohort's slots planned is more than 1"
    )
    assert said(ir, "teams_kept", term=True) == (
        "the number of teams kept after each review (5 from 4 Aug 2025, 4 from 15 Jan 2026, 3 from 1 Aug 2026, "
        "2 from 1 Dec 2026)"
    )
    assert noun("Total stage-1 score (benchmark 40 + expert review 35 + user review 25)") == "the total stage-1 score"
    assert noun("NIA score") == "the NIA score"


# --- the document ------------------------------------------------------------------------------


def test_every_stage_rule_value_and_parameter_of_sovereign_ai_appears(policy: Policy) -> None:
    ir = policy.ir
    for text in (document_markdown(ir), document_html(ir)):
        for kind, table in (
            ("stage", ir.stages),
            ("rule", ir.rules),
            ("value", ir.values),
            ("parameter", ir.parameters),
        ):
            for name, definition in table.items():
                assert f'id="{kind}-{name}"' in text, (kind, name)
                assert definition.title in text or html.escape(definition.title) in text, (kind, name)
        for invariant in ir.invariants:
            assert f'id="invariant-{invariant.id}"' in text
    md = document_markdown(ir)
    assert "A consortium is:" in md
    assert (
        "1. **ineligible** if “[The consortium meets the programme's entry requirements](#rule-eligible)” fails" in md
    )
    assert (
        "2. otherwise **disqualified** if “[The model meets the core requirements of a domestically developed "
        "foundation model (tests and committee)](#rule-meets_core_requirements)” fails" in md
    )
    assert (
        "3. otherwise **eliminated** if “[The total score reaches the minimum](#rule-meets_minimum_total)” fails" in md
    )
    assert "4. otherwise **advanced**, which brings: *Government GPUs (NVIDIA B200), for the half-year" in md
    assert "(70.0 from 15 Jan 2026)" in md
    assert "| 15 Jan 2026 | 4 teams |" in md


def test_markdown_is_stable_with_no_timestamps(policy: Policy) -> None:
    first = document_markdown(policy.ir)
    again = document_markdown(load_policy(RULES).ir)
    assert first == again
    assert not re.search(r"\d{2}:\d{2}", first)  # no time of day anywhere
    assert str(RULES.parent) not in first  # file names relative to the package, not the machine


def test_golden_markdown_of_the_grants_fixture(grants: PolicyIR) -> None:
    """Byte for byte; see the module docstring for how to regenerate it after an intended change."""
    assert document_markdown(grants) == GOLDEN.read_text(encoding="utf-8")


def _anchors(text: str) -> tuple[set[str], set[str]]:
    links = set(re.findall(r'\(#([^)\s]+)\)|href="#([^"]+)"', text))
    targets = set(re.findall(r'id="([^"]+)"', text))
    return {a or b for a, b in links}, targets


@pytest.mark.parametrize("render", [document_markdown, document_html])
def test_every_link_resolves_inside_the_document(policy: Policy, render: object) -> None:
    text = render(policy.ir)  # type: ignore[operator]
    links, targets = _anchors(text)
    assert links and links <= targets, sorted(links - targets)


def test_a_rule_links_to_what_it_uses_and_to_what_uses_it(policy: Policy) -> None:
    md = document_markdown(policy.ir)
    section = md.split('<a id="rule-meets_minimum_total"></a>')[1].split("\n### ")[0]
    uses = section.split("**Uses:**")[1].split("\n")[0]
    used_by = section.split("**Used by:**")[1].split("\n")[0]
    assert "(#value-total_score)" in uses and "(#parameter-minimum_total_score)" in uses
    assert "outcome row 3 (eliminated) of “Stage-1 review" in used_by and "(#stage-stage1)" in used_by
    sovereign = md.split('<a id="rule-sovereign"></a>')[1].split("\n### ")[0].split("**Used by:**")[1]
    assert "(#rule-meets_core_requirements)" in sovereign and "(#rule-meets_core_requirements_tightened)" in sovereign
    assert "(#rule-qualifies_for_additional_call)" not in sovereign  # it reads `meets_core_requirements`, which does
    core = md.split('<a id="rule-meets_core_requirements"></a>')[1].split("\n### ")[0].split("**Used by:**")[1]
    assert "(#rule-qualifies_for_additional_call)" in core and "outcome row 2 (disqualified) of “Stage-1 review" in core
    assert "(#invariant-sovereignty_failure_never_takes_a_place)" in sovereign
    facts = md.split('<a id="fact-scores-expert"></a>')[1].split("\n")[0]
    assert "(#value-total_score)" in facts and "(#stage-stage1)" in facts


def test_a_fact_only_an_invariant_reads_has_its_entry_in_the_facts(policy: Policy) -> None:
    """`context.stage` and `derived_from` are read by invariants alone (no node of the dependency
    graph): the invariant links to them, so the Facts section defines them, read by that invariant."""
    md = document_markdown(policy.ir)
    facts = md.split('<a id="facts"></a>')[1].split("\n## ")[0]
    for path, invariant in (
        ("context.stage", "later_stages_only_continue_the_programme"),
        ("model.components[].weights.upstream.derived_from", "foreign_grandparent_never_takes_a_place"),
        ("model.components[].weights.upstream.derived_from.country", "foreign_grandparent_never_takes_a_place"),
    ):
        anchor = "fact-" + re.sub(r"[^A-Za-z0-9_]+", "-", path).strip("-")
        entry = facts.split(f'<a id="{anchor}"></a>')[1].split("\n")[0]
        assert entry.startswith(f"`{path}`") and f"(#invariant-{invariant})" in entry, (path, entry)
        reads = md.split(f'<a id="invariant-{invariant}"></a>')[1].split("\n### ")[0].split("**Reads:**")[1]
        assert f"(#{anchor})" in reads
    lineage = facts.split('<a id="fact-model-components-weights-upstream-lineage"></a>')[1].split("\n")[0]
    assert "every model it was derived from" in lineage  # a computed field's description


def test_html_is_self_contained(policy: Policy) -> None:
    page = document_html(policy.ir)
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page and "<script" not in page and "<link" not in page
    assert page.count("<h3") == len(policy.ir.stages) + len(policy.ir.rules) + len(policy.ir.values) + len(
        policy.ir.parameters
    ) + len(policy.ir.invariants)


def _hostile_package(tmp_path: Path) -> Path:
    folder = tmp_path / "hostile"
    shutil.copytree(GRANTS, folder)
    manifest = folder / "policy.yaml"
    text = manifest.read_text(encoding="utf-8")
    text = text.replace(
        "title: The applicant is an adult",
        'title: "<script>alert(1)</script> *adult* [x](http://evil) \\x1b[2K\\u202eevil"',
    )
    manifest.write_text(text, encoding="utf-8")
    return folder


def test_package_text_is_escaped_and_control_characters_shown(tmp_path: Path) -> None:
    ir = load_policy(_hostile_package(tmp_path), fact_modules=[GRANTS_FACTS]).ir
    page, md = document_html(ir), document_markdown(ir)
    for text in (page, md):
        assert "\x1b" not in text and "\u202e" not in text
        assert "\\x1b[2K" in text.replace("\\[", "[") and "\\u202eevil" in text
    assert (
        "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "http://evil" in page
    )  # as text, not a link
    assert 'href="http://evil"' not in page
    assert "\\<script\\>" in md and "\\*adult\\*" in md and "\\[x\\](http://evil)" in md


# --- the command --------------------------------------------------------------------------------


def test_cli_writes_markdown_html_and_stdout(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "grants.md"
    code, out, _ = run(capsys, "doc", str(GRANTS), "--facts-module", GRANTS_FACTS, "-o", str(target))
    assert code == 0 and "1 stage(s), 6 rule(s), 1 value(s), 3 parameter(s)" in out
    assert target.read_text(encoding="utf-8") == GOLDEN.read_text(encoding="utf-8")
    code, out, _ = run(capsys, "doc", str(GRANTS), "--facts-module", GRANTS_FACTS)
    assert code == 0 and out == GOLDEN.read_text(encoding="utf-8")
    page = tmp_path / "page.out"
    code, _, _ = run(capsys, "doc", str(GRANTS), "--facts-module", GRANTS_FACTS, "--format", "html", "-o", str(page))
    assert code == 0 and page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    code, _, err = run(capsys, "doc", str(GRANTS), "--facts-module", GRANTS_FACTS, "-o", str(tmp_path / "x.pdf"))
    assert code == 2 and "--format md|html" in err


@pytest.mark.skipif(chromium() is None, reason="headless Chromium is not installed (Debian package chromium)")
def test_html_renders_in_headless_chromium_with_every_definition(
    capsys: pytest.CaptureFixture[str], policy: Policy, tmp_path: Path
) -> None:
    target = tmp_path / "policy.html"
    code, _, _ = run(capsys, "doc", str(RULES), "-o", str(target))
    assert code == 0
    command = chromium_command(tmp_path / "profile")
    dom = subprocess.run([*command, "--dump-dom", target.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    ir = policy.ir
    for kind, table in (("stage", ir.stages), ("rule", ir.rules), ("value", ir.values), ("parameter", ir.parameters)):
        for name in table:
            assert re.search(rf'<h3 id="{kind}-{re.escape(name)}">', dom.stdout), (kind, name)
    assert "<strong>disqualified</strong> if" in dom.stdout
    shot = tmp_path / "policy.png"
    subprocess.run(
        [*command, "--window-size=1100,1600", f"--screenshot={shot}", target.as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 20_000  # a real picture, not a blank page


def test_an_outcome_row_says_what_it_brings_and_a_stage_when_it_applies(policy: Policy) -> None:
    md = document_markdown(policy.ir)
    assert "3. otherwise **selected**, which brings: *Government GPUs (NVIDIA B200)*: " in md
    assert "(#parameter-gpus_b200_additional_call) (768 from 23 Jan 2026) GPUs" in md
    assert "*K-AI Company designation*" in md
    assert "**Applies** from 15 Jan 2026 until 25 Jan 2026." in md
