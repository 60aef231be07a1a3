"""Fact schema files: a package's facts declared as data (records and fields), turned into pydantic models.

A package may describe its facts in a YAML file instead of Python (`facts: {schema: facts.yaml,
subject: Applicant, cohort: Cohort, ...}` in `policy.yaml`). Reading one runs no code: the file is
validated against the models below, then each record becomes a frozen pydantic model with
`extra="forbid"` (`pydantic.create_model`). Every problem is a diagnostic located in the schema
file itself: an unknown type (with a suggestion), bounds on a field that is not a number, choices
on a field that is not text, a record that contains itself.

    records:
      Applicant:
        description: One application to the call
        fields:
          id: {type: text, fixed: true}
          score: {type: number, min: 0, max: 100, optional: true}
          kind: {type: text, choices: [sme, large_firm]}
          partners: {type: Partner, list: true}
          open_results: boolean          # a type alone
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import sys
import types
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from engine.core.diagnostics import Diagnostic
from engine.source.document import SourceMap

__all__ = [
    "SCALAR_TYPES",
    "FieldSpec",
    "RecordSpec",
    "FactSchemaFile",
    "FactSchemaSource",
    "build_models",
    "SCHEMA_MODULE",
    "fact_schema_json_schema",
]

SCALAR_TYPES: dict[str, type] = {"text": str, "integer": int, "number": float, "boolean": bool, "date": dt.date}
SCHEMA_MODULE = "engine.fact_schema"  # the `__module__` of models built from a schema file (no Python module)
RECORD_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"
FIELD_PATTERN = r"^[a-z_][a-z0-9_]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FieldSpec(_Model):
    """One field of a record: its type, and what a value must be."""

    type: str = Field(description="text, integer, number, boolean, date, or the name of a record")
    description: str | None = None
    optional: bool = Field(False, description="the fact may be missing (a rule that needs it is undetermined)")
    list_: bool = Field(False, alias="list", description="a list of values of `type`")
    fixed: bool = Field(False, description="a fact a subject cannot change (why-not never proposes changing it)")
    choices: list[str] | None = Field(None, min_length=1, description="the only values a text field may take")
    min: float | None = Field(None, description="the smallest value allowed (inclusive)")
    max: float | None = Field(None, description="the largest value allowed (inclusive)")
    above: float | None = Field(None, description="values must be greater than this")
    below: float | None = Field(None, description="values must be less than this")
    min_items: int | None = Field(None, ge=0, description="a list holds at least this many items")
    max_items: int | None = Field(None, ge=0, description="a list holds at most this many items")

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        low = self.min if self.min is not None else self.above
        high = self.max if self.max is not None else self.below
        if self.min is not None and self.above is not None:
            raise ValueError("give `min` or `above`, not both")
        if self.max is not None and self.below is not None:
            raise ValueError("give `max` or `below`, not both")
        if low is not None and high is not None and low > high:
            raise ValueError(f"the lower bound {low:g} is above the upper bound {high:g}")
        if (self.min_items is not None or self.max_items is not None) and not self.list_:
            raise ValueError("`min_items` and `max_items` go with `list: true`")
        return self


class RecordSpec(_Model):
    """A record: named fields, each with its type."""

    description: str | None = None
    fields: dict[str, FieldSpec] = Field(min_length=1)

    @field_validator("fields", mode="before")
    @classmethod
    def _type_alone(cls, value: Any) -> Any:
        """`open_results: boolean` is short for `open_results: {type: boolean}`."""
        if isinstance(value, dict):
            return {k: {"type": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("fields")
    @classmethod
    def _field_names(cls, value: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        for name in value:
            if not re.fullmatch(FIELD_PATTERN, name):
                raise ValueError(f"field name `{name}` must be lowercase letters, digits and `_`")
        return value


class FactSchemaFile(_Model):
    """A fact schema file: records by name (`Applicant`, `Cohort`, ...)."""

    description: str | None = None
    records: dict[str, RecordSpec] = Field(min_length=1)

    @field_validator("records")
    @classmethod
    def _record_names(cls, value: dict[str, RecordSpec]) -> dict[str, RecordSpec]:
        for name in value:
            if not re.fullmatch(RECORD_PATTERN, name):
                raise ValueError(f"record name `{name}` must start with a letter (letters, digits and `_`)")
            if name in SCALAR_TYPES:
                raise ValueError(f"record name `{name}` is the name of a built-in type")
        return value


@dataclass(frozen=True)
class FactSchemaSource:
    """A schema file as read: its name in the package, its data, its source map and its models."""

    name: str
    schema: FactSchemaFile
    source: SourceMap
    models: dict[str, type[BaseModel]]


class _Fact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _suggest(name: str, candidates: list[str]) -> str | None:
    found = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f"did you mean `{found[0]}`?" if found else None


def _references(schema: FactSchemaFile) -> dict[str, list[str]]:
    return {
        name: [f.type for f in record.fields.values() if f.type in schema.records]
        for name, record in schema.records.items()
    }


def _cycle(schema: FactSchemaFile) -> list[str] | None:
    """Records that contain themselves through their fields, in order, or None."""
    refs = _references(schema)
    state: dict[str, int] = {}
    trail: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        trail.append(name)
        for target in refs[name]:
            if state.get(target) == 1:
                return trail[trail.index(target) :] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        trail.pop()
        state[name] = 2
        return None

    for name in schema.records:
        if name not in state:
            found = visit(name)
            if found:
                return found
    return None


def _field_problems(schema: FactSchemaFile, source: SourceMap) -> list[Diagnostic]:
    found = []
    known = list(SCALAR_TYPES) + list(schema.records)
    for record_name, record in schema.records.items():
        for field_name, spec in record.fields.items():
            where = ("records", record_name, "fields", field_name)
            if spec.type not in known:
                found.append(
                    Diagnostic(
                        "unknown-type",
                        f"field `{record_name}.{field_name}` has an unknown type `{spec.type}`",
                        source.span(where + ("type",)),
                        _suggest(spec.type, known) or f"the types are {', '.join(known)}",
                    )
                )
                continue
            numeric = spec.type in ("integer", "number")
            if not numeric and any(b is not None for b in (spec.min, spec.max, spec.above, spec.below)):
                found.append(
                    Diagnostic(
                        "bad-field",
                        f"field `{record_name}.{field_name}` has bounds, but its type `{spec.type}` is not a number",
                        source.span(where),
                    )
                )
            if spec.choices is not None and spec.type != "text":
                found.append(
                    Diagnostic(
                        "bad-field",
                        f"field `{record_name}.{field_name}` has choices, but its type `{spec.type}` is not text",
                        source.span(where + ("choices",)),
                    )
                )
    return found


def _annotation(spec: FieldSpec, models: dict[str, type[BaseModel]]) -> tuple[Any, Any]:
    """The annotation and the `Field` of one field."""
    base: Any
    if spec.choices is not None:
        base = Literal[tuple(spec.choices)]  # type: ignore[valid-type]
    elif spec.type in SCALAR_TYPES:
        base = SCALAR_TYPES[spec.type]
    else:
        base = models[spec.type]
    bounds = {"ge": spec.min, "le": spec.max, "gt": spec.above, "lt": spec.below}
    bounds = {k: (int(v) if spec.type == "integer" and v == int(v) else v) for k, v in bounds.items() if v is not None}
    options: dict[str, Any] = {"json_schema_extra": {"fixed": True}} if spec.fixed else {}
    if spec.description:
        options["description"] = spec.description
    if spec.list_:
        item = base if not bounds else _bounded(base, bounds)
        annotation: Any = list[item]  # type: ignore[valid-type]
        sizes = {"min_length": spec.min_items, "max_length": spec.max_items}
        options.update({k: v for k, v in sizes.items() if v is not None})
    else:
        annotation = base
        options.update(bounds)
    if spec.optional:
        return annotation | None, Field(None, **options)
    return annotation, Field(..., **options)


def _bounded(base: Any, bounds: dict[str, Any]) -> Any:
    from typing import Annotated

    return Annotated[base, Field(**bounds)]


def build_models(
    schema: FactSchemaFile, source: SourceMap, digest: str = ""
) -> tuple[dict[str, type[BaseModel]], list[Diagnostic]]:
    """Each record of `schema` as a pydantic model (records it uses first), or the problems found.

    With the `digest` of the file's bytes, the models live in a module of their own named after it
    (`engine.fact_schema.s<digest>`, registered in `sys.modules`), so that their instances pickle
    (to and from worker processes, which build the same module from the same bytes) and the same
    bytes always give the same classes.
    """
    module_name = f"{SCHEMA_MODULE}.s{digest[:32]}" if digest else SCHEMA_MODULE
    known = sys.modules.get(module_name) if digest else None
    if known is not None:
        return dict(getattr(known, "MODELS", {})), []
    problems = _field_problems(schema, source)
    cycle = _cycle(schema) if not problems else None
    if cycle:
        problems.append(
            Diagnostic(
                "record-cycle",
                f"record `{cycle[0]}` contains itself: {' → '.join(cycle)}",
                source.span(("records", cycle[0]), key=True),
                "a fact file is a tree: a record cannot hold itself, directly or through others",
            )
        )
    if problems:
        return {}, problems
    models: dict[str, type[BaseModel]] = {}
    order = _order(schema)
    for name in order:
        record = schema.records[name]
        fields = {n: _annotation(spec, models) for n, spec in record.fields.items()}
        model = create_model(  # type: ignore[call-overload]
            name, __base__=_Fact, __module__=module_name, __doc__=record.description, **fields
        )
        models[name] = model
    if digest:
        module = types.ModuleType(module_name, f"fact models built from a fact schema file ({digest})")
        for name, model in models.items():
            setattr(module, name, model)
        module.MODELS = dict(models)  # type: ignore[attr-defined]
        registered = sys.modules.setdefault(module_name, module)  # a thread that built them first wins
        models = dict(getattr(registered, "MODELS", models))
    return models, []


def _order(schema: FactSchemaFile) -> list[str]:
    refs = _references(schema)
    done: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        for target in refs[name]:
            visit(target)
        done.append(name)

    for name in schema.records:
        visit(name)
    return done


def fact_schema_json_schema() -> dict[str, Any]:
    """The JSON Schema of a fact schema file, for editors (a field may be a type name alone)."""
    schema = FactSchemaFile.model_json_schema(by_alias=True)
    schema["title"] = "Fact schema file of a policy package (records and their fields)"
    fields = schema["$defs"]["RecordSpec"]["properties"]["fields"]
    alone = {"type": "string", "description": "a type alone: `open_results: boolean`"}
    fields["additionalProperties"] = {"anyOf": [fields["additionalProperties"], alone]}
    return schema
