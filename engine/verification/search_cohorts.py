"""Hypothesis strategies for whole fact files (cohorts) of a package, for the invariant search.

A cohort is drawn for one of the package's stages, as of a date worth deciding it on (the first
day every parameter it needs is in force, and the days around each change of a parameter), with
its context naming both. Its subjects are drawn from the fact model (`engine.verification.search`), or, given
seeds (the subjects of the package's own test cases), as one of those with a few facts drawn anew:
the tests hold the facts a policymaker found interesting, and the search explores around them.
Some cohorts are rivals: one subject and near copies of it, so that ties and cut-offs are met.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel

from engine.language.analysis import decidable_from, stage_parameters
from engine.language.ir import PolicyIR
from engine.verification.search import (
    Bounds,
    Focus,
    Hints,
    SearchUnsupported,
    field_strategy,
    focus_of,
    model_data,
    same,
    valid,
)

__all__ = ["NAMES", "as_of_dates", "cohort_data"]

NAMES = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta")


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def as_of_dates(ir: PolicyIR, stage: str) -> list[dt.date]:
    """Dates worth deciding `stage` on: its first decidable day and around each change after it."""
    declared = ir.stages[stage].dates
    start = declared[0] if declared else decidable_from(ir, stage)
    until = declared[1] if declared else None
    changes = {d for p in stage_parameters(ir, stage) for d, _ in ir.parameters[p].values if d is not None}
    candidates = {start} | changes | {d - dt.timedelta(days=1) for d in changes}
    if until is not None:
        candidates.add(until)
    found = sorted(
        d for d in candidates if d is not None and (start is None or d >= start) and (until is None or d <= until)
    )
    return found or [start or dt.date(2000, 1, 1)]


def _ids(model: type[BaseModel], field: str, count: int) -> list[str]:
    """Readable, distinct subject ids that the id field's pattern accepts."""
    pattern = Bounds.of(model.model_fields[field].metadata).pattern if field in model.model_fields else None
    candidates = [
        *NAMES,
        *(f"s{i}" for i in range(count)),
        *(f"S{i}" for i in range(count)),
        *(f"{i}" for i in range(count)),
    ]
    found = [n for n in candidates if pattern is None or re.search(pattern, n)][:count]
    if len(found) < count:
        raise SearchUnsupported(f"no subject ids fit the pattern of `{field}`")
    return found


Node_ = tuple[tuple[str | int, ...], Any, list[Any], str]


def _nodes(data: dict[str, Any], model: type[BaseModel], focus: Focus, path: tuple[str | int, ...] = ()) -> list[Node_]:
    """Every field of `data` the policy reads (and every item of its lists): what may be changed."""
    found: list[Node_] = []
    for name, info in model.model_fields.items():
        here = focus.at(name)
        if not here.wanted():
            continue
        found.append((path + (name,), info.annotation, list(info.metadata), here.prefix))
        value, inner = data.get(name), _inner_model(info.annotation)
        if isinstance(value, dict) and inner is not None:
            found += _nodes(value, inner, here, path + (name,))
        item = _list_item(info.annotation)
        for i, element in enumerate(value if isinstance(value, list) else []):
            found.append((path + (name, i), item, [], here.prefix))
            if isinstance(element, dict) and _inner_model(item) is not None:
                found += _nodes(element, _inner_model(item), here, path + (name, i))  # type: ignore[arg-type]
    return found


def _list_item(annotation: Any) -> Any:
    for candidate in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(candidate) in (list, tuple, set, frozenset, typing.Sequence):
            return (typing.get_args(candidate) or (Any,))[0]
    return Any


def _put(data: Any, path: tuple[str | int, ...], value: Any) -> None:
    for step in path[:-1]:
        data = data[step]
    if value is None and isinstance(path[-1], str):
        data.pop(path[-1], None)
    else:
        data[path[-1]] = value


