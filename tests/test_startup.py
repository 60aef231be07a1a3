"""Start-up: a command imports what it needs, when it needs it (issue #11: `policy evaluate` as a whole process).

`policy evaluate` runs in a fresh interpreter and reports the modules it loaded: none of the
libraries only other commands need (Hypothesis, FastAPI, uvicorn, SQLAlchemy, networkx, Babel,
tqdm) and none of the passes it does not use. What those imports were replaced by is held to what
they did: the dependency graph's order and reach against networkx, the English dates against
Babel, the catalogues read without Babel against Babel. The time itself is measured by the
benchmark script, not here.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gettext
import io
import json
import subprocess
import sys
import textwrap
from typing import Literal

import networkx as nx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.cli.main import COMMAND_HOMES, build_parser
from engine.core import i18n
from engine.language.ir import Dependencies
from tests.conftest import EXAMPLES, ROOT, RULES

# Libraries (and passes) that `policy evaluate` of the example must not import.
NOT_FOR_EVALUATE = (
    "hypothesis",
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "psycopg",
    "networkx",
    "babel",
    "tqdm",
    "durable",
    "engine.verification",
    "engine.service",
    "engine.records",
    "engine.explanation.explain",
    "engine.explanation.whynot",
    "engine.explanation.report",
    "engine.evaluation.durable",
)


def _loaded_after(argv: list[str], then: str = "") -> tuple[int, str, list[str]]:
    """Run the CLI's `main(argv)` in a fresh interpreter (then the Python `then`); its exit code, output
    and the modules loaded by the end."""
    script = textwrap.dedent(
        f"""
        import contextlib, io, json, sys
        from engine.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main({argv!r})
        {then}
        print(json.dumps({{"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout.splitlines()[-1])
    return data["code"], data["out"], data["modules"]


def _among(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == n or m.startswith(n + ".") for n in names)]


def test_policy_evaluate_imports_none_of_what_only_other_commands_need() -> None:
    code, out, modules = _loaded_after(["evaluate", str(RULES), str(EXAMPLES / "stage1.yaml")])
    assert code == 0 and "naver-cloud" in out and "disqualified" in out
    assert _among(modules, NOT_FOR_EVALUATE) == []
    assert "policy.facts" in modules  # the package's fact models were imported: the check did run


def test_explain_works_the_first_time_and_imports_the_explanation_pass_then() -> None:
    code, out, modules = _loaded_after(["explain", str(RULES), str(EXAMPLES / "stage1.yaml"), "naver-cloud"])
    assert code == 0 and "naver-cloud: disqualified" in out
    assert "engine.explanation.explain" in modules and "networkx" in modules


def test_decision_explain_works_when_only_load_policy_was_imported() -> None:
    """The hook of `Decision.explain()` is in place before the explanation pass is imported."""
    script = textwrap.dedent(
        f"""
        import sys
        from engine import load_policy
        result = load_policy({str(RULES)!r}).evaluate({str(EXAMPLES / "stage1.yaml")!r})
        before = "engine.explanation.explain" in sys.modules
        decision = result.decisions["naver-cloud"]
        print(before, decision.explain().to_text().splitlines()[0], decision.why_not("advanced").to_text() != "")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("False naver-cloud: disqualified") and done.stdout.strip().endswith("True")


def test_the_command_line_still_offers_every_command() -> None:
    """`policy check`, `serve --help` and `test` are registered and parse without their heavy imports."""
    code, out, modules = _loaded_after(["check", str(RULES), "--no-search"])
    assert code == 0 and "ok: " in out
    assert _among(modules, ("hypothesis", "fastapi", "uvicorn", "sqlalchemy")) == []
    done = subprocess.run(
        [sys.executable, "-m", "engine", "serve", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0 and "--watch" in done.stdout


def test_every_public_name_of_engine_resolves_and_is_then_an_attribute() -> None:
    import engine

    for name in engine.__all__:
        value = getattr(engine, name)
        assert vars(engine)[name] is value
    assert set(engine.__all__) <= set(dir(engine))
    with pytest.raises(AttributeError):
        engine.no_such_name  # noqa: B018


# The dependency graph without networkx ------------------------------------------------------------

_NODES = st.sampled_from([f"{kind}:{name}" for kind in ("rule", "value", "fact") for name in "abcdef"])


def _both(edges: list[tuple[str, str]], lonely: list[str]) -> tuple[Dependencies, nx.DiGraph]:
    ours, theirs = Dependencies(), nx.DiGraph()
    for i, (used, user) in enumerate(edges):
        ours.add_edge(used, user, at=i)
        theirs.add_edge(used, user, at=i)
    for node in lonely:
        ours.add_node(node, kind=node.split(":")[0])
        theirs.add_node(node, kind=node.split(":")[0])
    return ours, theirs


@given(st.lists(st.tuples(_NODES, _NODES), max_size=25), st.lists(_NODES, max_size=4))
def test_dependencies_agree_with_networkx(edges: list[tuple[str, str]], lonely: list[str]) -> None:
    """For any graph, the dependency order, what a node leads to and comes from, and the graph handed
    to networkx are exactly what networkx computes and holds for the same additions."""
    ours, theirs = _both(edges, lonely)
    try:
        expected: list[str] | None = list(nx.lexicographical_topological_sort(theirs))
    except nx.NetworkXUnfeasible:
        expected = None
    assert ours.order(theirs.nodes) == expected
    for node in theirs.nodes:
        assert ours.descendants(node) == nx.descendants(theirs, node)
        assert ours.ancestors(node) == nx.ancestors(theirs, node)
        assert list(ours.successors(node)) == list(theirs.successors(node))
        assert list(ours.predecessors(node)) == list(theirs.predecessors(node))
    built = ours.to_networkx()
    assert list(built.nodes(data=True)) == list(theirs.nodes(data=True))
    assert list(built.edges(data=True)) == list(theirs.edges(data=True))
    assert [list(built.predecessors(n)) for n in built] == [list(theirs.predecessors(n)) for n in theirs]


def test_a_policy_graph_is_built_on_first_use_and_kept(policy) -> None:  # type: ignore[no-untyped-def]
    ir = policy.ir
    graph = ir.graph
    assert graph is ir.graph and isinstance(graph, nx.DiGraph)
    assert dataclasses.replace(ir, overrides=(("x", 1),)).graph is graph  # what-if IRs share it, as they did
    assert set(graph.nodes) == set(ir.dependencies.nodes) and graph.number_of_edges() == len(ir.dependencies.edges)
    defined = [n for n, a in graph.nodes(data=True) if a.get("kind") in ("value", "rule")]
    order = [graph.nodes[n]["name"] for n in nx.lexicographical_topological_sort(graph.subgraph(defined))]
    assert list(ir.order) == order


# English without Babel --------------------------------------------------------------------------


@pytest.mark.parametrize("day", [dt.date(2026, m, d) for m in range(1, 13) for d in (1, 9, 28)] + [dt.date(5, 3, 9)])
def test_english_dates_are_written_as_babel_writes_them(day: dt.date) -> None:
    from babel.dates import format_date

    assert i18n.Words("en").date(day) == format_date(day, format="long", locale="en")


@pytest.mark.parametrize("lang", [lang for lang in i18n.LANGUAGES if lang != "en"])
def test_each_compiled_catalogue_says_what_its_po_file_says(lang: str) -> None:
    """The `.mo` read at run time (no Babel) is current: after editing a `.po` file, run
    `.venv/bin/pybabel compile -d engine/core/locale -D engine`."""
    from babel.messages.pofile import read_po

    folder = i18n._LOCALE / lang / "LC_MESSAGES"
    raw = (folder / "engine.po").read_bytes()
    by_babel = i18n.babel_catalogue(raw, lang)
    with (folder / "engine.mo").open("rb") as file:
        compiled = gettext.GNUTranslations(file)
    ids = [m.id for m in read_po(io.BytesIO(raw), locale=lang) if m.id]
    assert len(ids) > 100
    stale = {i: (compiled.gettext(i), by_babel.gettext(i)) for i in ids if compiled.gettext(i) != by_babel.gettext(i)}
    assert stale == {}, "run `.venv/bin/pybabel compile -d engine/core/locale -D engine`"
    assert i18n._catalogue.__wrapped__(lang).gettext(ids[-1]) == by_babel.gettext(ids[-1])


# One command's parser -----------------------------------------------------------------------------


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_each_command_alone_parses_as_in_the_whole_parser() -> None:
    """`policy COMMAND` builds only the groups COMMAND_HOMES names: its options and help are the same."""
    whole = _commands(build_parser())
    assert set(COMMAND_HOMES) <= set(whole)
    for command, sub in whole.items():
        alone = _commands(build_parser(command))
        assert alone[command].format_help() == sub.format_help(), command
    assert set(_commands(build_parser("no-such-command"))) == set(whole)


# Work at load that only some commands need ----------------------------------------------------------


def test_loading_reads_no_distribution_metadata_yet_the_trust_text_still_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listing the trusted entry points reads no distribution's metadata file (an email-format parse);
    the text saying where the trust comes from is the same when it is asked for."""
    import importlib.metadata

    from engine import load_policy
    from engine.language.factmodels import trusted_fact_modules

    def refused(self: object) -> None:
        raise AssertionError("a distribution's metadata was read while loading")

    with monkeypatch.context() as patched:
        patched.setattr(importlib.metadata.Distribution, "metadata", property(refused))
        trusted = trusted_fact_modules(environ={})
        assert "policy.facts" in trusted.origins
        policy = load_policy(RULES, fact_modules=())
    assert policy.ir.name == "sovereign-ai"
    assert trusted.origins["policy.facts"] == "entry point `sovereign_ai` of `sovereign-policy`"
    assert ("policy.facts", "entry point `sovereign_ai` of `sovereign-policy`") in trusted.origins.items()


def test_the_records_invariants_read_are_built_once_for_every_stage() -> None:
    """Each stage's `Decided` record (its own outcomes) shares the one `Rules` and `Values` records."""
    from engine.language.invariants import decided_model
    from engine.language.types import NUM
    from policy.facts import Consortium

    first = decided_model(Consortium, ("advanced", "eliminated"), ("eligible",), (("score", NUM),))
    second = decided_model(Consortium, ("selected",), ("eligible",), (("score", NUM),))
    assert first is not second
    assert first.model_fields["rules"].annotation is second.model_fields["rules"].annotation
    assert first.model_fields["values"].annotation is second.model_fields["values"].annotation
    rules = first.model_fields["rules"].annotation
    assert set(rules.model_fields) == {"eligible"}


def test_field_types_are_read_from_the_model_pydantic_built() -> None:
    """A fact model's field types come from the annotations pydantic resolved when it built the class,
    not resolved again: a model defined inside a function (its annotations are text under
    `from __future__ import annotations`, naming a class of that function) is typed all the same."""
    from pydantic import BaseModel

    from engine.language.types import NUM, STR, Choice, ListTy, ModelTy, model_fields

    class Member(BaseModel):
        share: float
        role: Literal["lead", "member"]

    class Team(BaseModel):
        name: str
        members: list[Member]
        lead: Member | None = None

    assert model_fields(Team) == {"name": STR, "members": ListTy(ModelTy(Member)), "lead": ModelTy(Member)}
    assert model_fields(Member) == {"share": NUM, "role": Choice(frozenset({"lead", "member"}))}


# The cyclic collector while the engine is imported --------------------------------------------------


def _after_import(before: str, imports: str = "import engine.cli") -> dict[str, object]:
    """In a fresh interpreter: run `before`, count the collector's runs while `imports` runs, report its state."""
    script = textwrap.dedent(
        f"""
        import gc, json
        {before}
        runs = []
        gc.callbacks.append(lambda phase, info: phase == "start" and runs.append(info["generation"]))
        frozen, threshold = gc.get_freeze_count(), gc.get_threshold()
        {imports}
        gc.callbacks.clear()
        print(json.dumps({{"runs": runs, "enabled": gc.isenabled(), "frozen_before": frozen,
                           "frozen": gc.get_freeze_count(), "threshold": gc.get_threshold() == threshold}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_engine_runs_no_collection_and_leaves_the_collector_as_it_was() -> None:
    """The classes and functions the engine's imports build go to the oldest generation unwalked; the
    collector is on again afterwards, with its thresholds, and nothing is left frozen."""
    state = _after_import("import importlib, threading, typing")  # the standard library's own imports aside
    # At most the one run that reading `engine/__init__` itself may set off, before its first line
    # (it was some 60 while the engine's modules were imported).
    assert len(state["runs"]) <= 1 and state["enabled"] is True  # type: ignore[arg-type]
    assert state["frozen"] == 0 and state["threshold"] is True


def test_a_collector_turned_off_stays_off_and_a_frozen_heap_stays_frozen() -> None:
    """Whoever imports the engine keeps their choices: the collector off, or a heap frozen before a fork."""
    assert _after_import("gc.disable()")["enabled"] is False
    frozen = _after_import("gc.freeze()")
    assert frozen["enabled"] is True and frozen["frozen_before"] and frozen["frozen"]  # not unfrozen (that empties it)


def test_what_a_long_lived_block_made_is_still_collected_when_it_is_garbage() -> None:
    """Moving objects to the oldest generation keeps nothing from the collector: a cycle made inside
    the block and dropped is collected by the next full collection."""
    import gc
    import weakref

    from engine.core.collector import long_lived

    class Node:
        other: object = None

    was = gc.isenabled()
    with long_lived():
        assert not gc.isenabled()
        first, second = Node(), Node()
        first.other, second.other = second, first
        alive = weakref.ref(first)
    assert gc.isenabled() == was
    del first, second
    assert alive() is not None  # a cycle: reference counting alone does not free it
    gc.collect()
    assert alive() is None
