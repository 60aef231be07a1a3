"""Types of expressions, derived from the pydantic fact models.

The checker needs to know that `scores.expert` is a number, that `weights.use` is one of
`frozen`/`fine_tuned`, and that `model.components` is a list of `Component`. These types are read
from the models' annotations once; `Optional[X]` is `X` (a missing value makes a rule
undetermined at run time, it is not a type error).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import types
import typing
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel

__all__ = [
    "Ty",
    "Prim",
    "Choice",
    "ModelTy",
    "ListTy",
    "NUM",
    "BOOL",
    "STR",
    "DATE",
    "NONE",
    "ANY",
    "NEVER",
    "from_annotation",
    "of_value",
    "describe",
    "compatible",
    "unify",
]


@dataclass(frozen=True)
class Prim:
    """A simple type: number, boolean, text, date, none or any."""

    name: str  # "number", "boolean", "text", "date", "none", "any"


@dataclass(frozen=True)
class Choice:
    """Text restricted to a set of values (a `Literal` or an `Enum` in the fact model)."""

    choices: frozenset[str]


@dataclass(frozen=True)
class ModelTy:
    """A fact model (a pydantic class): its fields are typed in turn."""

    cls: type[BaseModel]

    def fields(self) -> dict[str, Ty]:
        return model_fields(self.cls)


@dataclass(frozen=True)
class ListTy:
    """A list of items of one type."""

    item: Ty


Ty = Prim | Choice | ModelTy | ListTy
NUM, BOOL, STR, DATE, NONE, ANY = (Prim(n) for n in ("number", "boolean", "text", "date", "none", "any"))
NEVER = Prim("nothing")  # the item type of an empty list: it fits with every other type


def model_fields(cls: type[BaseModel]) -> dict[str, Ty]:
    """Field name → type, for the fields and computed fields of a pydantic model."""
    return dict(_model_fields(cls))


@functools.lru_cache(maxsize=512)
def _model_fields(cls: type[BaseModel]) -> dict[str, Ty]:  # a class's fields do not change: read them once
    # pydantic resolved each annotation when it built the class (in the namespace the class was
    # defined in, a function's included): read those rather than resolving them again with
    # `typing.get_type_hints`, which took longer and failed on a model defined inside a function.
    found = {name: from_annotation(info.annotation) for name, info in cls.model_fields.items()}
    for name, computed in cls.model_computed_fields.items():
        found[name] = from_annotation(computed.return_type)
    return found


def from_annotation(annotation: Any) -> Ty:  # noqa: C901 - one case per kind of annotation
    """The type of a field from its Python annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return from_annotation(args[0])
    if origin in (Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        return from_annotation(kept[0]) if len(kept) == 1 else ANY
    if origin is typing.Literal:
        return Choice(frozenset(str(a) for a in args)) if all(isinstance(a, str) for a in args) else ANY
    if origin in (list, tuple, set, frozenset, typing.Sequence):
        return ListTy(from_annotation(args[0]) if args else ANY)
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return ModelTy(annotation)
        if issubclass(annotation, enum.Enum):
            return Choice(frozenset(str(m.value) for m in annotation))
        if issubclass(annotation, bool):
            return BOOL
        if issubclass(annotation, (int, float)):
            return NUM
        if issubclass(annotation, str):
            return STR
        if issubclass(annotation, dt.date):
            return DATE
    return ANY


def of_value(value: Any) -> Ty:
    """The type of a literal parameter value."""
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, (int, float)):
        return NUM
    if isinstance(value, str):
        return STR
    if isinstance(value, dt.date):
        return DATE
    if isinstance(value, list):
        item: Ty | None = NEVER
        for each in value:
            item = unify(item, of_value(each)) if item is not None else None
        return ListTy(item if item is not None else ANY)
    if value is None:
        return NONE
    return ANY


def describe(ty: Ty) -> str:
    """A type in words a policymaker reads: `number`, `list of Component`."""
    if ty == ListTy(NEVER):
        return "an empty list"
    if isinstance(ty, Prim):
        return ty.name
    if isinstance(ty, Choice):
        return "one of " + ", ".join(f"`{c}`" for c in sorted(ty.choices))
    if isinstance(ty, ModelTy):
        return f"`{ty.cls.__name__}`"
    return f"list of {describe(ty.item)}"


def _family(ty: Ty) -> Ty:
    return STR if isinstance(ty, Choice) else ty


def compatible(a: Ty, b: Ty) -> bool:
    """Whether values of `a` and `b` may be compared with each other."""
    if ANY in (a, b) or NONE in (a, b) or NEVER in (a, b):
        return True
    fa, fb = _family(a), _family(b)
    if isinstance(fa, ListTy) and isinstance(fb, ListTy):
        return compatible(fa.item, fb.item)
    return fa == fb


def unify(a: Ty, b: Ty) -> Ty | None:
    """The one type that values of `a` and `b` share (the items of one list), or None if there is none.

    `None` items are missing values of the other type; an unknown type stays unknown.
    """
    if a == b:
        return a
    if ANY in (a, b):
        return ANY
    if a in (NEVER, NONE):
        return b
    if b in (NEVER, NONE):
        return a
    if isinstance(a, Choice) and isinstance(b, Choice):
        return Choice(a.choices | b.choices)
    if {_family(a), _family(b)} == {STR}:
        return STR
    if isinstance(a, ListTy) and isinstance(b, ListTy):
        item = unify(a.item, b.item)
        return ListTy(item) if item is not None else None
    return None
