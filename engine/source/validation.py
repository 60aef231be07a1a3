"""Pydantic validation errors → located diagnostics with field paths.

Used for rule files (against `engine.source.model`) and for fact files (against the programme's fact
models): each error names the field path (`consortia[3].scores.expert`) and, where the input came
from a file, its line and column.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import math
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from engine.core.diagnostics import Diagnostic, Span
from engine.source.yamlsource import Path_, SourceMap

__all__ = ["validation_diagnostics", "format_path"]


def format_path(path: Path_) -> str:
    """`("consortia", 3, "scores")` → `consortia[3].scores`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _data_path(data: Any, loc: tuple[Any, ...], is_tag: Any = lambda index: False) -> Path_:
    """Keep the parts of a pydantic `loc` that exist in the data (drop union branch tags)."""
    path: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        if isinstance(current, dict) and part in current:
            path.append(part)
            current = current[part]
        elif isinstance(current, dict) and isinstance(part, str) and _date_key(current, part) is not None:
            key = _date_key(current, part)
            path.append(key)
            current = current[key]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        elif not isinstance(current, (dict, list)) or isinstance(part, int) or is_tag(index):
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
    error: ValidationError,
    data: Any,
    source: SourceMap | None,
    base: Path_ = (),
    file: str = "<input>",
    model: type[BaseModel] | None = None,
) -> list[Diagnostic]:
    """One diagnostic per pydantic error, located at the field's key or value in `source`.

    An unknown key gets `did you mean ...?` for the closest field allowed beside it: a field of `model`
    (the model `data` was validated against) at that path, or a required field missing there.

    Where no member of a union (`value: bool | int | ... | list[str]`) matched, its members' errors
    become one diagnostic that names the shapes allowed and the shape given; where the value has the
    shape of exactly one member (a mapping where one member is a mapping), that member's errors are
    reported as if there were no union.
    """
    found = []
    items: list[dict[str, Any]] = [dict(item) for item in error.errors()]
    members: dict[Path_, list[str]] = {}
    for item in items:
        for path, tag in _unions_of(item, data):
            members.setdefault(path, [])
            if tag not in members[path]:
                members[path].append(tag)
    chosen = {path: _matching(tags, _at(data, path)) for path, tags in members.items()}
    reported: set[Path_] = set()
    missing = _missing_fields(items, data, base)
    for item in items:
        verdict = _verdict(_unions_of(item, data), chosen)
        if verdict == "drop":
            continue
        if isinstance(verdict, tuple):
            if verdict not in reported:
                reported.add(verdict)
                found.append(_union_diagnostic(members[verdict], data, verdict, source, base, file))
            continue
        path = base + _data_path(data, tuple(item["loc"]), _is_member_error(item))
        code, message = _message(item, path)
        if source is None:
            span = Span(file)
        elif code == "missing-field":
            span = source.span(path[:-1])
        else:
            span = source.span(path, key=code == "unknown-field")
        help = _meant(data, path, missing, model, len(base)) if code == "unknown-field" else None
        found.append(Diagnostic(code, message, span, help))
    return found


def _missing_fields(items: list[dict[str, Any]], data: Any, base: Path_) -> dict[Path_, list[str]]:
    """The required fields missing from each mapping, by its path: what a misspelled key there may have meant."""
    missing: dict[Path_, list[str]] = {}
    for item in items:
        if item["type"] == "missing":
            path = base + _data_path(data, tuple(item["loc"]), _is_member_error(item))
            if path and isinstance(path[-1], str):
                missing.setdefault(path[:-1], []).append(path[-1])
    return missing


