"""The reading pass (issue 9): a rule package and a fact file are data, and no input reaches an internal error.

Values that do not exist, bad bytes and bad encodings are located diagnostics (exit 2) in fact
files and rule files; JSON is read as strict JSON; the alias guard limits what aliases add, not
the size of a document, and an explicit size limit names the file; YAML is read by the 1.2
core schema (`NO` is Norway); `include:` stays inside the package; the HTTP body is strict JSON.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from engine import FactError, Policy, PolicyError, PolicyStore, load_policy
from engine.cli import main
from engine.core.diagnostics import Diagnostic
from engine.service.server import create_app
from engine.source import files, yamlsource
from engine.source.facts import load_facts
from engine.source.jsonsource import parse_json
from engine.source.yamlsource import MAX_ALIAS_NODES, dump_yaml, parse_yaml, read_document
from policy.facts import Cohort, Organisation
from tests.conftest import EXAMPLES, RULES

STAGE1_YAML = (EXAMPLES / "stage1.yaml").read_bytes()
STAGE1_JSON = (EXAMPLES / "stage1.json").read_text(encoding="utf-8")


def _edited(tmp_path: Path, old: bytes, new: bytes, name: str = "cohort.yaml") -> Path:
    assert STAGE1_YAML.count(old) == 1, old
    path = tmp_path / name
    path.write_bytes(STAGE1_YAML.replace(old, new))
    return path


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err, err
    return code, err


def _only(error: FactError | PolicyError) -> Diagnostic:
    assert len(error.diagnostics) == 1, str(error)
    return error.diagnostics[0]


def _package(tmp_path: Path) -> Path:
    package = tmp_path / "pkg"
    shutil.copytree(RULES, package, ignore=shutil.ignore_patterns("tests"))
    return package


# --- 1. bad values are located, in fact files and in rule files ---------------------------------

BAD_VALUES = [
    (b"date: 2026-01-15", b"date: 2026-02-30", "invalid-value", 9, "`2026-02-30` is not a date"),
    (b"slots_planned: 4", b"slots_planned: !!int abc", "invalid-value", 18, "`abc` is not a valid `!!int`"),
    (b"slots_planned: 4", b"slots_planned: " + b"9" * 5000, "invalid-value", 18, "more than 4300 digits"),
    (b"programme: Sovereign", b"programme: \x1bSovereign", "yaml-syntax", 14, "control character `\\x1b`"),
    (b"programme: Sovereign", b"programme: \x00Sovereign", "yaml-syntax", 14, "control character `\\x00`"),
    (b"programme: Sovereign", b"programme: \xffSovereign", "invalid-encoding", 14, "byte `0xff`"),
    (b"slots_planned: 4", b"slots_planned: !python/name:os.system x", "invalid-value", 18, "unsupported tag"),
]


def _line_of(text: bytes) -> int:
    """The line of `examples/stage1.yaml` that holds `text` (the file's header may grow)."""
    data = (EXAMPLES / "stage1.yaml").read_bytes()
    return data[: data.index(text)].count(b"\n") + 1


BAD_IDS = ["no-such-date", "tagged-int", "huge-int", "esc", "nul", "bad-utf8", "python-tag"]


@pytest.mark.parametrize(("old", "new", "code", "column", "message"), BAD_VALUES, ids=BAD_IDS)
def test_a_bad_value_in_a_fact_file_is_located_and_exits_2(
    old: bytes,
    new: bytes,
    code: str,
    column: int,
    message: str,
    tmp_path: Path,
    policy: Policy,
    capsys: pytest.CaptureFixture[str],
) -> None:
    where = (_line_of(old), column)
    path = _edited(tmp_path, old, new)
    with pytest.raises(FactError) as caught:
        load_facts(Cohort, path)
    found = _only(caught.value)
    assert (found.code, found.span and (found.span.line, found.span.column)) == (code, where)
    assert message in found.message
    with pytest.raises(FactError):
        policy.evaluate(path)
    status, err = _cli(capsys, "evaluate", str(RULES), str(path))
    assert status == 2 and f"{path}:{where[0]}:{where[1]}: error[{code}]" in err


RULE_EDITS = [
    (b"      2026-01-15: 4\n", b"      2026-02-30: 4\n", "invalid-value", (10, 7)),
    (b"    unit: teams\n", b"    unit: !!int abc\n", "invalid-value", (7, 11)),
    (b"    unit: teams\n", b"    unit: te\x1bams\n", "yaml-syntax", (7, 13)),
    (b"    unit: teams\n", b"    unit: te\xc3ams\n", "invalid-encoding", (7, 13)),
]


@pytest.mark.parametrize(("old", "new", "code", "where"), RULE_EDITS, ids=["no-such-date", "tagged-int", "esc", "utf8"])
def test_a_bad_value_in_a_rule_file_is_located_and_exits_2(
    old: bytes, new: bytes, code: str, where: tuple[int, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = _package(tmp_path)
    target = package / "parameters.yaml"
    text = target.read_bytes()
    assert text.count(old) == 1
    target.write_bytes(text.replace(old, new))
    with pytest.raises(PolicyError) as caught:
        load_policy(package)
    found = _only(caught.value)
    assert (found.code, found.span and (found.span.line, found.span.column)) == (code, where)
    status, err = _cli(capsys, "check", str(package), "--no-search")
    assert status == 2 and f"parameters.yaml:{where[0]}:{where[1]}: error[{code}]" in err


# --- 2. JSON is strict JSON, read by the C parser ------------------------------------------------


def _json_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cohort.json"
    path.write_text(text, encoding="utf-8")
    return path


JSON_CASES = [
    ('{"context": {"stage": "stage1", "stage": "x"}}', "duplicate-key", (1, 33), "key `stage` appears twice"),
    ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "json-syntax", (1, 6 + 500), "nested too deeply"),
    ('{"context":\n {"slots_planned": ' + "7" * 4301 + "}}", "invalid-value", (2, 20), "more than 4300 digits"),
    ('{"context": {"slots_planned": NaN}}', "json-syntax", (1, 31), "`NaN` is not a JSON value"),
    ('{"context": {"slots_planned": 4}}\n{"x": 1}', "json-syntax", (2, 1), "extra data"),
    ("{context: 1}", "json-syntax", (1, 2), "invalid JSON"),
]


@pytest.mark.parametrize(
    ("text", "code", "where", "message"), JSON_CASES, ids=["duplicate", "deep", "huge-int", "nan", "extra", "yaml"]
)
def test_a_bad_json_fact_file_is_located_and_exits_2(
    text: str, code: str, where: tuple[int, int], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _json_file(tmp_path, text)
    with pytest.raises(FactError) as caught:
        load_facts(Cohort, path)
    found = _only(caught.value)
    assert (found.code, found.span and (found.span.line, found.span.column)) == (code, where)
    assert message in found.message
    status, err = _cli(capsys, "evaluate", str(RULES), str(path))
    assert status == 2 and f"{path}:{where[0]}:{where[1]}: error[{code}]" in err


def test_json_fact_files_never_go_through_the_yaml_reader(
    tmp_path: Path, policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = policy.evaluate(EXAMPLES / "stage1.yaml").outcomes()

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a JSON file was read as YAML")

    monkeypatch.setattr(yamlsource, "parse_yaml", refuse)
    assert policy.evaluate(EXAMPLES / "stage1.json").outcomes() == expected


def test_json_positions_are_computed_only_for_an_error_and_then_exactly(tmp_path: Path) -> None:
    data = json.loads(STAGE1_JSON)
    data["consortia"][3]["scores"]["expert"] = 36.5
    data["consortia"][1]["scores"]["bogus"] = 1
    text = json.dumps(data, indent=2)
    document = parse_json(text, "cohort.json")
    assert document.data == data and not document.source.values  # the fast path keeps no positions
    with pytest.raises(FactError) as caught:
        load_facts(Cohort, _json_file(tmp_path, text))
    lines = text.splitlines()
    expert = [i for i, line in enumerate(lines) if '"expert": 36.5' in line][0]
    bogus = [i for i, line in enumerate(lines) if '"bogus"' in line][0]
    spans = {d.code: (d.span.line, d.span.column) for d in caught.value.diagnostics if d.span}
    assert spans == {
        "invalid-field": (expert + 1, lines[expert].index("36.5") + 1),
        "unknown-field": (bogus + 1, lines[bogus].index('"bogus"') + 1),
    }


def test_yaml_is_read_by_libyaml_when_pyyaml_has_it() -> None:
    if yaml.__with_libyaml__:
        assert yamlsource._Parser is yaml.cyaml.CParser


def test_yaml_positions_of_a_lazy_read_are_the_same_as_an_eager_one(tmp_path: Path) -> None:
    path = _edited(tmp_path, b"      expert: 31.6", b"      expert: 36.0")
    lazy, eager = read_document(path, lazy=True), read_document(path)
    assert lazy.data == eager.data and not lazy.source.values
    assert lazy.source.span(("consortia", 0, "scores", "expert")) == eager.source.span(
        ("consortia", 0, "scores", "expert")
    )
    with pytest.raises(FactError) as caught:
        load_facts(Cohort, path)
    assert str(caught.value).startswith(f"{path}:{_line_of(b'      expert: 31.6')}:15: error[invalid-field]")


# --- 2. sizes: aliases are limited by what they add, files by an explicit limit ------------------


def test_a_large_document_without_aliases_is_read() -> None:
    count = 250_000  # more nodes than the old guard allowed the whole document
    document = parse_yaml("xs: [" + ", ".join(map(str, range(count))) + "]\n", "big.yaml", spans=False)
    assert not document.diagnostics and len(document.data["xs"]) == count


def test_aliases_are_limited_by_the_nodes_they_add() -> None:
    anchored = "a: &a [" + ", ".join(["1"] * 1000) + "]\n"
    fine = anchored + "b: [" + ", ".join(["*a"] * (MAX_ALIAS_NODES // 1001)) + "]\n"
    assert not parse_yaml(fine, "f.yaml").diagnostics
    bomb = anchored + "b: [" + ", ".join(["*a"] * (MAX_ALIAS_NODES // 1001 + 1)) + "]\n"
    found = parse_yaml(bomb, "f.yaml").diagnostics
    assert [d.code for d in found] == ["yaml-syntax"] and "aliases expand the document beyond" in found[0].message


def test_merge_keys_still_merge_and_own_keys_win() -> None:
    text = "base: &b {x: 1, y: 2}\nother: {<<: *b, y: 3, z: 4}\n"
    assert parse_yaml(text, "m.yaml").data["other"] == {"x": 1, "y": 3, "z": 4}


def test_a_file_over_the_size_limit_is_refused_naming_it_its_size_and_the_limit(
    tmp_path: Path, policy: Policy, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    limit = 16_000
    assert max(len(p.read_bytes()) for p in RULES.glob("*.yaml")) < limit  # the rule files are smaller
    monkeypatch.setattr(files, "MAX_INPUT_BYTES", limit)
    padding = b"\n" + b"# padding\n" * 1700
    path = _edited(tmp_path, b"slots_planned: 4", b"slots_planned: 4" + padding)
    with pytest.raises(FactError) as caught:
        policy.evaluate(path)
    found = _only(caught.value)
    assert found.code == "input-too-large"
    size = files.size_text(len(path.read_bytes()))
    assert found.message == f"`{path}` is {size}, over the limit of 15.6 KB for one input file"
    status, err = _cli(capsys, "evaluate", str(RULES), str(path))
    assert status == 2 and "error[input-too-large]" in err
    package = _package(tmp_path)
    (package / "stage1.yaml").write_text("# padding\n" * 1700, encoding="utf-8")
    with pytest.raises(PolicyError) as refused:
        load_policy(package)
    assert [d.code for d in refused.value.diagnostics] == ["input-too-large"]
    assert _cli(capsys, "check", str(package), "--no-search")[0] == 2


# --- 3. YAML 1.2: `NO` is Norway -----------------------------------------------------------------


@pytest.mark.parametrize("text", ["NO", "No", "no", "yes", "Yes", "YES", "on", "off", "On", "y", "n", "Y", "N"])
def test_yaml_1_1_booleans_are_text(text: str) -> None:
    assert parse_yaml(f"country: {text}\n", "f.yaml").data == {"country": text}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("FALSE", False),
        ("~", None),
        ("null", None),
        ("", None),
        ("0777", 777),
        ("0o17", 15),
        ("0x1F", 31),
        ("-12", -12),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("-.inf", float("-inf")),
        ("1:20", "1:20"),
        ("1_000", "1_000"),
        ("0b101", "0b101"),
        ("'true'", "true"),
        ("!!str 12", "12"),
        ("!!float 1", 1.0),
    ],
)
def test_scalars_follow_the_yaml_1_2_core_schema(text: str, value: Any) -> None:
    read = parse_yaml(f"v: {text}\n", "f.yaml").data["v"]
    assert read == value and type(read) is type(value)


def test_norway_in_a_fact_file_is_a_country(tmp_path: Path) -> None:
    path = tmp_path / "org.yaml"
    path.write_text("name: Norsk AI\ncountry: NO\nkind: company\n", encoding="utf-8")
    assert load_facts(Organisation, path).country == "NO"


def test_text_that_yaml_1_2_reads_as_a_number_is_quoted_when_written() -> None:
    data = {"texts": ["NO", "yes", "1e3", "0o17", "0777", "1:20", "true", "null", ".5", "2026-01-15"], "n": 1e3}
    assert parse_yaml(dump_yaml(data), "d.yaml").data == data


# --- 4. include: stays inside the package ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../../../../etc/passwd", "leads out of the package folder"),
        ("/etc/passwd", "is an absolute path"),
        ("../outside.yaml", "leads out of the package folder"),
        ("sub/../../outside.yaml", "leads out of the package folder"),
        ("link.yaml", "leads out of the package folder through a symbolic link"),
        ("linked/outside.yaml", "leads out of the package folder through a symbolic link"),
    ],
)
def test_an_include_outside_the_package_is_refused_at_its_entry(
    name: str, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = _package(tmp_path)
    (tmp_path / "outside.yaml").write_text("values: [not read\n", encoding="utf-8")  # a syntax error if read
    (package / "link.yaml").symlink_to(tmp_path / "outside.yaml")
    (package / "linked").symlink_to(tmp_path, target_is_directory=True)
    manifest = package / "policy.yaml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.replace("  - invariants.yaml\n", f"  - invariants.yaml\n  - {name}\n"), encoding="utf-8")
    line = text[: text.index("  - invariants.yaml")].count("\n") + 2
    with pytest.raises(PolicyError) as caught:
        load_policy(package)
    found = _only(caught.value)
    assert found.code == "include-outside-package" and found.message == f"included file `{name}` {reason}"
    assert found.span is not None and (found.span.file, found.span.line, found.span.column) == (str(manifest), line, 5)
    status, err = _cli(capsys, "check", str(package), "--no-search")
    assert status != 0 and f"policy.yaml:{line}:5: error[include-outside-package]" in err


def test_an_include_through_a_link_inside_the_package_is_read(tmp_path: Path) -> None:
    package = _package(tmp_path)
    (package / "parts").mkdir()
    (package / "scores.yaml").rename(package / "parts" / "scores.yaml")
    (package / "scores.yaml").symlink_to(package / "parts" / "scores.yaml")
    assert load_policy(package).evaluate(EXAMPLES / "stage1.yaml").outcomes()


# --- 5. the HTTP body is strict JSON -------------------------------------------------------------


def _post(store: PolicyStore, body: bytes) -> httpx.Response:
    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(store))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/v1/evaluate", content=body, headers={"content-type": "application/json"})

    return asyncio.run(send())


@pytest.mark.parametrize(
    ("body", "code", "path"),
    [
        (b'{"context": {"stage": "stage1",\n "stage": "x"}}', "duplicate-key", "body:2:2"),
        (b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", "invalid-json", "body:1:506"),
        (b'{"context": {"slots_planned": ' + b"7" * 4301 + b"}}", "invalid-value", "body:1:31"),
        (b'{"context": {"programme": "\xff"}}', "invalid-encoding", "body:1:28"),
    ],
    ids=["duplicate", "deep", "huge-int", "bad-utf8"],
)
def test_a_hostile_body_is_422_with_a_located_error(body: bytes, code: str, path: str) -> None:
    with PolicyStore(RULES) as store:
        response = _post(store, body)
    assert response.status_code == 422, response.text
    assert [(e["code"], e["path"]) for e in response.json()["errors"]] == [(code, path)]
