"""Pydantic validation errors → located diagnostics with field paths.

Used for rule files (against `engine.source.model`) and for fact files (against the programme's fact
models): each error names the field path (`consortia[3].scores.expert`) and, where the input came
from a file, its line and column.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from engine.core.diagnostics import Diagnostic, Span
from engine.source.yamlsource import Path_, SourceMap

__all__ = ["validation_diagnostics", "format_path"]


def format_path(path: Path_) -> str:
    """`("consortia", 3, "scores")` → `consortia[3].scores`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _data_path(data: Any, loc: tuple[Any, ...]) -> Path_:
    """Keep the parts of a pydantic `loc` that exist in the data (drop union branch tags)."""
    path: list[str | int] = []
    current = data
    for part in loc:
        if isinstance(current, dict) and part in current:
            path.append(part)
            current = current[part]
        elif isinstance(current, dict) and isinstance(part, str) and _date_key(current, part) is not None:
            key = _date_key(current, part)
            path.append(key)  # type: ignore[arg-type]
            current = current[key]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        elif not isinstance(current, (dict, list)) or isinstance(part, int):
            continue
        elif isinstance(current, dict):
            path.append(part)  # a key that is absent (missing field) or extra
            current = None
    return tuple(path)


def _date_key(mapping: dict[Any, Any], text: str) -> Any:
    return next((k for k in mapping if not isinstance(k, str) and str(k) == text), None)


def _message(error: dict[str, Any], path: Path_) -> tuple[str, str]:
    kind = error["type"]
    name = format_path(path)
    if kind == "missing":
        return "missing-field", f"missing required field `{name}`"
    if kind == "extra_forbidden":
        return "unknown-field", f"unknown field `{name}`"
    text = str(error["msg"])
    text = text[0].lower() + text[1:] if text else text
    if text.startswith("value error, "):
        text = text[len("value error, ") :]
    return "invalid-field", f"`{name}`: {text}"


def validation_diagnostics(
    error: ValidationError, data: Any, source: SourceMap | None, base: Path_ = (), file: str = "<input>"
) -> list[Diagnostic]:
    """One diagnostic per pydantic error, located at the field's key or value in `source`."""
    found = []
    for item in error.errors():
        path = base + _data_path(data, tuple(item["loc"]))
        code, message = _message(dict(item), path)
        if source is None:
            span = Span(file)
        elif code == "missing-field":
            span = source.span(path[:-1])
        else:
            span = source.span(path, key=code == "unknown-field")
        found.append(Diagnostic(code, message, span))
    return found
