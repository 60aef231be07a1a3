"""Which texts of a package lack a translation that the package gives elsewhere.

A package that gives any title, message or label in a language (`{en: ..., ko: ...}`) speaks that
language; every other text for people in it should then be given in it too. A text that is not
falls back to English where it is read, and `policy check` warns about it (code
`missing-translation`), at the text's line and column.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel

from engine.core.diagnostics import Diagnostic
from engine.core.i18n import translations_of
from engine.source.document import SourceMap

__all__ = ["missing_translations", "package_languages"]

_TEXT_FIELDS = frozenset({"title", "held", "failed"})
Path_ = tuple[str | int, ...]


def _texts(item: Any, path: Path_) -> Iterator[tuple[Path_, str]]:
    """Every text for people in a file model, with its path: titles, messages and labels."""
    if isinstance(item, BaseModel):
        for name in type(item).model_fields:
            value = getattr(item, name)
            if name in _TEXT_FIELDS and isinstance(value, str):
                yield path + (name,), value
            elif name == "labels" and isinstance(value, dict):
                yield from ((path + (name, k), v) for k, v in value.items())
            else:
                yield from _texts(value, path + (name,))
    elif isinstance(item, dict):
        for key, value in item.items():
            yield from _texts(value, path + (str(key),))
    elif isinstance(item, (list, tuple)):
        for i, value in enumerate(item):
            yield from _texts(value, path + (i,))


def package_languages(files: Iterable[tuple[Any, SourceMap]]) -> set[str]:
    """The languages any text of the package is given in (English always)."""
    found = {"en"}
    for sections, _ in files:
        for _, text in _texts(sections, ()):
            found |= set(translations_of(text))
    return found


def missing_translations(files: Iterable[tuple[Any, SourceMap]]) -> list[Diagnostic]:
    """A warning for each text not given in a language the package speaks elsewhere."""
    files = list(files)
    languages = package_languages(files)
    if languages == {"en"}:
        return []
    found = []
    for sections, source in files:
        for path, text in _texts(sections, ()):
            lacking = sorted(languages - set(translations_of(text)))
            if lacking:
                found.append(
                    Diagnostic(
                        "missing-translation",
                        f"`{str(text)[:60]}` is not given in {', '.join(f'`{lang}`' for lang in lacking)}: "
                        "readers of that language see the English",
                        source.span(path),
                        "give it per language, e.g. `{en: ..., " + lacking[0] + ": ...}`",
                        severity="warning",
                    )
                )
    return found
