"""Fact files and fact objects → validated instances of the package's fact models.

Accepts a path (YAML or JSON), a dict, or an instance. Validation errors name the file, the
line and column, and the field path (`consortia[3].scores.expert`).

The cyclic garbage collector is paused while facts are read and validated (`collector_paused`):
a cohort's models are many objects that all live on, and with the collector on the cost per
subject grew with the cohort (66 µs per subject at 1,000, 520 µs at 10,000). The models of a large
cohort (`MANY` subjects or more) are then filed as old (`building_many`): the collections right
after the pause walked them all again (17.8 µs per subject at 1,000, 41.8 at 100,000).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from engine.core.collector import MANY, building_many, collector_paused
from engine.core.diagnostics import Diagnostic, Span
from engine.core.errors import FactError
from engine.source.validation import validation_diagnostics
from engine.source.yamlsource import read_document

__all__ = ["load_facts"]

M = TypeVar("M", bound=BaseModel)


LARGE_FILE = 2_000_000  # bytes of a fact file from which the same is done (about 1,000 consortia of JSON)


def load_facts(model: type[M], source: M | dict[str, Any] | str | Path) -> M:
    """Validate `source` against `model`; raise FactError naming every bad field."""
    if isinstance(source, model):  # validated already: nothing to pause the collector for
        return source
    with building_many() if _many(source) else collector_paused():
        return _load(model, source)


def _many(source: Any) -> bool:
    """Whether `source` holds a large cohort: a top-level list of at least MANY items, or a large file."""
    if isinstance(source, dict):
        return any(isinstance(v, list) and len(v) >= MANY for v in source.values())
    if isinstance(source, (str, Path)):
        try:
            return Path(source).stat().st_size >= LARGE_FILE
        except OSError:
            return False  # `_load` says what is wrong with the path
    return False


def _load(model: type[M], source: M | dict[str, Any] | str | Path) -> M:
    if isinstance(source, BaseModel):
        source = source.model_dump()
    if isinstance(source, dict):
        try:
            return model.model_validate(source)
        except ValidationError as error:
            raise FactError(validation_diagnostics(error, source, None, file="<facts>", model=model)) from None
    return _from_file(model, Path(source))


def _from_file(model: type[M], path: Path) -> M:
    document = read_document(path, lazy=True)
    if document.diagnostics:
        raise FactError(document.diagnostics)
    if not isinstance(document.data, dict):
        raise FactError(
            [
                Diagnostic(
                    "invalid-file", f"a fact file must hold a mapping (a `{model.__name__}`)", Span(str(path), 1, 1)
                )
            ]
        )
    try:
        return model.model_validate(document.data)
    except ValidationError as error:
        raise FactError(validation_diagnostics(error, document.data, document.source, model=model)) from None
