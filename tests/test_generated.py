"""The generated evaluator (default backend `generated`): the same answers as the reference closures
(`python`) and the durable backend, names that cannot collide, only generated text executed, and
`policy compile`."""

from __future__ import annotations

import datetime as dt
import math
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import EvaluationError, Policy, PolicyError, Result, load_policy
from engine.cli.main import main
from engine.evaluation import generated
from engine.evaluation.compiler import Missing
from engine.evaluation.uncertain import PLACES
from tests.conftest import BENEFIT, GPU_HOURS, RULES
from tests.strategies import benefit_claims, cohorts, gpu_cohorts, ranked_cohorts
from tests.test_soundness import BATCH, EXPRESSIONS, _with_rule, _with_value

ROOT = Path(__file__).parent.parent


def _backends(path: Path) -> dict[str, Policy]:
    found = {name: load_policy(path, backend=name) for name in ("generated", "python")}
    try:
        import durable  # noqa: F401
    except ImportError:
        return found
    found["durable"] = load_policy(path, backend="durable")
    return found


@pytest.fixture(scope="module")
def sovereign() -> dict[str, Policy]:
    return _backends(RULES)


@pytest.fixture(scope="module")
def gpu() -> dict[str, Policy]:
    return _backends(GPU_HOURS)


@pytest.fixture(scope="module")
def benefit() -> dict[str, Policy]:
    return _backends(BENEFIT)


def _view(result: Result) -> dict[str, Any]:
    """Everything a decision says, its trace included, and the stage summary."""
    decisions = {
        i: (d.outcome, d.row, d.missing, d.reasons, dict(d.trace), d.placement, d.grants, d.allocation, d.possible)
        for i, d in result.decisions.items()
    }
    return {"decisions": decisions, "summary": result.summary}


def _agree(policies: dict[str, Policy], cohort: Any, **options: Any) -> None:
    results = {name: policy.evaluate(cohort, **options) for name, policy in policies.items()}
    reference = _view(results.pop("python"))
    for name, result in results.items():
        assert _view(result) == reference, name
    assert results["generated"].backend == "generated"


def test_the_default_backend_is_the_generated_one() -> None:
    """`load_policy` without a backend evaluates with the generated functions; `python` stays the reference."""
    policy = load_policy(RULES)
    assert policy.backend_name == "generated"
    assert policy.evaluate(ROOT / "examples" / "stage1.yaml").backend == "generated"
    assert load_policy(RULES, backend="python").evaluate(ROOT / "examples" / "stage1.yaml").backend == "python"


@given(cohort=cohorts())
def test_generated_backend_agrees_with_the_reference_on_generated_cohorts(
    sovereign: dict[str, Policy], cohort: dict[str, Any]
) -> None:
    """On every generated cohort (missing facts included), every backend gives the same decisions, reasons,
    traces, places and summary as the reference closures."""
    _agree(sovereign, cohort)


@given(cohort=st.one_of(ranked_cohorts("stage1"), ranked_cohorts("additional_call")))
def test_generated_backend_agrees_on_ties_places_and_unknown_ranks(
    sovereign: dict[str, Policy], cohort: dict[str, Any]
) -> None:
    """On cohorts built to tie, fill the places and leave ranks open, every backend agrees with the reference."""
    _agree(sovereign, cohort)


@given(cohort=cohorts(), trace=st.booleans())
def test_generated_backend_agrees_with_and_without_the_trace(
    sovereign: dict[str, Policy], cohort: dict[str, Any], trace: bool
) -> None:
    """With or without the trace, the generated backend gives the reference's decisions and reasons."""
    generated_result = sovereign["generated"].evaluate(cohort, trace=trace)
    reference = sovereign["python"].evaluate(cohort, trace=trace)
    assert _view(generated_result) == _view(reference)


@given(cohort=gpu_cohorts())
def test_generated_backend_agrees_on_capacity_and_tracks(gpu: dict[str, Policy], cohort: dict[str, Any]) -> None:
    """On the GPU-hour call (capacity, reserved tracks, `stage.*` in rules and grants) every backend agrees."""
    _agree(gpu, cohort)


@given(cohort=benefit_claims())
def test_generated_backend_agrees_on_tables_and_scales(benefit: dict[str, Policy], cohort: dict[str, Any]) -> None:
    """On the household benefit (table and scale parameters, rows missing) every backend agrees."""
    _agree(benefit, cohort)


