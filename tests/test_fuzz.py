"""Engine properties over generated and fuzzed inputs: round trips, no run-time surprises, no crashes."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine import EvaluationError, FactError, Policy, PolicyError, load_policy
from engine.cli import main
from engine.source.loader import load_sources
from engine.source.yamlsource import dump_yaml, parse_yaml
from engine.verification.search import hints_of
from engine.verification.search_cohorts import cohort_data
from tests.conftest import EXAMPLES, ROOT, RULES

GRANTS = ROOT / "tests" / "fixtures" / "grants"


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging) if the block runs longer than `seconds`."""

    def stop(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --- YAML dump → load round trip -------------------------------------------------------------


def _dumped(package: Path, target: Path) -> None:
    source = load_sources(package)
    shutil.copytree(package, target)
    for file in source.files:
        data = file.sections.model_dump(mode="python", by_alias=True, exclude_unset=True)
        (target / file.path.relative_to(source.root)).write_text(dump_yaml(data), encoding="utf-8")


@pytest.mark.parametrize("package", [RULES, GRANTS], ids=["sovereign_ai", "grants"])
def test_a_rule_package_dumped_to_yaml_loads_back_to_the_same_package(package: Path, tmp_path: Path) -> None:
    """Dumping every file of a package to YAML and loading it again gives equal file models and equal decisions."""
    _dumped(package, tmp_path / "copy")
    before, after = load_sources(package), load_sources(tmp_path / "copy")
    assert [f.sections for f in after.files] == [f.sections for f in before.files]
    if package == RULES:
        assert (
            load_policy(tmp_path / "copy").evaluate(EXAMPLES / "stage1.yaml").outcomes()
            == load_policy(package).evaluate(EXAMPLES / "stage1.yaml").outcomes()
        )


_NUMBERS = st.sampled_from(
    ["income", "age", "len(documents)", "count(d.verified for d in documents)", "income_cap", "minimum_age", "grants"]
)
_CONSTANTS = st.one_of(
    st.integers(-5, 50000).map(str), st.floats(-10, 50000, allow_nan=False).map(lambda v: repr(round(v, 2)))
)


def _numeric() -> st.SearchStrategy[str]:
    leaf = st.one_of(_NUMBERS, _CONSTANTS)
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(st.sampled_from(["min", "max"]), inner, inner).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
            inner.map(lambda x: f"abs({x})"),
        ),
        max_leaves=4,
    )


def _condition(rules: list[str]) -> st.SearchStrategy[str]:
    compare = st.tuples(_numeric(), st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), _numeric()).map(
        lambda t: f"{t[0]} {t[1]} {t[2]}"
    )
    facts = st.sampled_from(
        [
            'region == "north"',
            "all(d.verified for d in documents)",
            'any(d.kind == "tax_return" for d in documents)',
            "income is None",
            "age is not None",
            *rules,
        ]
    )
    leaf = st.one_of(compare, facts)
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            inner.map(lambda x: f"not ({x})"),
        ),
        max_leaves=4,
    )


@st.composite
def grant_packages(draw: st.DrawFn) -> dict[str, Any]:
    """A small rule package over the grants fact model: parameters, values, chained rules, a stage."""
    parameters = {
        "income_cap": {
            "title": "cap",
            "reference": "art. 2",
            "values": {"2026-01-01": draw(st.integers(0, 50000)), "2026-07-01": draw(st.integers(0, 50000))},
        },
        "minimum_age": {"title": "age", "reference": "art. 3", "value": draw(st.integers(0, 99))},
        "grants": {"title": "grants", "reference": "art. 5", "value": draw(st.integers(0, 4))},
    }
    rules: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 4))):
        rules.append(
            {
                "id": f"r{i}",
                "title": f"rule {i}",
                "reference": "art. 9",
                "when": draw(_condition([r["id"] for r in rules])),
            }
        )
    last = rules[-1]["id"]
    stage = {
        "id": "award",
        "title": "Award",
        "reference": "art. 5",
        "pool": last,
        "rank_by": [{"key": draw(_numeric())}],
        "slots": "grants",
        "fills_slot": "granted",
        "outcomes": [{"outcome": "refused", "when": f"not {last}"}, {"outcome": "granted", "when": True}],
    }
    facts = {
        "subject": "grants_facts:Applicant",
        "cohort": "grants_facts:Batch",
        "subjects_field": "applicants",
        "context_field": "context",
        "stage_field": "stage",
        "date_field": "date",
    }
    return {
        "policy": "generated",
        "version": "1",
        "title": "generated",
        "facts": facts,
        "parameters": parameters,
        "rules": rules,
        "stages": [stage],
    }


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("generated")
    shutil.copy(GRANTS / "grants_facts.py", folder / "grants_facts.py")
    return folder


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(package=grant_packages())
def test_a_generated_package_dumped_and_loaded_is_the_same_file_model(workspace: Path, package: dict[str, Any]) -> None:
    """For every generated package, loading its YAML dump gives exactly the file model of the data."""
    (workspace / "policy.yaml").write_text(dump_yaml(package), encoding="utf-8")
    from engine.source.model import ManifestFile

    assert load_sources(workspace).manifest == ManifestFile.model_validate(package)


