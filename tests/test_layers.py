"""The wall that keeps the layout true: imports run one way through the passes of ARCHITECTURE.md.

Every `import` under `engine/` is read with `ast` (type-only imports and imports inside functions
included) and checked against the layer order below, which ARCHITECTURE.md writes out. A lower
pass never imports a higher one, there is no import circle at all, and the walls hold: the engine
never imports `policy/`, only the durable host imports `durable_rules`, only `engine/source`
imports `yaml`, no evaluator imports the reading pass, and only the CLI writes to the terminal.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

from tests.conftest import ROOT

ENGINE = ROOT / "engine"

# The pipeline, lowest first. A module may import modules of its own layer or of a lower one.
LAYERS = (
    "core",
    "source",
    "language",
    "evaluation",
    "embedding",
    "explanation",
    "records",
    "verification",
    "service",
    "cli",
)
FACADE = {"engine", "engine.__main__"}  # the public API and `python -m engine`: on top of everything
MAX_MODULES_PER_FOLDER = 12


@dataclass(frozen=True)
class Use:
    module: str  # the importing module, e.g. engine.evaluation.evaluate
    target: str  # what it imports, e.g. engine.language.ir, or yaml
    line: int

    def __str__(self) -> str:
        return f"{self.module} (line {self.line}) imports {self.target}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ENGINE.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom, alias: ast.alias) -> str:
    base = node.module or ""
    if node.level:
        package = module.split(".")
        if not MODULES[module].name == "__init__.py":
            package = package[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
    candidate = f"{base}.{alias.name}"
    return candidate if candidate in MODULES else base


def _uses(module: str) -> list[Use]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: list[Use] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Use(module, a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            found += [Use(module, _resolve(module, node, a), node.lineno) for a in node.names]
    return found


USES = [use for module in MODULES for use in _uses(module)]


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if module in FACADE:
        return len(LAYERS)
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def _engine_uses() -> list[Use]:
    return [u for u in USES if u.target == "engine" or u.target.startswith("engine.")]


def test_every_module_belongs_to_a_layer() -> None:
    assert [m for m in MODULES if _layer(m) is None] == []


def test_no_lower_layer_imports_a_higher_one() -> None:
    upward = [str(u) for u in _engine_uses() if (_layer(u.target) or 0) > (_layer(u.module) or 0)]
    assert upward == [], "imports against the layer order " + " < ".join(LAYERS)


def test_only_the_facade_imports_the_engine_package_itself() -> None:
    assert [str(u) for u in _engine_uses() if u.target == "engine" and u.module not in FACADE] == []


def test_there_is_no_import_circle_type_only_imports_included() -> None:
    graph = nx.DiGraph()
    for use in _engine_uses():
        package = use.module.rsplit(".", 1)[0] if MODULES[use.module].name != "__init__.py" else use.module
        if use.target in MODULES and not package.startswith(use.target):  # a package's own __init__ is no edge
            graph.add_edge(use.module, use.target)
    assert list(nx.simple_cycles(graph)) == []


@pytest.mark.parametrize(
    ("wall", "forbidden", "allowed"),
    [
        ("the engine never imports the programme's package `policy/`", r"policy(\..*)?", r"$^"),
        (
            "only the durable host imports durable_rules",
            r"durable(_rules_engine)?(\..*)?",
            r"engine\.evaluation\.durable\._host",
        ),
        ("only the reading pass imports yaml", r"yaml(\..*)?", r"engine\.source\..*"),
        (
            "no evaluator imports the reading pass (loader, YAML, file models)",
            r"engine\.source(\..*)?",
            r"(?!engine\.evaluation).*",
        ),
        ("nothing below the CLI imports argparse", r"argparse", r"engine\.cli(\..*)?"),
        (
            "only the records pass talks to databases",
            r"(sqlalchemy|psycopg|sqlite3)(\..*)?",
            r"engine\.records(\..*)?",
        ),
    ],
)
def test_walls(wall: str, forbidden: str, allowed: str) -> None:
    broken = [str(u) for u in USES if re.fullmatch(forbidden, u.target) and not re.fullmatch(allowed, u.module)]
    assert broken == [], wall


def _writes_to_terminal(module: str) -> list[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("print", "input"):
            found.append(f"{module}:{node.lineno} calls {node.func.id}()")
        if isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr") and ast.unparse(node.value) == "sys":
            found.append(f"{module}:{node.lineno} uses sys.{node.attr}")
    return found


def test_only_the_cli_writes_to_the_terminal() -> None:
    assert [w for m in MODULES if not m.startswith("engine.cli") for w in _writes_to_terminal(m)] == []


def test_no_folder_holds_more_than_about_twelve_modules() -> None:
    sizes = {folder: len([p for p in folder.glob("*.py") if p.name != "__init__.py"]) for folder in ENGINE.rglob("*/")}
    assert {str(f.relative_to(ROOT)): n for f, n in sizes.items() if n > MAX_MODULES_PER_FOLDER} == {}


def test_every_folder_says_what_it_owns_and_what_it_may_import() -> None:
    undocumented = []
    for init in ENGINE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        if init.parent != ENGINE and ("import" not in doc or "Owns" not in doc and "owns" not in doc):
            undocumented.append(str(init.relative_to(ROOT)))
    assert undocumented == []


def test_architecture_md_names_every_folder_and_the_layer_order() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    folders = {str(p.parent.relative_to(ROOT)) + "/" for p in ENGINE.rglob("__init__.py") if p.parent != ENGINE}
    assert [f for f in sorted(folders) if f"`{f}`" not in text] == []
    assert " → ".join(LAYERS) in text
    assert len(text.splitlines()) < 200


def _positional_constructor_calls(module: str) -> list[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and len(node.args) > 4 and not any(isinstance(a, ast.Starred) for a in node.args):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name[:1].isupper():
                found.append(f"{module}:{node.lineno} {name}(...) with {len(node.args)} positional arguments")
    return found


def test_constructors_with_more_than_four_arguments_are_called_with_keywords() -> None:
    assert [c for m in MODULES for c in _positional_constructor_calls(m)] == []