@settings(max_examples=30)
@given(cohort=cohorts())
def test_generated_backend_agrees_on_one_subject_outside_a_cohort(
    sovereign: dict[str, Policy], cohort: dict[str, Any]
) -> None:
    """Deciding one subject alone (every definition and the rows at once) agrees with the reference."""
    subject = cohort["consortia"][0]
    stage, date = cohort["context"]["stage"], cohort["context"]["date"]
    found = {
        name: policy.decide(subject, as_of=date, stage=stage, context=cohort["context"])
        for name, policy in sovereign.items()
    }
    reference = found.pop("python")
    for decision in found.values():
        assert (decision.outcome, decision.reasons, dict(decision.trace), decision.missing) == (
            reference.outcome,
            reference.reasons,
            dict(reference.trace),
            reference.missing,
        )


@pytest.mark.parametrize("example", ["stage1.yaml", "stage1.json", "stage2.yaml", "wildcard.yaml", "final.yaml"])
def test_generated_backend_agrees_on_every_example(sovereign: dict[str, Policy], example: str) -> None:
    """Each example cohort of every stage gives the reference's decisions, reasons and traces."""
    _agree(sovereign, ROOT / "examples" / example)


def test_generated_backend_agrees_on_the_gpu_call_example(gpu: dict[str, Policy]) -> None:
    """The GPU-hour call's example gives the reference's decisions, allocation and summary."""
    _agree(gpu, ROOT / "examples" / "gpu_call.yaml")


def test_ordinary_facts_never_fall_back_to_the_closures(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every fact stage 1 reads present, the generated code settles every definition, pool and row
    itself (no closure is called); another stage's definition read from the trace later (the panel's,
    missing for stage-1 teams) is settled too, as the reference settles it."""
    settled: list[str] = []
    policy = load_policy(RULES)
    closures = {id(fn): name for name, fn in policy.compiled.defs.items()}
    real = generated._HELPERS["_settle"]

    def spy(fn: Any, scope: Any) -> Any:
        settled.append(closures.get(id(fn), "a pool, track or row"))
        return real(fn, scope)

    monkeypatch.setitem(generated._HELPERS, "_settle", spy)
    stage1 = ROOT / "examples" / "stage1.yaml"
    result, reference = policy.evaluate(stage1), load_policy(RULES, backend="python").evaluate(stage1)
    assert result.outcomes() == reference.outcomes()
    assert settled == []
    for decision in result.decisions.values():
        assert dict(decision.trace) == dict(reference.decisions[decision.id].trace)


def test_every_stage_and_every_outcome_is_decided_without_the_closures_on_complete_facts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shipped examples of the later stages and 300 generated consortia with every fact given (each
    stage-1 rule failing for some) are decided by the generated functions alone. A generated function that
    raised (a name it failed to bind, a test that does not hold) would still give the closures' answers, and
    no comparison of backends would see it."""
    from tests.benchmarks import peers

    settled: list[str] = []
    real = generated._HELPERS["_settle"]
    monkeypatch.setitem(generated._HELPERS, "_settle", lambda fn, scope: settled.append(repr(fn)) or real(fn, scope))
    policy = load_policy(RULES)
    cohorts = [ROOT / "examples" / f"{name}.yaml" for name in ("stage2", "final", "wildcard")]
    outcomes = {o for cohort in [*cohorts, peers.generated(300)] for o in policy.evaluate(cohort).outcomes().values()}
    assert settled == []
    assert outcomes >= {"ineligible", "disqualified", "eliminated", "advanced"}


# --- names that look like the generated code's own -----------------------------------------------

# the records every schema below ends with: a stage and date for the cohort, and its subjects
_CALL_AND_COHORT = """\
  Call:
    fields:
      stage: text
      date: date
  Cohort:
    fields:
      context: Call
      subjects: {type: Subject, list: true}
"""


def _manifest(policy: str, title: str) -> str:
    """The head of a test package's manifest: its name and title, and the facts of a schema ending with
    `_CALL_AND_COHORT` (subjects `Subject`, each cohort a `Call` context and its subjects)."""
    return textwrap.dedent(
        f"""\
        policy: {policy}
        version: "1"
        title: {title}
        facts:
          schema: facts.yaml
          subject: Subject
          cohort: Cohort
          subjects_field: subjects
          context_field: context
          stage_field: stage
          date_field: date
        """
    )


_CLASHING_FACTS = (
    textwrap.dedent(
        """\
    description: facts named like the generated code's locals and helpers
    records:
      Subject:
        fields:
          id: {type: text, fixed: true}
          scope: {type: number, optional: true}
          k: {type: number, optional: true}
          p: {type: number, optional: true}
          s: {type: boolean, optional: true}
          x: {type: text, optional: true}
          t: {type: number, optional: true}
          missing: {type: number, optional: true}
          settle: {type: number, optional: true}
    """
    )
    + _CALL_AND_COHORT
)