# --- checked rules never raise at evaluation -------------------------------------------------


def _decide_all(policy: Policy, stage: str, as_of: Any, data: dict[str, Any]) -> None:
    try:
        result = policy.evaluate(data, as_of=as_of, stage=stage)
    except (EvaluationError, FactError):
        return  # refused with a message, never a crash
    for decision in result.decisions.values():
        decision.explain().to_text()


@pytest.mark.parametrize("package", [RULES, GRANTS], ids=["sovereign_ai", "grants"])
def test_checked_rules_never_raise_on_generated_cohorts(package: Path) -> None:
    """Every cohort drawn from a checked package's fact model is decided and explained, or refused
    with an engine error."""
    policy = load_policy(package)
    cohorts = cohort_data(policy.ir, hints_of(policy.ir), policy.ir.stages)

    @settings(suppress_health_check=[HealthCheck.too_slow], max_examples=30)
    @given(drawn=cohorts)
    def decide(drawn: tuple[str, Any, dict[str, Any]]) -> None:
        _decide_all(policy, *drawn)

    decide()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], max_examples=30)
@given(package=grant_packages(), data=st.data())
def test_generated_packages_that_pass_check_never_raise_at_evaluation(
    workspace: Path, package: dict[str, Any], data: st.DataObject
) -> None:
    """A generated package either fails `check` with diagnostics or decides every generated cohort
    without an unexpected exception."""
    (workspace / "policy.yaml").write_text(dump_yaml(package), encoding="utf-8")
    try:
        policy = load_policy(workspace)
    except PolicyError as error:
        assert error.diagnostics and all(d.span is not None for d in error.diagnostics)
        return
    for _ in range(3):
        _decide_all(policy, *data.draw(cohort_data(policy.ir, hints_of(policy.ir), policy.ir.stages)))


# --- fuzzed rule files and fact files give diagnostics, never a traceback or a hang ---------

_YAML_BITS = st.sampled_from(
    [
        ":",
        "-",
        " ",
        "\n",
        "  ",
        "[",
        "]",
        "{",
        "}",
        "'",
        '"',
        "&a",
        "*a",
        "#",
        "!!python/object",
        "true",
        "null",
        "1e9",
        "?",
        "|",
        ">",
        "when:",
        "id:",
        "\t",
        "é",
        "%",
    ]
)


@st.composite
def fuzzed_text(draw: st.DrawFn, original: str) -> str:
    """`original` with a few slices deleted, duplicated or replaced by YAML-ish debris."""
    text = original
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 40)))
        edit = draw(st.sampled_from(["delete", "insert", "duplicate"]))
        piece = (
            "".join(draw(st.lists(_YAML_BITS, min_size=1, max_size=4)))
            if edit == "insert"
            else text[start:end]
            if edit == "duplicate"
            else ""
        )
        text = text[:start] + piece + text[end if edit == "delete" else start :]
    return text


