"""No text a subject or a rule package supplies can drive a terminal or break a diagram.

A subject's id (any fact text) holding `ESC [2K CR` would erase a line of the table and print a
fake outcome; a bidirectional override would make a line read differently from what it is. In
every output format, on the command line and over HTTP, control characters (C0, DEL, C1) and the
bidirectional controls of the values inserted are shown escaped (`\\x1b`, `\\u202e`); Mermaid
labels write every character Mermaid reads as syntax as an entity code; DOT strings escape `"`
and `\\`; JSON is strict and escapes them too.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import networkx as nx
import pytest

from engine import PolicyStore, load_policy
from engine.cli import main
from engine.core.text import CONTROL, json_text, shown, shown_lines
from engine.explanation.render import dot_string, mermaid_label, to_dot, to_mermaid, to_svg
from tests.conftest import GRANTS
from tests.test_server import serving

EVIL = "eve\x1b[2K\r\u202egranted\x9b0m\u2066\x00\x7f\nfake  granted"
SHOWN = "eve\\x1b[2K\\x0d\\u202egranted\\x9b0m\\u2066\\x00\\x7f\\x0afake  granted"
COHORT = {
    "context": {"stage": "award", "date": "2026-08-01"},
    "applicants": [
        {"id": EVIL, "income": 1000, "age": 30, "documents": [{"kind": "tax_return", "verified": True}]},
        {"id": "bob", "income": 50000, "age": 40},
        {"id": "ann", "income": 2000, "age": 12},
    ],
}


def inert(text: str) -> bool:
    """No control character but the newlines between lines, and no line that starts with the fake outcome."""
    return all(ord(c) not in CONTROL or c == "\n" for c in text) and not any(
        line.startswith("fake") for line in text.splitlines()
    )


def _strings(data: object) -> set[str]:
    if isinstance(data, str):
        return {data}
    if isinstance(data, dict):
        return set(data) | {s for v in data.values() for s in _strings(v)}
    if isinstance(data, list):
        return {s for v in data for s in _strings(v)}
    return set()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def facts(tmp_path: Path) -> str:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(COHORT), encoding="utf-8")  # JSON carries the controls as \u escapes
    return str(path)


# --- the rule ------------------------------------------------------------------------------------


def test_shown_escapes_c0_del_c1_and_bidirectional_controls() -> None:
    assert shown(EVIL) == SHOWN
    assert shown("\t\u2028\u2029\u202a\u202d\u2069\x85") == "\\x09\\u2028\\u2029\\u202a\\u202d\\u2069\\x85"
    assert shown(shown(EVIL)) == SHOWN  # idempotent: escaping twice changes nothing


def test_shown_keeps_every_other_character() -> None:
    text = "Zoë → ✓ 네이버 “quoted” \\ back\\slash ≥ 70.0 ﷺ \u200d"
    assert shown(text) == text


def test_shown_lines_keeps_newlines_only() -> None:
    assert shown_lines("a\x1bb\nc\u202e") == "a\\x1bb\nc\\u202e"


def test_json_text_is_strict_and_inert() -> None:
    text = json_text(
        {"id": EVIL, "keys": [float("inf"), float("-inf"), float("nan"), 1.5], "n": {"x": (float("nan"),)}}
    )
    assert inert(text) and "Infinity" not in text and "NaN" not in text
    data = json.loads(text, parse_constant=lambda token: pytest.fail(f"non-standard JSON token {token}"))
    assert data == {"id": EVIL, "keys": [None, None, None, 1.5], "n": {"x": [None]}}  # same string, decoded


# --- diagrams ------------------------------------------------------------------------------------


def _entities(label: str) -> str:
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), label.replace("#quot;", '"'))


def test_mermaid_labels_write_every_special_character_as_an_entity_code() -> None:
    text = 'a "b" [c] (d) {e} <script> #f; g|h % i `j` & k' + EVIL
    label = mermaid_label(text)
    assert not re.search(r'["\[\](){}<>|%`&\n]', label)
    assert not re.search(r"#(?!quot;|\d+;)", label)  # every `#` starts an entity code
    assert _entities(label) == shown(text)


def test_dot_strings_escape_quotes_backslashes_and_controls() -> None:
    text = 'say "hi" \\ there' + EVIL
    quoted = dot_string(text)
    body = quoted[1:-1]
    assert quoted[0] == quoted[-1] == '"' and inert(quoted)
    assert not re.search(r'(?<!\\)(\\\\)*"', body)  # no unescaped quote inside
    assert re.sub(r"\\(.)", r"\1", body) == shown(text)  # Graphviz shows exactly the escaped text


def test_every_picture_of_a_graph_is_inert() -> None:
    graph = nx.DiGraph()
    graph.add_node(EVIL, kind="fact", name=EVIL)
    graph.add_node("b", kind="rule", name="b")
    graph.add_edge(EVIL, "b")

    def label(attrs: dict[str, str]) -> str:
        return f"{attrs['kind']}: {attrs['name']}"

    dot, mermaid, svg = to_dot(graph, label, EVIL), to_mermaid(graph, label), to_svg(graph, label)
    assert all(inert(text) for text in (dot, mermaid, svg))
    assert len(dot.splitlines()) == 3 + 2 + 1 + 1 and len(mermaid.splitlines()) == 1 + 2 + 1
    assert "\\\\x1b" in dot and "\\x1b" in mermaid and html.escape(SHOWN[:20]) in svg


# --- the command line ----------------------------------------------------------------------------


def test_the_table_shows_an_id_escaped_and_prints_no_fake_row(capsys: pytest.CaptureFixture[str], facts: str) -> None:
    code, out, _ = run(capsys, "evaluate", str(GRANTS), facts)
    assert code == 0 and inert(out)
    assert any(line.startswith(SHOWN) and "granted" in line for line in out.splitlines())


def test_json_as_printed_is_inert_and_keeps_the_id(capsys: pytest.CaptureFixture[str], facts: str) -> None:
    for argv in (
        ["evaluate", "--format", "json"],
        ["explain", "--format", "json"],
        ["explain", EVIL, "--format", "json"],
    ):
        code, out, _ = run(capsys, argv[0], str(GRANTS), facts, *argv[1:])
        assert code == 0 and inert(out), argv
        assert EVIL in _strings(json.loads(out)), argv  # the value itself, once decoded


@pytest.mark.parametrize("format", ["text", "dot", "mermaid"])
def test_policy_explain_is_inert_in_every_format(capsys: pytest.CaptureFixture[str], facts: str, format: str) -> None:
    code, out, _ = run(capsys, "explain", str(GRANTS), facts, EVIL, "--format", format)
    assert code == 0 and inert(out)
    if format == "text":
        assert out.startswith(SHOWN + ": granted")


def test_why_not_and_the_stage_view_are_inert(capsys: pytest.CaptureFixture[str], facts: str) -> None:
    code, out, _ = run(capsys, "explain", str(GRANTS), facts, EVIL, "--why-not", "refused")
    assert code == 0 and inert(out) and out.startswith(SHOWN + ": granted; why not")
    code, out, _ = run(capsys, "explain", str(GRANTS), facts)
    assert code == 0 and inert(out) and SHOWN in out


def test_an_unknown_id_is_echoed_escaped(capsys: pytest.CaptureFixture[str], facts: str) -> None:
    code, out, err = run(capsys, "explain", str(GRANTS), facts, "x\x1b[31m")
    assert code == 2 and inert(err) and "x\\x1b[31m" in err and SHOWN in err


def test_the_html_report_shows_controls_escaped(capsys: pytest.CaptureFixture[str], facts: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    code, _, _ = run(capsys, "report", str(GRANTS), facts, "-o", str(page))
    text = page.read_text(encoding="utf-8")
    assert code == 0 and inert(text) and html.escape(SHOWN) in text


@pytest.fixture()
def evil_package(tmp_path: Path) -> Path:
    """The grants package with a rule title and a stage title holding control characters."""
    package = tmp_path / "grants"
    shutil.copytree(GRANTS, package)
    manifest = package / "policy.yaml"
    text = manifest.read_text(encoding="utf-8")
    text = text.replace("title: The applicant is an adult", 'title: "adult\\e[2K\\r\\u202Egranted"')
    text = text.replace("title: Award round", 'title: "Award\\nround \\x9b"')
    manifest.write_text(text, encoding="utf-8")
    return package


@pytest.mark.parametrize("format", ["text", "dot", "mermaid", "json"])
def test_policy_graph_is_inert(capsys: pytest.CaptureFixture[str], evil_package: Path, format: str) -> None:
    code, out, _ = run(capsys, "graph", str(evil_package), "--format", format)
    assert code == 0 and inert(out)
    if format == "text":
        assert "adult\\x1b[2K\\x0d\\u202egranted" in out


def test_a_rule_title_reaches_the_explanation_escaped(
    capsys: pytest.CaptureFixture[str], evil_package: Path, facts: str
) -> None:
    code, out, _ = run(capsys, "explain", str(evil_package), facts, "ann")
    assert code == 0 and inert(out) and "adult\\x1b[2K\\x0d\\u202egranted (rule `adult`)" in out
    code, out, _ = run(capsys, "explain", str(evil_package), facts)
    assert code == 0 and inert(out) and "Award\\x0around \\x9b" in out


# --- HTTP ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with PolicyStore(GRANTS) as store, serving(store) as http:
        yield http


@pytest.mark.parametrize("format", ["text", "dot", "mermaid", "json"])
def test_http_explain_is_inert_in_every_format(client: httpx.Client, format: str) -> None:
    response = client.post("/v1/explain", params={"id": EVIL, "format": format}, json=COHORT)
    assert response.status_code == 200 and inert(response.text)
    if format == "text":
        assert response.text.startswith(SHOWN + ": granted")
    if format == "json":
        assert response.json()["decision"]["id"] == EVIL  # JSON keeps the value itself, escaped as \u


def test_http_evaluate_json_is_inert(client: httpx.Client) -> None:
    response = client.post("/v1/evaluate", json=COHORT)
    assert response.status_code == 200 and inert(response.text)
    assert "\\u001b" in response.text and "\\u202e" in response.text and "\\u009b" in response.text
    assert EVIL in {d["id"] for d in response.json()["decisions"]}


def test_the_explanation_is_the_same_through_the_api(client: httpx.Client) -> None:
    policy = load_policy(GRANTS)
    decision = policy.evaluate(COHORT).decisions[EVIL]
    response = client.post("/v1/explain", params={"id": EVIL}, json=COHORT)
    assert response.text == decision.explain().to_text() + "\n"