_CLASHING_POLICY = _manifest("clash", "Names like the generated code's") + textwrap.dedent(
    """\
    parameters:
      known:
        title: a parameter named like the scope's record
        reference: test
        value: 10
      run:
        title: a parameter named like the generated function
        reference: test
        value: 2
    values:
      stop:
        title: a value named like the helper that stops the fast path
        expr: scope + k * run
      m:
        title: a value named like a local
        expr: stop - known if s else p
    rules:
      - id: kept
        title: a rule named like a namespace entry
        reference: test
        when: m > t and x == "x" and missing is None or settle >= 1
      - id: g1
        title: a rule named like a constant of the generated code
        reference: test
        when: kept or scope > 100
    stages:
      - id: only
        title: The only stage
        reference: test
        pool: g1
        rank_by:
          - {key: stop, title: stop}
        slots: run
        fills_slot: yes_
        outcomes:
          - outcome: no_
            when: not g1
          - outcome: yes_
            when: stage.rank <= stage.slots
          - outcome: no_
            when: true
    """
)


def _package(tmp_path_factory: pytest.TempPathFactory, name: str, facts: str, policy: str) -> Path:
    """A package folder of a fact schema (`facts.yaml`) and a manifest (`policy.yaml`)."""
    package = tmp_path_factory.mktemp(name)
    (package / "facts.yaml").write_text(facts, encoding="utf-8")
    (package / "policy.yaml").write_text(policy, encoding="utf-8")
    return package


@pytest.fixture(scope="module")
def clash(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _package(tmp_path_factory, "clash", _CLASHING_FACTS, _CLASHING_POLICY)


_CLASH_SUBJECTS = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "scope": st.sampled_from([0.0, 1.5, 99.0, 200.0]),
            "k": st.sampled_from([0.0, 0.1, 3.0]),
            "p": st.sampled_from([1.0, 7.0]),
            "s": st.booleans(),
            "x": st.sampled_from(["x", "y"]),
            "t": st.sampled_from([0.0, 5.0]),
            "missing": st.just(1.0),
            "settle": st.sampled_from([0.0, 2.0]),
        },
    ),
    min_size=1,
    max_size=5,
)


@given(subjects=_CLASH_SUBJECTS)
def test_names_like_the_generated_codes_own_cannot_collide(clash: Path, subjects: list[dict[str, Any]]) -> None:
    """Facts, values, rules and parameters named like the generated code's locals and helpers without their
    `_` (`scope`, `k`, `p`, `s`, `x`, `t`, `known`, `m`, `run`, `stop`, `missing`, `settle`, `g1`) give the
    reference's answers."""
    cohort = {
        "context": {"stage": "only", "date": "2026-01-01"},
        "subjects": [dict(s, id=f"s{i}") for i, s in enumerate(subjects)],
    }
    policies = {name: load_policy(clash, backend=name) for name in ("generated", "python")}
    results = {name: policy.evaluate(cohort) for name, policy in policies.items()}
    assert _view(results["generated"]) == _view(results["python"])


_ATTRIBUTES = {"rank", "slots"}  # `stage.rank <= stage.slots`: attribute names are the only words of the package


def test_the_generated_namespace_holds_only_helpers_and_the_policys_closures(clash: Path) -> None:
    """Every name a generated function can see starts with `_` (the language refuses such names), and
    the package's names appear in the text only inside string literals and comments, or as attribute names
    (a subject's field, a record's field), which never name a variable."""
    policy = load_policy(clash)
    for program in generated.stage_programs(policy.compiled, "only"):
        namespace = program.run.__globals__
        assert all(name.startswith("_") for name in namespace if name != "__builtins__"), sorted(namespace)
        code = program.run.__code__
        assert all(name.startswith("_") for name in code.co_varnames), code.co_varnames
        identifiers = {n for n in code.co_names if not n.startswith("_")}
        fields = set(policy.ir.schema.subject.model_fields)  # attributes of the subject (`_S.k`), never variables
        allowed = {"known", "params", "subject", "context", "stage", "append", "get"} | _ATTRIBUTES | fields
        assert identifiers <= allowed, identifiers