_RULE_FILES = sorted(p.name for p in RULES.glob("*.yaml"))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], max_examples=40)
@given(name=st.sampled_from(_RULE_FILES), data=st.data())
def test_a_fuzzed_rule_file_gives_diagnostics_never_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, name: str, data: st.DataObject
) -> None:
    """`policy check` on a package with one randomly damaged file passes if the package loads, and
    otherwise exits 1 or 2 with diagnostics that each name file:line:col; it never prints an internal
    error or a traceback, and finishes in bounded time."""
    package = tmp_path_factory.mktemp("fuzz") / "pkg"
    shutil.copytree(RULES, package, ignore=shutil.ignore_patterns("tests"))
    (package / name).write_text(data.draw(fuzzed_text((RULES / name).read_text(encoding="utf-8"))), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with time_limit(20), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            load_policy(package)
            loads = True
        except PolicyError as error:
            loads = False
            assert error.diagnostics and all(d.span is not None for d in error.diagnostics), error
        code = main(["check", str(package), "--no-search"])
    shown = out.getvalue() + err.getvalue()
    assert "internal error" not in shown and "Traceback" not in shown, shown
    event("rule file loads" if loads else "rule file refused")
    if loads:
        assert code == 0, shown
    else:
        assert code in (1, 2)
        assert _ERROR_LINE.search(err.getvalue()), shown


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], max_examples=40)
@given(data=st.data())
def test_a_fuzzed_fact_file_gives_diagnostics_never_a_traceback(
    policy: Policy, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Evaluating a randomly damaged fact file decides it or reports diagnostics that each name
    file:line:col; no other exception escapes, and `policy evaluate` on it prints no internal error
    or traceback."""
    path = tmp_path_factory.mktemp("facts") / "cohort.yaml"
    path.write_text(data.draw(fuzzed_text((EXAMPLES / "stage1.yaml").read_text(encoding="utf-8"))), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with time_limit(20):
        try:
            policy.evaluate(path)
            event("fact file decided")
        except FactError as error:
            event("fact file refused")
            assert error.diagnostics and all(d.span is not None for d in error.diagnostics)
        except EvaluationError:
            event("fact file not evaluable")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["evaluate", str(RULES), str(path)])
    shown = out.getvalue() + err.getvalue()
    assert "internal error" not in shown and "Traceback" not in shown, shown
    assert code in (0, 1, 2)


# `file:line:col: error[code]: message`, as every located diagnostic is shown
_ERROR_LINE = re.compile(r"^\S[^\n]*:\d+:\d+: error\[[a-z0-9-]+\]: ", re.MULTILINE)

_NOT_A_MAPPING = ["- a\n- b\n", "just text\n", "42\n", "null\n", "", "[1, 2]\n", "---\na: 1\n---\nb: 2\n"]


@pytest.mark.parametrize("text", _NOT_A_MAPPING, ids=range(len(_NOT_A_MAPPING)))
@pytest.mark.parametrize("name", ["policy.yaml", "stage1.yaml"])
def test_a_rule_file_that_is_not_a_mapping_gets_a_located_diagnostic(
    text: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = tmp_path / "pkg"
    shutil.copytree(RULES, package, ignore=shutil.ignore_patterns("tests"))
    (package / name).write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as raised:
        load_policy(package)
    assert raised.value.diagnostics and all(d.span is not None for d in raised.value.diagnostics)
    assert main(["check", str(package), "--no-search"]) in (1, 2)
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err
    assert _ERROR_LINE.search(err), err


@pytest.mark.parametrize("text", _NOT_A_MAPPING, ids=range(len(_NOT_A_MAPPING)))
def test_a_fact_file_that_is_not_a_mapping_gets_a_located_diagnostic(
    policy: Policy, text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cohort.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FactError) as raised:
        policy.evaluate(path)
    assert raised.value.diagnostics and all(d.span is not None for d in raised.value.diagnostics)
    assert main(["evaluate", str(RULES), str(path)]) in (1, 2)
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err
    assert _ERROR_LINE.search(err), err


_JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["context", "consortia", "id", "scores", "model", "x"]), inner, max_size=3),
    ),
    max_leaves=10,
)


@given(data=_JSONISH)
def test_arbitrary_fact_data_is_validated_never_crashes(policy: Policy, data: Any) -> None:
    """Any JSON-like data given as facts is either a valid cohort or a FactError naming field paths."""
    try:
        policy.evaluate(data if isinstance(data, dict) else {"consortia": data})
    except (FactError, EvaluationError):
        pass


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &a [*a]\n", "an alias refers to the node that contains it"),
        (
            "a: &a [1,2,3,4,5,6,7,8,9]\n"
            + "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdef", "bcdefg", strict=True)),
            "aliases expand the document beyond",
        ),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "invalid YAML"),
    ],
    ids=["alias-to-itself", "alias-bomb", "deep-nesting"],
)
def test_hostile_yaml_is_refused_quickly_with_a_diagnostic(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "facts.yaml"
    path.write_text(text, encoding="utf-8")
    with time_limit(15):
        assert message in str(parse_yaml(text, "facts.yaml").diagnostics[0].message)
        assert main(["evaluate", str(RULES), str(path)]) == 2
    assert "Traceback" not in capsys.readouterr().err