def _meant(
    data: Any, path: Path_, missing: dict[Path_, list[str]], model: type[BaseModel] | None, base: int
) -> str | None:
    """`did you mean ...?` for an unknown key close to a field allowed beside it and not given (`wehn`: `when`)."""
    if not path or not isinstance(path[-1], str):
        return None
    allowed = set(missing.get(path[:-1], []))
    if model is not None:
        allowed |= _fields_at(model, path[base:-1])
    try:
        given = set(_at(data, path[base:-1]))
    except (KeyError, IndexError, TypeError):
        given = set()
    found = difflib.get_close_matches(path[-1], sorted(allowed - given), n=1, cutoff=0.6)
    return f"did you mean `{found[0]}`?" if found else None


def _fields_at(model: type[BaseModel], path: Path_) -> set[str]:
    """The keys `model` allows in the mapping at `path` of its data (every member's, under a union)."""
    found: list[Any] = [model]
    for part in path:
        found = [inner for kind in found for inner in _inside(kind, part)]
    models = [member for kind in found for member in _members(kind)]
    return {field.alias or name for member in models for name, field in member.model_fields.items()}


def _members(kind: Any) -> list[type[BaseModel]]:
    """The models a type annotation may be (through `Annotated`, `Optional` and unions)."""
    origin = typing.get_origin(kind)
    if origin is typing.Annotated:
        return _members(typing.get_args(kind)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(kind) for m in _members(arg)]
    return [kind] if isinstance(kind, type) and issubclass(kind, BaseModel) else []


def _inside(kind: Any, part: str | int) -> list[Any]:
    """What the value at key or index `part` of a value of type `kind` may be."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Annotated:
        return _inside(args[0], part)
    if origin in (typing.Union, types.UnionType):
        return [inner for arg in args for inner in _inside(arg, part)]
    if isinstance(part, str) and isinstance(kind, type) and issubclass(kind, BaseModel):
        field = kind.model_fields.get(part) or next((f for f in kind.model_fields.values() if f.alias == part), None)
        return [field.annotation] if field is not None else []
    if origin is None or not isinstance(origin, type):
        return []
    if issubclass(origin, typing.Mapping):  # a key of any kind (a name, a date)
        return [args[1]] if len(args) == 2 else []
    if isinstance(part, int) and issubclass(origin, (typing.Sequence, typing.AbstractSet)):
        return [args[0]] if args else []
    return []


@functools.cache
def _tag() -> re.Pattern[str]:
    """A part of pydantic's error location that names a member of a union (compiled on the first error)."""
    return re.compile(
        r"(bool|int|float|str|bytes|date|datetime|time|decimal|list|dict|set|frozenset|tuple|literal|union|"
        r"function-\w+|lax-or-strict|json-or-python|constrained-\w+|is-instance|nullable|tagged-union)(\[.*\])?"
        r"|[A-Z][A-Za-z0-9_]*"
    )


def _is_member_error(item: dict[str, Any]) -> Any:
    """Whether a part of `item`'s loc at `index` names a member of a union rather than a field."""
    loc, kind = tuple(item["loc"]), item["type"]

    def is_tag(index: int) -> bool:
        part = loc[index]
        last_is_field = index == len(loc) - 1 and kind in ("missing", "extra_forbidden")
        return isinstance(part, str) and not last_is_field and bool(_tag().fullmatch(part))

    return is_tag


def _unions_of(item: dict[str, Any], data: Any) -> list[tuple[Path_, str]]:
    """(the data path of the union, the member's tag) for each union `item`'s error is inside, outermost first."""
    is_tag = _is_member_error(item)
    found: list[tuple[Path_, str]] = []
    path: list[str | int] = []
    current = data
    for index, part in enumerate(item["loc"]):
        if isinstance(current, dict) and part in current:
            part = next(k for k in current if k == part)  # the key as written (`true`, where pydantic says 1)
            path.append(part)
            current = current[part]
        elif isinstance(current, dict) and isinstance(part, str) and _date_key(current, part) is not None:
            key = _date_key(current, part)
            path.append(key)
            current = current[key]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        elif part == _KEY and path:  # the error is in the mapping's key, not its value
            path.append(_KEY)
            current = None
        elif is_tag(index):
            found.append((tuple(path), part))
        else:
            break
    return found