def _perturbed(
    seeds: Sequence[dict[str, Any]], model: type[BaseModel], hints: Hints, focus: Focus
) -> st.SearchStrategy[dict[str, Any]]:
    """A known subject (from the package's tests) with up to two of its facts drawn anew."""
    cache: dict[str, st.SearchStrategy[Any]] = {}

    def strategy(node: Node_) -> st.SearchStrategy[Any]:
        path, annotation, metadata, dotted = node
        key = f"{dotted}#{isinstance(path[-1], int)}"
        if key not in cache:
            cache[key] = field_strategy(annotation, metadata, str(path[-1]), hints, 1, Focus(focus.used, dotted))
        return cache[key]

    @st.composite
    def draw(draw_: Callable[[st.SearchStrategy[Any]], Any]) -> dict[str, Any]:
        seed = draw_(st.sampled_from(seeds))
        data = copy.deepcopy(seed)
        for _ in range(draw_(st.integers(0, 2))):
            nodes = _nodes(data, model, focus)
            if not nodes:
                break
            node = draw_(st.sampled_from(nodes))
            _put(data, node[0], draw_(strategy(node)))
        return data if valid(model, data) else seed

    return draw()


def _rivals(
    one: dict[str, Any], model: type[BaseModel], hints: Hints, focus: Focus, most: int
) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Several subjects close to one another (each `one` with a fact or two redrawn): ties and cut-offs."""
    close = _perturbed([one], model, hints, focus)
    return st.integers(2, max(most, 2)).flatmap(lambda n: st.lists(close, min_size=n, max_size=n))


def cohort_data(
    ir: PolicyIR, hints: Hints, stages: Iterable[str], max_subjects: int = 5, seeds: Sequence[dict[str, Any]] = ()
) -> st.SearchStrategy[tuple[str, dt.date, dict[str, Any]]]:
    """(stage, as-of date, cohort data) for one of `stages`; the context names both when it can.

    Subjects are drawn afresh from the fact model, or, given `seeds` (subjects of the package's
    own test cases, ids left out), as one of those with a few facts drawn anew.
    """
    schema = ir.schema
    cohort_fields = schema.cohort.model_fields
    context = _inner_model(cohort_fields[schema.context_field].annotation) if schema.context_field else None
    fixed = frozenset(f for f in (schema.stage_field, schema.date_field) if f is not None)
    subject_focus, context_focus = focus_of(ir)
    contexts = model_data(context, hints, exclude=fixed, focus=context_focus) if context is not None else st.just({})
    subject = model_data(schema.subject, hints, exclude=frozenset({schema.id_field}), focus=subject_focus)
    if seeds:
        known = _perturbed(seeds, schema.subject, hints, subject_focus)
        subject = st.one_of(known, known.map(same), subject)
    rest = model_data(
        schema.cohort,
        hints,
        exclude=frozenset(f for f in (schema.subjects_field, schema.context_field) if f),
        focus=Focus(frozenset()),
    )
    ids = _ids(schema.subject, schema.id_field, max_subjects)

    def build(
        stage: str, as_of: dt.date, ctx: dict[str, Any], people: list[dict[str, Any]], other: dict[str, Any]
    ) -> tuple[str, dt.date, dict[str, Any]]:
        data: dict[str, Any] = {}
        if schema.context_field is not None:
            data[schema.context_field] = {
                **({schema.stage_field: stage} if schema.stage_field else {}),
                **({schema.date_field: as_of} if schema.date_field else {}),
                **ctx,
            }
        data[schema.subjects_field] = [{schema.id_field: ids[i], **p} for i, p in enumerate(people)]
        return stage, as_of, {**data, **other}

    def for_stage(stage: str) -> st.SearchStrategy[tuple[str, dt.date, dict[str, Any]]]:
        apart = st.integers(1, max_subjects).flatmap(lambda n: st.lists(subject, min_size=n, max_size=n))
        people = st.one_of(
            apart,
            apart.map(same),
            apart.map(same),
            subject.flatmap(lambda one: _rivals(one, schema.subject, hints, subject_focus, max_subjects)),
        )
        return st.builds(build, st.just(stage), st.sampled_from(as_of_dates(ir, stage)), contexts, people, rest)

    return st.sampled_from(sorted(stages)).flatmap(for_stage)
