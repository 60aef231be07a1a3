"""Check and lower a package's `invariants` section: statements checked by search, not by evaluation.

Each kind of invariant sees its own names, typed like everything else in the language:

- `subject`: for every decision, the subject's facts, the parameters, values and rules, `stage`
  (rank, slots...), `context`, and `outcome` (one of the stage's outcomes, or `undetermined`);
- `cohort`: `decisions` (one `Decided` record per subject: `id`, `outcome`, `row`, `rank`,
  `in_pool`, `pool_size`, `slots`, `facts`, `rules.<id>`, `values.<name>`, `missing`, and for a
  stage that allocates: `awarded`, `placed`, `allotment`, `track`, `reserved`) and `summary`
  (`stage`, `subjects`, `slots`, `filled`, `open`, `tie_at_cut_off`, `capacity`,
  `capacity_used`, `capacity_left`, `tracks`: each `id`, `reserved`, `filled`, `unfilled`,
  `unfilled_to`, `members`), with parameters and `context`;
- `monotonic`: `before` and `after`, the `Decided` records of one subject before and after
  `change` raises (or lowers) one of the listed numeric facts, others' facts fixed;
- `permutation`: no expression: the decisions must not depend on the order of the subjects.

This module belongs to the check stage: it imports nothing that evaluates.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, create_model

from engine.core.diagnostics import Diagnostic, Span
from engine.language.expr import Node
from engine.language.ir import Invariant
from engine.language.typecheck import Resolver, TypeChecker, suggest
from engine.language.types import BOOL, DATE, NUM, STR, Choice, ListTy, ModelTy, Ty, describe
from engine.source.model import InvariantFile

__all__ = [
    "InvariantScope",
    "lower_invariants",
    "decided_model",
    "summary_model",
    "annotation_of",
    "VIEW_NAMES",
    "UNDETERMINED_OUTCOME",
]

VIEW_NAMES = {
    "subject": ("outcome",),
    "cohort": ("decisions", "summary"),
    "monotonic": ("before", "after"),
    "permutation": (),
}
UNDETERMINED_OUTCOME = "undetermined"
Parse = Callable[[Any, tuple[str | int, ...], str | bool], Node | None]


def annotation_of(ty: Ty) -> Any:
    """A Python annotation for a type of the language (the inverse of `from_annotation`)."""
    simple = {NUM: float, BOOL: bool, STR: str, DATE: dt.date}
    if ty in simple:
        return simple[ty]  # type: ignore[index]
    if isinstance(ty, Choice):
        return Literal[tuple(sorted(ty.choices))]
    if isinstance(ty, ModelTy):
        return ty.cls
    if isinstance(ty, ListTy):
        return list[annotation_of(ty.item)]  # type: ignore[misc]
    return Any


# These models describe what invariants read, for the type checker: nothing validates them, so
# pydantic builds no validator for them unless something does (loading a package stays fast).
_TYPES_ONLY = ConfigDict(defer_build=True)


def _record(name: str, fields: Mapping[str, Ty]) -> type[BaseModel]:
    return _record_of(name, tuple(fields.items()))


@functools.lru_cache(maxsize=64)  # the same for every stage's `Decided`: built once, not once per stage
def _record_of(name: str, fields: tuple[tuple[str, Ty], ...]) -> type[BaseModel]:
    usable = {n: (annotation_of(t) | None, None) for n, t in fields if not hasattr(BaseModel, n)}
    return create_model(name, __config__=_TYPES_ONLY, **usable)  # type: ignore[call-overload, no-any-return]


@functools.lru_cache(maxsize=64)
def decided_model(
    subject: type[BaseModel], outcomes: tuple[str, ...], rules: tuple[str, ...], values: tuple[tuple[str, Ty], ...]
) -> type[BaseModel]:
    """The `Decided` record of a decision, as cohort and monotonic invariants see it."""
    fields: dict[str, Any] = {
        "id": (str, ...),
        "outcome": (Literal[tuple(sorted(set(outcomes) | {UNDETERMINED_OUTCOME}))], ...),
        "row": (int | None, None),
        "rank": (int | None, None),
        "in_pool": (bool | None, None),
        "pool_size": (int | None, None),
        "slots": (int | None, None),
        "facts": (subject, ...),
        "rules": (_record("Rules", {r: BOOL for r in rules}), ...),
        "values": (_record("Values", dict(values)), ...),
        "missing": (list[str], []),
        "awarded": (float | None, None),
        "placed": (bool | None, None),
        "allotment": (Literal["awarded", "partial", "does_not_fit", "no_place", "not_in_pool"] | None, None),
        "track": (str | None, None),
        "reserved": (bool | None, None),
    }
    return create_model("Decided", __config__=_TYPES_ONLY, **fields)  # type: ignore[call-overload, no-any-return]


@functools.lru_cache(maxsize=1)
def summary_model() -> type[BaseModel]:
    """The stage summary, as cohort invariants see it."""
    fields: dict[str, Any] = {
        "stage": (str, ...),
        "subjects": (int, ...),
        "slots": (int | None, None),
        "filled": (int, 0),
        "open": (int | None, None),
        "tie_at_cut_off": (bool, False),
        "capacity": (float | None, None),
        "capacity_used": (float | None, None),
        "capacity_left": (float | None, None),
        "tracks": (list[_TrackRecord], []),
    }
    return create_model("Summary", __config__=_TYPES_ONLY, **fields)


class _TrackRecord(BaseModel):
    """One track of a stage, as cohort invariants see it (`summary.tracks`)."""

    model_config = ConfigDict(defer_build=True)

    id: str
    reserved: int
    filled: int
    unfilled: int
    unfilled_to: Literal["release", "keep_open"]
    members: int  # type: ignore[call-overload, no-any-return]


@dataclass(frozen=True)
class InvariantScope:
    """What the checker knows that invariants need: names, types, stages, and how to parse."""

    resolver: Resolver
    subject: type[BaseModel]
    stages: Mapping[str, tuple[str, ...]]  # stage id -> its outcome names
    rules: tuple[str, ...]
    values: tuple[tuple[str, Ty], ...]
    parse: Parse


def _stages(
    item: InvariantFile, scope: InvariantScope, span: Callable[[tuple[str | int, ...]], Span], out: list[Diagnostic]
) -> tuple[str, ...]:
    for i, name in enumerate(item.stages):
        if name not in scope.stages:
            out.append(
                Diagnostic(
                    "unknown-stage",
                    f"invariant `{item.id}` names stage `{name}`, which is not defined",
                    span(("stages", i)),
                    suggest(name, scope.stages),
                )
            )
    return tuple(s for s in (item.stages or scope.stages) if s in scope.stages)


def _views(kind: str, outcome: Choice, scope: InvariantScope) -> dict[str, tuple[Ty, str]]:
    if kind == "subject":
        return {"outcome": (outcome, "")}
    decided = ModelTy(decided_model(scope.subject, tuple(sorted(outcome.choices)), scope.rules, scope.values))
    if kind == "cohort":
        return {"decisions": (ListTy(decided), ""), "summary": (ModelTy(summary_model()), "")}
    return {"before": (decided, ""), "after": (decided, "")}


def _resolver(kind: str, scope: InvariantScope) -> Resolver:
    if kind == "subject":
        return scope.resolver
    kinds = {n: k for n, k in scope.resolver.kinds.items() if k in ("parameter", "context")}
    return Resolver(kinds, scope.resolver.type_of)


def _change_path(path: str, subject: type[BaseModel]) -> str | None:
    """Why `path` is not a numeric fact of the subject, or None if it is."""
    ty: Ty = ModelTy(subject)
    walked: list[str] = []
    for step in path.split("."):
        fields = ty.fields() if isinstance(ty, ModelTy) else {}
        if step not in fields:
            where = ".".join(walked) or subject.__name__
            hint = suggest(step, fields)
            return f"`{where}` has no field `{step}`" + (f" ({hint})" if hint else "")
        ty, walked = fields[step], walked + [step]
    return None if ty == NUM else f"`{path}` is {describe(ty)}, not a number"


def _lower_one(
    item: InvariantFile, file: Any, path: tuple[str | int, ...], scope: InvariantScope, out: list[Diagnostic]
) -> Invariant | None:
    def span(rest: tuple[str | int, ...]) -> Span:
        return file.source.span(path + rest)  # type: ignore[no-any-return]

    stages = _stages(item, scope, span, out)
    outcomes = frozenset().union(*(scope.stages[s] for s in stages), {UNDETERMINED_OUTCOME})
    known = all(s in scope.stages for s in item.stages)  # after an unknown stage, any outcome may be meant
    outcome = Choice(outcomes) if known else Choice(frozenset().union(*scope.stages.values(), {UNDETERMINED_OUTCOME}))
    checker = TypeChecker(_resolver(item.kind, scope))
    checker.scope.update(_views(item.kind, outcome, scope))
    nodes: dict[str, Node | None] = {}
    for key in ("when", "holds"):
        text = getattr(item, key)
        node = scope.parse(file, path + (key,), text) if text is not None else None
        if node is not None:
            checker.expect(node, BOOL, f"`{key}` of invariant `{item.id}`")
        nodes[key] = node
    out.extend(checker.diagnostics)
    change = tuple(item.change.facts) if item.change else ()
    for i, fact in enumerate(change):
        problem = _change_path(fact, scope.subject)
        if problem is not None:
            out.append(
                Diagnostic(
                    "bad-change",
                    f"invariant `{item.id}` cannot change `{fact}`: {problem}",
                    span(("change", "facts", i)),
                )
            )
    if any(getattr(item, k) is not None and nodes[k] is None for k in ("when", "holds")) or checker.diagnostics:
        return None
    uses = frozenset(f"{u.kind}:{u.name}" for u in checker.uses) | {f"fact:{fact}" for fact in change}
    direction = item.change.direction if item.change else "increase"
    return Invariant(
        id=item.id,
        title=item.title,
        reference=item.reference,
        kind=item.kind,
        stages=stages,
        when=nodes["when"],
        holds=nodes["holds"],
        change=change,
        direction=direction,
        uses=uses,
        span=span(()),
    )


def lower_invariants(
    entries: Sequence[tuple[InvariantFile, Any, tuple[str | int, ...]]], scope: InvariantScope
) -> tuple[list[Invariant], list[Diagnostic]]:
    """Type-check every invariant against its views; report every problem at once."""
    found: list[Diagnostic] = []
    lowered: list[Invariant] = []
    seen: dict[str, Span] = {}
    for item, file, path in entries:
        span = file.source.span(path + ("id",))
        if item.id in seen:
            found.append(
                Diagnostic(
                    "duplicate-name",
                    f"invariant `{item.id}` is defined twice",
                    span,
                    labels=((seen[item.id], "first defined here"),),
                )
            )
            continue
        seen[item.id] = span
        invariant = _lower_one(item, file, path, scope, found)
        if invariant is not None:
            lowered.append(invariant)
    return lowered, found