# --- errors are the reference's, located ---------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("scope / (k - k)", "division by zero"),
        ("scope * 1e308 * 10", "does not give a finite number"),
    ],
)
def test_errors_are_the_references_with_their_location(clash: Path, tmp_path: Path, expr: str, message: str) -> None:
    """An error inside generated code is the reference's `EvaluationError`, with the same located message."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "facts.yaml").write_text(_CLASHING_FACTS, encoding="utf-8")
    (package / "policy.yaml").write_text(
        _CLASHING_POLICY.replace("expr: scope + k * run", f"expr: {expr}"), encoding="utf-8"
    )
    cohort = {"context": {"stage": "only", "date": "2026-01-01"}, "subjects": [{"id": "a", "scope": 2.0, "k": 1.0}]}
    messages = []
    for name in ("generated", "python"):
        with pytest.raises(EvaluationError, match=message) as error:
            load_policy(package, backend=name).evaluate(cohort)
        messages.append(str(error.value))
        assert error.value.__context__ is None  # no traceback of the stopped fast path chained to it
    assert messages[0] == messages[1]
    assert "policy.yaml:" in messages[0]


def test_a_missing_fact_is_named_by_its_path(clash: Path) -> None:
    """A definition undetermined for want of a fact names the same path on both backends."""
    cohort = {"context": {"stage": "only", "date": "2026-01-01"}, "subjects": [{"id": "a", "k": 1.0}]}
    traces = [
        dict(load_policy(clash, backend=n).evaluate(cohort).decisions["a"].trace) for n in ("generated", "python")
    ]
    assert traces[0] == traces[1]
    assert traces[0]["stop"] == Missing(frozenset({"scope"}))


# --- `policy compile` ------------------------------------------------------------------------------


def test_policy_compile_prints_the_generated_source(capsys: pytest.CaptureFixture[str]) -> None:
    """`policy compile RULES --stage ID` prints each phase's function, with every definition it settles."""
    assert main(["compile", str(RULES), "--stage", "stage1"]) == 0
    out = capsys.readouterr().out
    assert out.count("def _run(_scope):") == 2
    assert "phase 'pool'" in out and "phase 'rows'" in out
    assert "# value 'total_score':" in out and "# rule 'ranked_within_slots':" in out
    assert "# row 4 (advanced): True" in out and "def _run(_scope):" in out
    compile(out, "<printed>", "exec")  # what it prints is the Python that runs


def test_policy_compile_one_phase_and_an_unknown_stage(capsys: pytest.CaptureFixture[str]) -> None:
    """`--phase rows` prints only the function after the ranking; a stage the package lacks is a usage error."""
    assert main(["compile", str(RULES), "--stage", "stage1", "--phase", "rows"]) == 0
    out = capsys.readouterr().out
    assert out.count("def _run(_scope):") == 1 and "phase 'rows'" in out
    assert main(["compile", str(RULES), "--stage", "nope"]) == 2
    assert "no stage `nope`" in capsys.readouterr().err


def test_reasons_are_written_when_first_read() -> None:
    """A decision's reasons are built on first use and are then the same object each time."""
    result = load_policy(RULES).evaluate(ROOT / "examples" / "stage1.yaml", as_of=dt.date(2026, 1, 15))
    decision = next(iter(result.decisions.values()))
    assert "_reasons_kept" in vars(decision) and not isinstance(vars(decision)["_reasons_kept"], tuple)
    reasons = decision.reasons
    assert isinstance(reasons, tuple) and reasons and decision.reasons is reasons


@given(
    x=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(-3000, 3000),
        st.integers(-(10**13), 10**13).map(lambda n: (n + 0.5) / 1e10),
        st.integers(-(10**9), 10**9).map(lambda n: n / 100 * 0.3),
        st.integers(-(2**55), 2**55).map(lambda n: n / 1e10),  # around the bound 2**44 and the magic 2**52
    )
)
def test_the_inline_rounding_is_pythons_round(x: float) -> None:
    """The generated code's rounding of an arithmetic result is exactly `round(x, PLACES)`: the same float,
    the same sign of zero, nan for nan."""
    namespace = dict(generated._HELPERS)
    writer = generated._Writer.__new__(generated._Writer)
    writer.lines, writer.depth, writer.count, writer.stops = [], 1, 0, ["break"]
    writer._arith("_x")
    source = (
        "def _f(_x):\n    while True:\n"
        + "\n".join("    " + line for line in writer.lines)
        + "\n        break\n    return _x"
    )
    exec(compile(source, "<rounding>", "exec"), namespace)
    got, expected = namespace["_f"](x), round(x, PLACES)
    if expected != expected:
        assert got != got
    else:
        assert (got, math.copysign(1, got)) == (expected, math.copysign(1, expected))