_KEY = "[key]"  # pydantic's step into a mapping's key


def _at(data: Any, path: Path_) -> Any:
    """The data at `path`; a path ending in `[key]` gives the key itself."""
    if path[-1:] == (_KEY,):
        return path[-2]
    for part in path:
        data = data[part]
    return data


def _matching(tags: list[str], value: Any) -> str | None:
    """The one member whose shape (mapping or list) `value` has, if exactly one has it."""
    if isinstance(value, dict):
        shaped = [t for t in tags if t.startswith("dict[") or t[:1].isupper()]
    elif isinstance(value, list):
        shaped = [t for t in tags if t.startswith("list[")]
    else:
        return None
    return shaped[0] if len(shaped) == 1 else None


def _verdict(unions: list[tuple[Path_, str]], chosen: dict[Path_, str | None]) -> Path_ | str | None:
    """`drop` (another member's error), a union's path (report the union once), or None (report the error)."""
    for path, tag in unions:
        member = chosen.get(path)
        if member is None:
            return path
        if member != tag:
            return "drop"
    return None


_WORDS = {
    "bool": "true or false",
    "int": "a whole number",
    "float": "a number",
    "str": "text",
    "date": "a date",
    "datetime": "a date and time",
    "list[str]": "a list of text",
    "list[int]": "a list of numbers",
    "list[float]": "a list of numbers",
}


def _word(tag: str) -> str:
    if tag in _WORDS:
        return _WORDS[tag]
    if tag.startswith("list["):
        return "a list"
    if tag.startswith("dict[") or tag[:1].isupper():
        return "a mapping"
    if tag.startswith("literal["):
        return "one of " + tag[len("literal[") : -1].replace("'", "`")
    return f"`{tag}`"


def _alternatives(tags: list[str]) -> str:
    words = list(dict.fromkeys(_word(t) for t in tags))
    if "a number" in words and "a whole number" in words:
        words.remove("a whole number")
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]


def _given(value: Any) -> str:
    """What was written, in words: `a mapping`, `the number 3`, `a list of numbers and mappings`."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        kinds = list(dict.fromkeys(_kind(v) for v in value))
        return "an empty list" if not kinds else "a list of " + " and ".join(kinds)
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and not math.isfinite(value):  # `.inf` and `.nan` read from YAML
        written = ".nan" if value != value else ("-.inf" if value < 0 else ".inf")
        return f"`{written}`, which is not a finite number"
    if isinstance(value, (int, float)):
        return f"the number `{value}`"
    if isinstance(value, str):
        return f"the text `{value}`"
    if isinstance(value, dt.date):
        return f"the date `{value}`"
    return "nothing (`null`)" if value is None else "something else"


def _kind(value: Any) -> str:
    kinds = ((bool, "booleans"), ((int, float), "numbers"), (str, "texts"), (dt.date, "dates"))
    kinds += ((dict, "mappings"), (list, "lists"))  # type: ignore[assignment]
    return next((word for kind, word in kinds if isinstance(value, kind)), "nulls")


def _union_diagnostic(
    tags: list[str], data: Any, path: Path_, source: SourceMap | None, base: Path_, file: str
) -> Diagnostic:
    value = _at(data, path)
    key = path[-1:] == (_KEY,)
    path = path[:-1] if key else path
    name = format_path(base + path)
    what = "its key" if key else ""
    message = f"`{name}`: {what + ' ' if what else ''}must be {_alternatives(tags)}, but this is {_given(value)}"
    help = None
    if isinstance(value, dict) and path[-1:] == ("value",):
        help = "values by key are a table: `table: {values: {key: value, ...}, otherwise: value}`"
    span = Span(file) if source is None else source.span(base + path, key=key)
    return Diagnostic("invalid-field", message, span, help)
