"""Hypothesis strategies for facts, derived from a package's fact models and its own cut-offs.

Nothing here knows a programme: every strategy is read from the pydantic models the package
names. `Literal` and `Enum` fields draw their choices; numbers respect `ge`/`gt`/`le`/`lt` and
favour the bounds and the values near the policy's cut-offs (every numeric literal and parameter
value, ± a small delta); text draws the policy's own string literals that fit the field's pattern
and lengths; `Optional` fields are sometimes missing; lists are short. Models with validators are
drawn, checked, and repaired (optional fields all absent, or all present) before being rejected.
Whole cohorts (and subjects seeded from the package's tests) are drawn by `engine.verification.search_cohorts`.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import string
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Union

from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from engine.language.expr import Const, walk
from engine.language.ir import PolicyIR, Scale, Table
from engine.language.ranges import Bounds

__all__ = [
    "Hints",
    "Focus",
    "Bounds",
    "SearchUnsupported",
    "hints_of",
    "focus_of",
    "field_strategy",
    "minimal",
    "model_data",
    "valid",
    "same",
]


class SearchUnsupported(Exception):
    """A required fact field has a type no strategy can be derived for."""


@dataclass(frozen=True)
class Hints:
    """The policy's own cut-offs: numbers, text and dates that appear in it."""

    numbers: tuple[float, ...] = ()
    texts: tuple[str, ...] = ()
    dates: tuple[dt.date, ...] = ()


def _expressions(ir: PolicyIR) -> Iterable[Any]:
    yield from (v.expr for v in ir.values.values())
    yield from (r.when for r in ir.rules.values())
    for stage in ir.stages.values():
        yield from [stage.pool, *(k.expr for k in stage.rank_by), *(r.when for r in stage.outcomes)]
        if stage.slots is not None:
            yield stage.slots
    for invariant in ir.invariants:
        yield from (n for n in (invariant.when, invariant.holds) if n is not None)


def hints_of(ir: PolicyIR) -> Hints:
    """Every number, text and date the policy mentions (literals and parameter values)."""
    found: list[Any] = [n.value for e in _expressions(ir) for n in walk(e) if isinstance(n, Const)]
    dates: list[dt.date] = []
    for parameter in ir.parameters.values():
        for since, value in parameter.values:
            found += _parameter_hints(value)
            dates += [since] if since is not None else []
    for stage in ir.stages.values():
        dates += [d for d in stage.dates or () if d is not None]
    numbers = sorted({float(v) for v in found if isinstance(v, (int, float)) and not isinstance(v, bool)})
    texts = sorted({v for v in found if isinstance(v, str)})
    dates += [v for v in found if isinstance(v, dt.date)]
    return Hints(tuple(numbers), tuple(texts), tuple(sorted(set(dates))))


def _parameter_hints(value: Any) -> list[Any]:
    """What a parameter value tells the search: a table's keys and values (so keys are drawn from its
    rows, and amounts near its caps), a scale's thresholds, a list's items."""
    if isinstance(value, Table):
        return [k for keys, _ in value.rows for k in keys] + [v for _, v in value.rows] + [value.otherwise]
    if isinstance(value, Scale):
        return [threshold for threshold, _ in value.brackets]
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Focus:
    """The fact paths the policy reads (`model.components.kind`): only those are drawn in full.

    A field the policy never reads is left out when it may be, or given its simplest value.
    """

    used: frozenset[str] | None = None  # None: every field
    prefix: str = ""

    def at(self, name: str) -> Focus:
        return Focus(self.used, f"{self.prefix}.{name}" if self.prefix else name)

    def wanted(self) -> bool:
        path = self.prefix
        return self.used is None or any(
            u == path or u.startswith(path + ".") or path.startswith(u + ".") for u in self.used
        )


def focus_of(ir: PolicyIR) -> tuple[Focus, Focus]:
    """(subject, context) focus: the fact paths read by the package's values, rules, stages and invariants."""
    names = [str(a.get("name", "")) for n, a in ir.graph.nodes(data=True) if a.get("kind") in ("fact", "context")]
    names += [u.split(":", 1)[1] for i in ir.invariants for u in i.uses if u.startswith(("fact:", "context:"))]
    paths = {n.replace("[]", "") for n in names}
    subject = frozenset(p for p in paths if not p.startswith("context.") and p != "context")
    context = frozenset(p.removeprefix("context.") for p in paths if p.startswith("context."))
    return Focus(subject), Focus(context if "context" not in paths else None)


