"""Fact models come only from modules the operator trusts: a rule package is data, never code.

A package names its fact models (`facts: {subject: policy.facts:Consortium}`). The engine imports
such a module only if it is trusted, and it never changes `sys.path`:

- an installed distribution registers the module under the entry-point group `engine.fact_models`
  (in its `pyproject.toml`: `[project.entry-points."engine.fact_models"]` `sovereign_ai =
  "policy.facts"`); entry points are read as metadata, nothing is imported to list them;
- or the person running the engine names it: `--facts-module MODULE_OR_FILE` on the command
  line, the `POLICY_FACT_MODULES` environment variable (entries separated by `os.pathsep`), or
  `load_policy(..., fact_modules=[...])` (module names, paths of `.py` files, or modules).

The trusted set is fixed when a policy is first loaded; its reloads use the same set, so a
reload never imports a module that was not already trusted.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from pydantic import BaseModel

from engine.language.typecheck import suggest

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "HOW_TO_TRUST",
    "FactModules",
    "ModuleSpec",
    "UntrustedModule",
    "trusted_fact_modules",
]

ENTRY_POINT_GROUP = "engine.fact_models"
ENV_VAR = "POLICY_FACT_MODULES"

ModuleSpec = str | Path | ModuleType  # a module name, the path of a .py file, or a module


HOW_TO_TRUST = (
    f"install a distribution that registers the module under the `{ENTRY_POINT_GROUP}` entry-point group, "
    f"or name it when you run the engine: `--facts-module MODULE_OR_FILE`, {ENV_VAR}, or "
    "`load_policy(..., fact_modules=[...])`"
)


class UntrustedModule(ImportError):
    """A package named a fact-model module that nobody trusted (it is never imported)."""


@dataclass(frozen=True)
class FactModules:
    """The fact-model modules this engine may import, each with where its trust comes from."""

    origins: Mapping[str, str]  # module name → "entry point `name` of `dist`", "--facts-module ...", ...
    files: Mapping[str, Path] = field(default_factory=dict)  # module name → .py file named by path
    modules: Mapping[str, ModuleType] = field(default_factory=dict)  # modules passed as objects

    def import_model(self, target: str) -> type[BaseModel]:
        """The pydantic model `module:Class` names, imported only if its module is trusted."""
        module_name, _, class_name = target.partition(":")
        module = self._module(module_name)
        cls = getattr(module, class_name, None)
        if cls is None:
            models = [n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, BaseModel)]
            hint = suggest(class_name, models)
            raise ImportError(f"`{module_name}` has no `{class_name}`" + (f"; {hint}" if hint else ""))
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            raise ImportError(f"`{module_name}:{class_name}` is not a pydantic model")
        return cls

    def specs(self) -> tuple[str, ...]:
        """The modules named by the caller, as text a worker process can trust again."""
        named = [
            str(self.files[n]) if n in self.files else n for n, o in self.origins.items() if not o.startswith(_ENTRY)
        ]
        return tuple(named)

    def _module(self, name: str) -> ModuleType:
        if name not in self.origins:
            trusted = ", ".join(f"`{n}`" for n in sorted(self.origins)) or "none"
            raise UntrustedModule(f"module `{name}` is not trusted to define fact models (trusted: {trusted})")
        if name in self.modules:
            return self.modules[name]
        if name in self.files:
            return _from_file(name, self.files[name])
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as error:
            raise ImportError(f"no module named `{error.name or name}`") from None


_ENTRY = "entry point"


def _from_file(name: str, path: Path) -> ModuleType:
    loaded = sys.modules.get(name)
    if loaded is not None:
        if Path(getattr(loaded, "__file__", "") or "").resolve() != path.resolve():
            raise ImportError(f"a different module `{name}` is already loaded (from {loaded.__file__})")
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load `{path}` as a module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the module's annotations through sys.modules
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


class _Origins(Mapping[str, str]):
    """Module name → where its trust comes from. An entry point's text names its distribution, whose
    name is read from its metadata file (an email-format parse, about as long as listing the entry
    points): done only when the text is asked for (an error message, `policy check` output), not at
    every load."""

    def __init__(self, entries: Mapping[str, str | importlib.metadata.EntryPoint]) -> None:
        self._entries = dict(entries)

    def __getitem__(self, name: str) -> str:
        entry = self._entries[name]
        if isinstance(entry, str):
            return entry
        dist = entry.dist.name if entry.dist is not None else "an installed distribution"
        text = self._entries[name] = f"{_ENTRY} `{entry.name}` of `{dist}`"
        return text

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return repr(dict(self))


def _registered() -> dict[str, str | importlib.metadata.EntryPoint]:
    found: dict[str, str | importlib.metadata.EntryPoint] = {}
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.value.partition(":")[0].strip(), entry)
    return found


def _named(spec: ModuleSpec, origin: str) -> tuple[str, Path | ModuleType | None]:
    if isinstance(spec, ModuleType):
        return spec.__name__, spec
    text = str(spec)
    if isinstance(spec, Path) or text.endswith(".py") or os.sep in text:
        path = Path(text)
        if not path.is_file():
            raise UntrustedModule(f"{origin}: `{text}` is not a Python file")
        return path.stem, path.resolve()
    if not all(part.isidentifier() for part in text.split(".")):
        raise UntrustedModule(f"{origin}: `{text}` is neither a module name nor the path of a .py file")
    return text, None


def trusted_fact_modules(named: Iterable[ModuleSpec] = (), environ: Mapping[str, str] | None = None) -> FactModules:
    """Entry points of installed distributions, then `POLICY_FACT_MODULES`, then `named`."""
    origins: dict[str, str | importlib.metadata.EntryPoint] = _registered()
    files: dict[str, Path] = {}
    modules: dict[str, ModuleType] = {}
    env = (os.environ if environ is None else environ).get(ENV_VAR, "")
    given = [(s, ENV_VAR) for s in env.split(os.pathsep) if s.strip()] + [(s, "fact_modules") for s in named]
    for spec, origin in given:
        name, where = _named(spec.strip() if isinstance(spec, str) else spec, origin)
        origins[name] = f"{origin} `{spec}`" if not isinstance(spec, ModuleType) else f"{origin} (a module)"
        if isinstance(where, Path):
            files[name] = where
        elif isinstance(where, ModuleType):
            modules[name] = where
    return FactModules(origins=_Origins(origins), files=files, modules=modules)