def test_decision_and_placement_take_their_fields_as_the_dataclass_would() -> None:
    """The written-out `__init__` of `Decision`, `Placement`, `Tie`, `StageSummary` and `Result` takes exactly
    their fields, in order, with their defaults, and keeps each value given."""
    import dataclasses
    import inspect

    from engine.evaluation.result import Decision, Placement, Result, StageSummary, Tie

    lazy = {(Placement, "ties"): ()}  # a field computed on first read (`_Lazy`): its default is the __init__'s
    for cls in (Decision, Placement, Tie, StageSummary, Result):
        fields = dataclasses.fields(cls)
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
        assert [p.name for p in parameters] == [f.name for f in fields]
        assert [p.default for p in parameters] == [
            lazy.get((cls, f.name), inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default)
            for f in fields
        ]
        values = {f.name: object() for f in fields}
        made = cls(**values)
        assert all(getattr(made, name) is value for name, value in values.items())
    assert Placement(in_pool=True, rank=1, pool_size=1, slots=1).ties == ()


_KEY = st.one_of(st.integers(0, 3), st.sampled_from([0.5, 1.0, 2.0]), st.booleans())


@given(
    keys=st.lists(st.tuples(_KEY, _KEY, _KEY), min_size=0, max_size=12),
    descending=st.tuples(st.booleans(), st.booleans(), st.booleans()),
)
def test_the_pool_is_ordered_as_comparing_key_by_key_then_by_id(
    keys: list[tuple[Any, ...]], descending: tuple[bool, ...]
) -> None:
    """The ranking order is that of comparing two subjects key by key (the first key that differs, in its
    direction), then by id: ties on every key, equal numbers of different types (1, 1.0, True) included."""
    import functools

    from engine.evaluation.stages import Entry, _ordered

    def compare(a: Entry, b: Entry) -> int:
        for desc, x, y in zip(descending, a.keys, b.keys, strict=True):  # type: ignore[arg-type]
            if x != y:
                return -1 if (x > y if desc else x < y) else 1
        return (a.id > b.id) - (a.id < b.id)

    pool = [Entry(f"s{(i * 7) % 13:02d}", True, k) for i, k in enumerate(keys)]  # ids not in input order
    expected = sorted(pool, key=functools.cmp_to_key(compare))
    assert [e.id for e in _ordered(pool, descending)] == [e.id for e in expected]


def _batch(variant: int) -> dict[str, Any]:
    """The soundness tests' batch, with facts left out or set to edge values by `variant`."""
    batch: dict[str, Any] = {"context": dict(BATCH["context"]), "applicants": [dict(a) for a in BATCH["applicants"]]}
    if variant == 1:
        batch["applicants"][0].pop("income")
    elif variant == 2:
        batch["applicants"][0]["documents"] = [{"kind": "identity"}, {"kind": "tax_return", "verified": False}]
    elif variant == 3:
        batch["applicants"][1]["income"] = 0.0
    return batch


def _outcome(policy: Policy, batch: dict[str, Any]) -> Any:
    try:
        return _view(policy.evaluate(batch))
    except EvaluationError as error:
        return ("error", str(error))


@settings(max_examples=80, deadline=None)
@given(drawn=EXPRESSIONS, as_rule=st.booleans(), variant=st.integers(0, 3))
def test_random_checked_expressions_give_the_references_values_and_errors(
    tmp_path_factory: pytest.TempPathFactory, drawn: str, as_rule: bool, variant: int
) -> None:
    """For any expression the checker accepts (arithmetic, comparisons, and/or/not, lists, calls,
    comprehensions, conditionals over facts that may be missing, zero or huge), as a rule or a value, the
    generated backend gives the reference's decisions, reasons and traces, or the same located error."""
    package = (_with_rule if as_rule else _with_value)(tmp_path_factory.mktemp("expr"), drawn)
    try:
        policies = {name: load_policy(package, backend=name) for name in ("generated", "python")}
    except PolicyError:
        return
    batch = _batch(variant)
    assert _outcome(policies["generated"], batch) == _outcome(policies["python"], batch), drawn


# --- fact paths read once, what an `is None` test tells, parameters read once per run -------------

_PATHS_FACTS = (
    textwrap.dedent(
        """\
    description: nested optional records in a list, for the generated code's shared path reads
    records:
      Licence:
        fields:
          restricted: {type: boolean, optional: true}
      Upstream:
        fields:
          licence: {type: Licence, optional: true}
          country: {type: text, optional: true}
      Part:
        fields:
          upstream: {type: Upstream, optional: true}
          kind: {type: text, optional: true}
      Subject:
        fields:
          id: {type: text, fixed: true}
          parts: {type: Part, list: true, optional: true}
          main: {type: Part, optional: true}
    """
    )
    + _CALL_AND_COHORT
)

