"""What values a fact may take, read from its fact model: numeric bounds, choices, booleans.

Ranking under uncertainty needs to know how far a missing fact could move a subject: a user
score bounded `0 ≤ user ≤ 25` by the fact model can move a total by at most 25 points. This
module reads those bounds from the model's annotations (`Field(ge=..., le=...)`, `Annotated`
constraints, `Literal` choices, `bool`), for a path such as `scores.benchmark.nia`. It never
imports anything: the model classes are already trusted and loaded.
"""

from __future__ import annotations

import enum
import functools
import math
import operator
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

__all__ = ["Bounds", "FactRange", "fact_range", "unwrap"]


def _flatten(metadata: Iterable[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in metadata:
        flat += _flatten(item.metadata) if isinstance(item, FieldInfo) else [item]
    return flat


@dataclass(frozen=True)
class Bounds:
    """The numeric and length constraints of a field (`annotated_types` / pydantic `Field`)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None

    @staticmethod
    def of(metadata: Iterable[Any]) -> Bounds:
        found: dict[str, Any] = {}
        for item in _flatten(metadata):
            for key in ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern"):
                if getattr(item, key, None) is not None:
                    found[key] = getattr(item, key)
        return Bounds(**found)

    def admits(self, value: float) -> bool:
        """Whether `value` satisfies every numeric bound."""
        tests = ((self.ge, operator.ge), (self.gt, operator.gt), (self.le, operator.le), (self.lt, operator.lt))
        return all(bound is None or test(value, bound) for bound, test in tests)

    @property
    def low(self) -> float:
        """The least value admitted (a strict bound taken as its limit); -inf without one."""
        found = [b for b in (self.ge, self.gt) if b is not None]
        return float(max(found)) if found else -math.inf

    @property
    def high(self) -> float:
        """The greatest value admitted (a strict bound taken as its limit); +inf without one."""
        found = [b for b in (self.le, self.lt) if b is not None]
        return float(min(found)) if found else math.inf


def unwrap(annotation: Any, metadata: Sequence[Any] = ()) -> tuple[Any, Bounds]:
    """The annotation with `Optional` and `Annotated` taken off, and the bounds they carried."""
    found = list(metadata)
    while typing.get_origin(annotation) is typing.Annotated or (
        typing.get_args(annotation) and type(None) in typing.get_args(annotation)
    ):
        args = typing.get_args(annotation)
        if typing.get_origin(annotation) is typing.Annotated:
            found += list(args[1:])
            annotation = args[0]
        else:
            kept = [a for a in args if a is not type(None)]
            if len(kept) != 1:
                break
            annotation = kept[0]
    return annotation, Bounds.of(found)


@dataclass(frozen=True)
class FactRange:
    """The values a fact may take: `low..high` for numbers, `choices` for choices and booleans.

    `bounded` is False when the model gives no bound on either side (a number may be anything).
    """

    low: Any
    high: Any
    bounded: bool


def fact_range(model: type[BaseModel], path: Sequence[str]) -> FactRange | None:
    """What the fact at `path` of `model` may be; None for a path the model does not describe as a value."""
    return _fact_range(model, tuple(path))


@functools.lru_cache(maxsize=1024)  # a model's annotations do not change: read each path once
def _fact_range(model: type[BaseModel], path: tuple[str, ...]) -> FactRange | None:
    annotation: Any = model
    metadata: Sequence[Any] = ()
    for step in path:
        annotation, _ = unwrap(annotation)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        info = annotation.model_fields.get(step)
        if info is None:
            return None
        annotation, metadata = info.annotation, info.metadata
    annotation, bounds = unwrap(annotation, metadata)
    if annotation is bool:
        return FactRange(False, True, True)
    if typing.get_origin(annotation) is typing.Literal:
        choices = typing.get_args(annotation)
        if choices and all(isinstance(c, str) for c in choices):
            return FactRange(min(choices), max(choices), True)
        return None
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = [str(m.value) for m in annotation]
        return FactRange(min(values), max(values), True) if values else None
    if isinstance(annotation, type) and issubclass(annotation, (int, float)):
        low, high = bounds.low, bounds.high
        return FactRange(low, high, low > -math.inf or high < math.inf)
    return None
