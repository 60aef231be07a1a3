"""Concrete fact paths (`model.components[1].weights.origin`): read, write, and what the fact
model says of them (may the subject change it? its bounds and type).

Generic: works on any pydantic fact model. A field marked `json_schema_extra={"fixed": True}` is
a fact the subject cannot change (nor anything below it).
"""

from __future__ import annotations

import re
import typing
from typing import Any

from pydantic import BaseModel

__all__ = ["steps", "field_info", "bounds", "get_path", "set_path"]

_STEP = re.compile(r"([A-Za-z_]\w*)(?:\[(\d+)\])?")


def steps(path: str) -> list[tuple[str, int | None]]:
    return [(m.group(1), int(m.group(2)) if m.group(2) else None) for m in _STEP.finditer(path)]


def field_info(model: type[BaseModel], path: str) -> tuple[bool, Any]:
    """Whether a subject-relative path may be changed, and the annotation of its last field."""
    current: Any = model
    annotation: Any = None
    for name, _ in steps(path):
        inner = _unwrap(current)
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)) or name not in inner.model_fields:
            return False, None
        info = inner.model_fields[name]
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("fixed"):
            return False, None
        annotation = current = info.annotation
    return True, annotation


def _unwrap(annotation: Any) -> Any:
    """`Optional[X]`, `list[X]`, `Annotated[X, ...]` → X."""
    while True:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        origin = typing.get_origin(annotation)
        if origin is None or origin is typing.Literal or not args:
            return annotation
        annotation = args[0]


def bounds(model: type[BaseModel], path: str) -> tuple[float | None, float | None, bool]:
    """(minimum, maximum, integer) of a numeric fact from its field's constraints."""
    current: Any = model
    info = None
    for name, _ in steps(path):
        inner = _unwrap(current)
        info = inner.model_fields[name]
        current = info.annotation
    low, high, integer = None, None, _unwrap(current) is int
    for item in _metadata(info):
        low, high = _limit(item, ("ge", "gt"), low), _limit(item, ("le", "lt"), high)
    return low, high, integer


def _limit(item: Any, names: tuple[str, str], default: float | None) -> float | None:
    """A bound from a constraint object (`Ge(35)`, `Field(le=35)` metadata), else `default`."""
    return next((getattr(item, n) for n in names if getattr(item, n, None) is not None), default)


def _metadata(info: Any) -> list[Any]:
    found = list(getattr(info, "metadata", []) or [])
    annotation = getattr(info, "annotation", None)
    stack = [annotation]
    while stack:
        item = stack.pop()
        if typing.get_origin(item) is typing.Annotated:
            found += list(typing.get_args(item)[1:])
            stack.append(typing.get_args(item)[0])
        else:
            stack += [a for a in typing.get_args(item) if a is not type(None)]
    for item in list(found):
        found += list(getattr(item, "metadata", []) or [])
    return found


def get_path(data: Any, path: str) -> Any:
    for name, index in steps(path):
        data = data.get(name) if isinstance(data, dict) else None
        if index is not None:
            data = data[index] if isinstance(data, list) and index < len(data) else None
    return data


def set_path(data: dict[str, Any], path: str, value: Any) -> bool:
    parts = steps(path)
    target: Any = data
    for name, index in parts[:-1]:
        target = target.get(name) if isinstance(target, dict) else None
        if index is not None:
            target = target[index] if isinstance(target, list) and index < len(target) else None
        if not isinstance(target, dict):
            return False  # the record was replaced or is absent: the edit is moot
    name, index = parts[-1]
    if index is not None:
        return False
    target[name] = value
    return True