_PATHS_POLICY = _manifest("paths", "Paths read more than once") + textwrap.dedent(
    """\
    parameters:
      home:
        title: a parameter in force only from June, read inside item loops
        reference: test
        values:
          2026-06-01: KR
    values:
      restricted_parts:
        title: every step of the path tested, then read
        expr: >-
          [p for p in parts if p.upstream is not None and p.upstream.licence is not None
          and p.upstream.licence.restricted]
      foreign_parts:
        title: a parameter read in an item loop
        expr: count(p.upstream.country != home for p in parts if p.upstream is not None)
      unlicensed:
        title: a path tested whole, its middle step missing or not
        expr: count(p.upstream.licence is None for p in parts)
      main_licence:
        title: a conditional on a path's middle step
        expr: >-
          "none" if main is None or main.upstream is None or main.upstream.licence is None
          else ("restricted" if main.upstream.licence.restricted else "open")
    rules:
      - id: clean
        title: tests joined by or, then negated
        reference: test
        when: >-
          not any(p.upstream.licence.restricted for p in parts if not (p.upstream is None or
          p.upstream.licence is None)) and all(p.kind != home or p.upstream is None for p in parts)
      - id: kept
        title: the pool
        reference: test
        when: len(restricted_parts) == 0 or main.upstream is None or main.upstream.licence.restricted
    stages:
      - id: only
        title: The only stage
        reference: test
        pool: kept
        rank_by:
          - {key: foreign_parts, title: foreign parts}
          - {key: unlicensed, title: parts without a licence}
        slots: 2
        fills_slot: yes_
        outcomes:
          - outcome: no_
            when: not clean or main_licence == "restricted"
          - outcome: yes_
            when: stage.rank <= stage.slots
          - outcome: no_
            when: true
    """
)


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _package(tmp_path_factory, "paths", _PATHS_FACTS, _PATHS_POLICY)


_LICENCE = st.fixed_dictionaries({}, optional={"restricted": st.booleans()})
_UPSTREAM = st.fixed_dictionaries({}, optional={"licence": _LICENCE, "country": st.sampled_from(["KR", "US"])})
_PART = st.fixed_dictionaries({}, optional={"upstream": _UPSTREAM, "kind": st.sampled_from(["KR", "code"])})
_PATH_SUBJECTS = st.lists(
    st.fixed_dictionaries({}, optional={"parts": st.lists(_PART, max_size=3), "main": _PART}), min_size=1, max_size=4
)


@given(subjects=_PATH_SUBJECTS, date=st.sampled_from(["2026-01-01", "2026-07-01"]))
def test_paths_read_once_and_parameters_read_once_give_the_references_answers(
    paths: Path, subjects: list[dict[str, Any]], date: str
) -> None:
    """Fact paths tested with `is None` and then read (each step read once, its middle step missing or not),
    and a parameter read inside item loops (in force, or not yet: the same located error), give the
    reference's decisions, reasons and traces."""
    cohort = {
        "context": {"stage": "only", "date": date},
        "subjects": [dict(s, id=f"s{i}") for i, s in enumerate(subjects)],
    }
    policies = {name: load_policy(paths, backend=name) for name in ("generated", "python")}
    assert _outcome(policies["generated"], cohort) == _outcome(policies["python"], cohort)


def test_a_path_is_read_once_and_a_loops_parameter_once_per_run(paths: Path) -> None:
    """The generated text reads `p.upstream` once per item where a test and a use both need it, and a
    parameter used in an item loop once, before the definitions (a missing one is `_Stop`, left to the closure)."""
    policy = load_policy(paths)
    source = policy._backend.program(policy.compiled, policy.compiled.stages["only"], ["restricted_parts"], "pool")
    text = "".join(line for line in source.source.split("# pool:")[0].splitlines() if "#" not in line)
    assert text.count(".upstream") == 1 and text.count(".licence") == 1, source.source  # tested, then used
    assert "is None: _s" not in text.split(".restricted")[0], source.source  # known present: not checked again
    assert "_P.get('home', _Stop)" not in text
    both = policy._backend.program(policy.compiled, policy.compiled.stages["only"], ["foreign_parts"], "pool").source
    assert both.count("_P.get('home', _Stop)") == 1 and "_P['home']" not in both, both