def _numbers(kind: type, bounds: Bounds, hints: Hints) -> st.SearchStrategy[Any]:
    cuts = [c for c in hints.numbers if abs(c) < 1e12]
    lo = (
        bounds.ge
        if bounds.ge is not None
        else bounds.gt
        if bounds.gt is not None
        else min([0.0] + [c - 1 for c in cuts])
    )
    hi = (
        bounds.le
        if bounds.le is not None
        else bounds.lt
        if bounds.lt is not None
        else max([10.0] + [2 * abs(c) for c in cuts])
    )
    step = 1.0 if kind is int else 0.01
    near = [x for c in cuts for x in (c - 1, c - step, c, c + step, c + 1)]
    special = sorted({float(x) for x in [lo, hi, (lo + hi) / 2, *near] if lo <= x <= hi and bounds.admits(float(x))})
    if kind is int:
        whole = sorted({int(x) for x in special if float(x).is_integer()})
        lo_i, hi_i = int(-(-lo // 1)), int(hi // 1)
        ints = [st.integers(lo_i, min(hi_i, lo_i + 12)), st.integers(lo_i, hi_i)]
        drawn = st.one_of(st.sampled_from(whole or [lo_i]), *ints)
        return (
            drawn.filter(lambda v: bounds.admits(float(v))) if bounds.gt is not None or bounds.lt is not None else drawn
        )
    high = st.floats(lo + 0.6 * (hi - lo), hi).map(lambda v: min(max(round(v, 2), lo), hi))
    anywhere = st.floats(lo, hi).map(lambda v: min(max(round(v, 2), lo), hi))
    drawn = st.one_of(high, st.sampled_from(special or [lo]), anywhere, high.map(same))
    return drawn.filter(bounds.admits) if bounds.gt is not None or bounds.lt is not None else drawn


def _texts(name: str, bounds: Bounds, hints: Hints) -> st.SearchStrategy[str]:
    def fits(text: str) -> bool:
        size = len(text) >= (bounds.min_length or 0) and (bounds.max_length is None or len(text) <= bounds.max_length)
        return size and (bounds.pattern is None or re.search(bounds.pattern, text) is not None)

    pool = [t for t in (*hints.texts, name) if fits(t)]
    if bounds.pattern is not None:
        other: st.SearchStrategy[str] = st.from_regex(bounds.pattern, fullmatch=True).filter(fits)
    else:
        size = max(bounds.min_length or 1, 1)
        other = st.text(string.ascii_lowercase, min_size=size, max_size=max(size, min(bounds.max_length or 8, 8)))
    return st.one_of(st.sampled_from(pool), other) if pool else other


def _dates(hints: Hints) -> st.SearchStrategy[dt.date]:
    near = sorted({d + dt.timedelta(days=k) for d in hints.dates for k in (-1, 0, 1)})
    wide = st.dates(dt.date(2000, 1, 1), dt.date(2040, 12, 31))
    return st.one_of(st.sampled_from(near), wide) if near else wide


def _optional(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Missing about one time in eight (drawn last, so counterexamples keep realistic facts)."""
    return st.one_of(*[inner.map(same) for _ in range(7)], st.none())  # distinct objects: one_of drops repeats


def same(value: Any) -> Any:
    return value


def minimal(annotation: Any, metadata: Iterable[Any], name: str, hints: Hints) -> Any:  # noqa: C901
    """The simplest valid value of a field the policy never reads (SearchUnsupported if none is obvious)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    bounds = Bounds.of(metadata)
    if origin is typing.Annotated:
        return minimal(args[0], [*metadata, *args[1:]], name, hints)
    if origin in (Union, types.UnionType):
        if type(None) in args:
            return None
        return minimal(args[0], metadata, name, hints)
    if origin is typing.Literal:
        return args[0]
    if origin in (list, tuple, set, frozenset, typing.Sequence) and not bounds.min_length:
        return []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        data = {
            n: minimal(i.annotation, i.metadata, n, hints)
            for n, i in annotation.model_fields.items()
            if i.is_required()
        }
        if _has_validators(annotation) and not valid(annotation, data):
            raise SearchUnsupported(name)
        return data
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return next(iter(annotation)).value
    if annotation is bool:
        return False
    if annotation in (int, float):
        low = (
            bounds.ge
            if bounds.ge is not None
            else (bounds.gt + (1 if annotation is int else 0.01))
            if bounds.gt is not None
            else 0
        )
        if bounds.admits(float(low)):
            return annotation(low)
    if annotation is str:
        for text in (name, "x", "X", "XX", "0", *hints.texts):
            if len(text) >= (bounds.min_length or 0) and (bounds.pattern is None or re.search(bounds.pattern, text)):
                return text
    if annotation is dt.date:
        return hints.dates[0] if hints.dates else dt.date(2000, 1, 1)
    raise SearchUnsupported(name)


def field_strategy(
    annotation: Any, metadata: Iterable[Any], name: str, hints: Hints, depth: int = 0, focus: Focus = Focus()
) -> st.SearchStrategy[Any]:  # noqa: C901
    """A strategy for one field's values (plain data, as a fact file holds them)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return field_strategy(args[0], [*metadata, *args[1:]], name, hints, depth, focus)
    if origin in (Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        inner = st.one_of(*(field_strategy(a, metadata, name, hints, depth, focus) for a in kept))
        return _optional(inner) if len(kept) < len(args) else inner
    if origin is typing.Literal:
        return st.sampled_from(args)
    bounds = Bounds.of(metadata)
    if origin in (list, tuple, set, frozenset, typing.Sequence) or annotation in (list, tuple):
        item = field_strategy(args[0], [], name, hints, depth + 1, focus) if args else st.none()
        low = bounds.min_length or 0
        return st.lists(
            item, min_size=low, max_size=max(low, min(bounds.max_length or 3, low + (3 if depth < 2 else 1)))
        )
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if depth > 6:
            raise SearchUnsupported(f"`{name}` nests models too deeply")
        return model_data(annotation, hints, depth=depth + 1, focus=focus)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return st.sampled_from([m.value for m in annotation])
    if annotation is bool:
        return st.booleans()
    if annotation in (int, float):
        return _numbers(annotation, bounds, hints)
    if annotation is str:
        return _texts(name, bounds, hints)
    if annotation is dt.date:
        return _dates(hints)
    raise SearchUnsupported(f"no strategy for field `{name}` of type `{getattr(annotation, '__name__', annotation)}`")


def _has_validators(model: type[BaseModel]) -> bool:
    decorators = model.__pydantic_decorators__
    return bool(decorators.model_validators or decorators.field_validators)


def valid(model: type[BaseModel], data: dict[str, Any]) -> bool:
    try:
        model.model_validate(data)
    except ValidationError:
        return False
    return True


def _unread(info: FieldInfo, name: str, hints: Hints) -> st.SearchStrategy[Any] | None:
    """A field the policy never reads: left out, or its simplest value (None: draw it after all)."""
    if not info.is_required():
        return st.just(None)
    try:
        return st.just(minimal(info.annotation, info.metadata, name, hints))
    except SearchUnsupported:
        return None


def model_data(
    model: type[BaseModel],
    hints: Hints,
    *,
    exclude: frozenset[str] = frozenset(),
    depth: int = 0,
    focus: Focus = Focus(),
) -> st.SearchStrategy[dict[str, Any]]:
    """Plain data for one instance of `model` (fields in `exclude` are left out, so not validated)."""
    full: dict[str, st.SearchStrategy[Any]] = {}
    present: dict[str, st.SearchStrategy[Any]] = {}
    required = {name for name, info in model.model_fields.items() if info.is_required()}
    for name, info in model.model_fields.items():
        here = focus.at(name)
        unread = None if name in exclude or here.wanted() else _unread(info, name, hints)
        if name in exclude or unread is not None:
            full.update({name: unread} if unread is not None else {})
            continue
        try:
            full[name] = field_strategy(info.annotation, info.metadata, name, hints, depth, here)
        except SearchUnsupported:
            if info.is_required():
                raise
            continue
        kept = [a for a in typing.get_args(info.annotation) if a is not type(None)]
        if typing.get_origin(info.annotation) in (Union, types.UnionType) and len(kept) == 1:
            present[name] = field_strategy(kept[0], info.metadata, name, hints, depth, here)
    check = not exclude and _has_validators(model)

    def tidy(data: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in data.items() if v is not None or k in required}

    @st.composite
    def draw(draw_: Callable[[st.SearchStrategy[Any]], Any]) -> dict[str, Any]:
        data = tidy({name: draw_(s) for name, s in full.items()})
        if not check or valid(model, data):
            return data
        absent = tidy({k: (None if k in present else v) for k, v in data.items()})
        if valid(model, absent):
            return absent
        filled = dict(data, **{k: draw_(s) for k, s in present.items()})
        if valid(model, filled):
            return filled
        return draw_(st.nothing())  # type: ignore[no-any-return]

    return draw()