def test_paths_tested_then_read_never_fall_back(paths: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where every fact read is present or only tested with `is None` (and every subject in the pool, so that
    its rank is known), the shared path reads settle every definition, pool and row without a closure."""
    settled: list[Any] = []
    real = generated._HELPERS["_settle"]

    def spy(fn: Any, scope: Any) -> Any:
        settled.append(fn)
        return real(fn, scope)

    monkeypatch.setitem(generated._HELPERS, "_settle", spy)
    restricted, licensed = {"licence": {"restricted": True}, "country": "US"}, {"licence": {"restricted": False}}
    subjects = [
        {"parts": [{"kind": "KR", "upstream": restricted}, {"kind": "code"}], "main": {"upstream": restricted}},
        {"parts": [{"kind": "KR"}], "main": {"upstream": licensed}},
        {"parts": [{"kind": "code", "upstream": dict(licensed, country="KR")}], "main": {"kind": "KR"}},
        {"parts": [], "main": {"upstream": {"licence": {"restricted": True}}}},
    ]
    cohort = {
        "context": {"stage": "only", "date": "2026-07-01"},
        "subjects": [dict(s, id=f"s{i}") for i, s in enumerate(subjects)],
    }
    result, reference = load_policy(paths).evaluate(cohort), load_policy(paths, backend="python").evaluate(cohort)
    assert _view(result) == _view(reference)
    assert settled == []


def test_a_stage_whose_pool_and_rows_read_facts_only_runs_each_phase_of_its_own(tmp_path: Path) -> None:
    """A stage whose pool, ranking and rows read no value or rule settles nothing before or after
    its ranking (both phases are the same empty list of names): the generated backend still runs
    the pool's function for the pool and the rows' function for the rows, as the reference does."""
    from tests.test_logic_table import BASE_RULES, SUBJECT, _package

    package = _package(tmp_path / "pkg", dict(BASE_RULES), {})
    policy_file = package / "policy.yaml"
    text = policy_file.read_text(encoding="utf-8")
    for old, new in [
        ("    pool: eligible\n", "    pool: age >= 18\n"),
        ("        when: not eligible\n", "        when: age < 18\n"),
        ("        when: not within_grants\n", "        when: stage.rank > 1\n"),
    ]:
        assert old in text
        text = text.replace(old, new, 1)
    policy_file.write_text(text, encoding="utf-8")
    people = [dict(SUBJECT, id="young", age=16), dict(SUBJECT, id="first", age=30, income=100.0)]
    people.append(dict(SUBJECT, id="second", age=40, income=900.0))
    cohort = {"context": {"stage": "award", "date": "2026-03-01"}, "applicants": people}
    generated, python = load_policy(package), load_policy(package, backend="python")
    compiled = generated.compiled.stages["award"]
    assert compiled.phase1 == compiled.phase2 == ()
    got, expected = generated.evaluate(cohort), python.evaluate(cohort)
    assert got.outcomes() == expected.outcomes() == {"young": "refused", "first": "granted", "second": "waiting_list"}


def test_a_temporary_only_tested_by_the_next_line_is_tested_in_place() -> None:
    """A temporary assigned and then only tested by the next line is tested there, as readable as it was;
    one read again, tested at another depth or holding a conditional expression is kept."""
    from engine.evaluation.generated import _tested_in_place

    lines = [
        "    # rule 'r': a",
        "    _1 = _a is not None",
        "    if not _1: _d = False",
        "    _2 = _b == 3",
        "    if not _2: _d = True",
        "    _3 = _c < 1",
        "    if _3: _d = _3",
        "    _4 = _e > 2",
        "        if _4: _d = 1",
        "    _5 = 1 if _f else 2",
        "    if _5: _d = 2",
        "    _7 = _g > 1",  # the next line tests another temporary (`_6` sorts before `_7`): both kept
        "    if _6: _d = _7",
    ]
    given = list(lines)
    _tested_in_place(lines, 1)
    assert lines == [given[0], "    if _a is None: _d = False", "    if not (_b == 3): _d = True", *given[5:]]


def test_a_rule_reading_the_context_is_settled_on_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rule that reads the cohort's context (`context.stage`) is settled by the generated function itself,
    which takes the context from the scope: never left to the reference closures, whose answer would hide a
    name the generated code failed to bind."""
    policy = load_policy(_with_rule(tmp_path, 'age >= minimum_age and context.stage == "award"'))
    stage = policy.compiled.stages["award"]
    pool = policy._backend.program(policy.compiled, stage, stage.phase1, "pool")
    assert "_X = _scope.context" in pool.source and "_X.stage" in pool.source, pool.source

    def refused(*_: Any) -> Any:
        raise AssertionError("the generated function fell back to the reference closures")

    monkeypatch.setitem(pool.run.__globals__, "_settle", refused)  # every fact given: nothing to settle there
    documents = [{"kind": "tax_return", "verified": True}]
    applicants = [
        {"id": "a", "income": 20000.0, "age": 30, "documents": documents},
        {"id": "b", "income": 10000.0, "age": 17, "documents": documents},
    ]
    result = policy.evaluate({"context": BATCH["context"], "applicants": applicants})
    assert result.decisions["a"].trace["adult"] is True and result.decisions["b"].trace["adult"] is False


def test_a_call_or_sign_result_is_checked_finite() -> None:
    """The check the generated code applies to a call's or a sign's result of another class than `float` and
    `int` (a `bool`, say): a finite number passes as it is, one that is not stops the fast path (the
    reference closure then raises the located error)."""
    assert generated._checked(True) is True and generated._checked(2.5) == 2.5
    for value in (math.inf, -math.inf, math.nan):
        with pytest.raises(generated._Stop):
            generated._checked(value)


@pytest.mark.parametrize("backend", ["generated", "python"])
def test_a_loop_variable_named_like_a_fact_is_that_fact_again_after_its_comprehension(
    tmp_path: Path, backend: str
) -> None:
    """`any(age > 20 for age in [10, 30]) and age >= minimum_age`: inside the comprehension `age` is the loop
    variable, after it the applicant's age again, in the reference closures as in the generated code."""
    policy = load_policy(_with_rule(tmp_path, "any(age > 20 for age in [10, 30]) and age >= minimum_age"), backend)
    traced = {id: d.trace["adult"] for id, d in policy.evaluate(BATCH).decisions.items()}
    assert traced == {"a": True, "b": False, "c": Missing(frozenset({"age"}))}


# --- what the writer remembers within a definition, and what it lets go after one -------------------

_BOOKKEEPING_FACTS = (
    textwrap.dedent(
        """\
    description: one optional record and optional numbers, for what the generated code remembers
    records:
      Part:
        fields:
          kind: {type: text, optional: true}
      Subject:
        fields:
          id: {type: text, fixed: true}
          main: {type: Part, optional: true}
          a: {type: number, optional: true}
          b: {type: number, optional: true}
          label: {type: text, optional: true}
    """
    )
    + _CALL_AND_COHORT
)

_BOOKKEEPING_POLICY = _manifest(
    "bookkeeping", "What the generated code remembers within a definition and after one"
) + textwrap.dedent(
    """\
    rules:
      - id: absent_least
        title: an `is None` on a computed value (generated before `labelled`)
        reference: test
        when: min(a, b) is None
      - id: labelled
        title: a plain read, after it
        reference: test
        when: label == 'yes'
      - id: main_kind
        title: a path read in the first operand of an inner `or`, and again after it
        reference: test
        when: (main.kind == 'x' or b is None) and main.kind != 'y'
    stages:
      - id: only
        title: the only stage
        reference: test
        pool: true
        outcomes:
          - outcome: none
            when: absent_least
          - outcome: labelled
            when: labelled
          - outcome: kind
            when: main_kind
          - outcome: other
            when: true
    """
)


@pytest.fixture(scope="module")
def bookkeeping(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _package(tmp_path_factory, "bookkeeping", _BOOKKEEPING_FACTS, _BOOKKEEPING_POLICY)


def test_a_path_read_in_an_inner_ors_first_operand_is_not_read_again_after_it(bookkeeping: Path) -> None:
    """The first operand of `or` always runs: what it read (`main.kind`, checked present) is known after the
    `or` too, so the `and` around it compares the same local instead of reading and checking the path again."""
    policy = load_policy(bookkeeping)
    source = policy._backend.program(policy.compiled, policy.compiled.stages["only"], ["main_kind"], "pool").source
    body = source.split("# rule 'main_kind'")[1].split("# pool:")[0].split("\n", 1)[1]  # its code, not its comment
    assert body.count(".kind") == 1 and body.count("is None: _d") == 2, source  # `main`, then `main.kind`


def test_an_is_none_on_a_computed_value_leaves_the_next_definitions_on_the_fast_path(
    bookkeeping: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside `min(a, b) is None` a missing fact is left to the closures (the test may still decide it); after
    it, a plain read of a missing fact (`label`) is that fact's `Missing` at once, not a closure's work."""
    settled: list[Any] = []
    real = generated._HELPERS["_settle"]
    monkeypatch.setitem(generated._HELPERS, "_settle", lambda fn, scope: settled.append(fn) or real(fn, scope))
    cohort = {
        "context": {"stage": "only", "date": "2026-07-01"},
        "subjects": [
            {"id": "s0", "a": 1.0, "b": 2.0, "main": {"kind": "z"}},
            {"id": "s1", "a": 3.0, "b": 0.5, "main": {"kind": "x"}},
        ],
    }
    policy = load_policy(bookkeeping)
    names = policy.compiled.stages["only"].phase1
    assert names.index("absent_least") < names.index("labelled")  # the order the function settles them in
    result, reference = policy.evaluate(cohort), load_policy(bookkeeping, backend="python").evaluate(cohort)
    assert _view(result) == _view(reference)
    assert result.decisions["s0"].trace["labelled"] == Missing(frozenset({"label"}))
    assert settled == []
