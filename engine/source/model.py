"""The rule-file format: pydantic models that mirror the YAML one-to-one.

`extra="forbid"` everywhere: an unknown key is an error at its line and column. These models are
the file format only; the checker lowers them into the engine's own IR (`engine.language.ir`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    PlainValidator,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from engine.core.i18n import Text

__all__ = [
    "ParameterFile",
    "TableFile",
    "ScaleFile",
    "BracketFile",
    "ValueFile",
    "RuleFile",
    "Messages",
    "RankKeyFile",
    "OpenSlotsFile",
    "OutcomeRowFile",
    "GrantFile",
    "TrackFile",
    "StageFile",
    "StageDatesFile",
    "ChangeFile",
    "InvariantFile",
    "FactsFile",
    "SectionsFile",
    "ManifestFile",
    "NAME_PATTERN",
    "LocalText",
]

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
ParamScalar = bool | int | FiniteFloat | str | dt.date | list[str] | list[int] | list[FiniteFloat]  # no .inf, no .nan
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Expression = str | bool
_LANGUAGE = re.compile(r"^[a-z]{2}$")


def _local_text(value: object) -> str:
    """Text for people: a string (English), or one per language `{en: ..., ko: ...}` lowered to `Text`."""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict) or not value:
        raise ValueError("expected text, or text per language such as `{en: ..., ko: ...}`")
    for lang, text in value.items():
        if not isinstance(lang, str) or not _LANGUAGE.match(lang):
            raise ValueError(f"`{lang}` is not a two-letter language code (e.g. `en`, `ko`)")
        if not isinstance(text, str):
            raise ValueError(f"the `{lang}` text must be a string")
    if "en" not in value:
        raise ValueError("text per language needs its English (`en`), the text every reader can fall back to")
    return Text(value["en"], value)


_TEXT_SCHEMA = {
    "anyOf": [
        {"type": "string"},
        {"type": "object", "additionalProperties": {"type": "string"}, "required": ["en"]},
    ]
}
# A title, message or label for people: a plain string, or `{en: ..., ko: ...}` (English required).
LocalText = Annotated[str, PlainValidator(_local_text), WithJsonSchema(_TEXT_SCHEMA)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


TableKey = StrictInt | StrictStr  # a row's key: a choice of a category, or a whole number (e.g. a household size)
Cell = bool | int | FiniteFloat | str | dt.date


class TableFile(_Model):
    """Values keyed by one category (`{company: 80.0}`) or two (`{company: {h100: 4}}`), used as `name(key)`.

    `otherwise` is the value for a key without a row; without it such a key makes the result undetermined.
    """

    values: dict[TableKey, Cell | dict[TableKey, Cell]] = Field(min_length=1)
    otherwise: Cell | None = None


class BracketFile(_Model):
    """One bracket of a scale: from `threshold` (inclusive) up to the next bracket's, at `rate`."""

    threshold: StrictInt | FiniteFloat
    rate: StrictInt | FiniteFloat


class ScaleFile(_Model):
    """Brackets of an amount: `marginal` (each slice at its bracket's rate, summed) or `single_rate`
    (the whole amount at the rate of the bracket it falls in), used as `name(amount)`."""

    kind: Literal["marginal", "single_rate"]
    brackets: list[BracketFile] = Field(min_length=1)


_PARAMETER_SHAPES = ("value", "values", "table", "tables", "scale", "scales")


class ParameterFile(_Model):
    """A named value with its legal reference: `value`, `table` or `scale`, or their dated forms
    `values`, `tables`, `scales` (each date a whole value, table or scale)."""

    title: LocalText
    reference: str
    unit: str | None = None
    description: str | None = None
    value: ParamScalar | None = None
    values: dict[dt.date, ParamScalar] | None = None
    table: TableFile | None = None
    tables: dict[dt.date, TableFile] | None = None
    scale: ScaleFile | None = None
    scales: dict[dt.date, ScaleFile] | None = None

    @model_validator(mode="after")
    def _one_of_value_or_values(self) -> ParameterFile:
        given = [shape for shape in _PARAMETER_SHAPES if getattr(self, shape) is not None]
        if given == ["value", "values"]:
            raise ValueError("give exactly one of `value` or `values` (dated)")
        if len(given) != 1:
            shown = ", ".join(f"`{s}`" for s in _PARAMETER_SHAPES)
            has = f" (this has {' and '.join(f'`{g}`' for g in given)})" if given else ""
            raise ValueError(f"give exactly one of {shown}{has}")
        dated = getattr(self, given[0])
        if given[0].endswith("s") and not dated:
            raise ValueError(f"`{given[0]}` needs at least one dated {given[0][:-1]}")
        return self

    @property
    def dated(self) -> dict[dt.date | None, object]:
        """The parameter's values by the date each takes effect (None: always), whatever its shape."""
        for shape in _PARAMETER_SHAPES:
            found = getattr(self, shape)
            if found is not None:
                return dict(found) if shape.endswith("s") else {None: found}
        return {}


class ValueFile(_Model):
    """A named formula over facts, parameters and other values."""

    title: LocalText
    expr: str
    reference: str | None = None
    unit: str | None = None


class Messages(_Model):
    """Plain-language text for a rule's result; `{expression}` placeholders are filled in."""

    held: LocalText | None = None
    failed: LocalText | None = None


class RuleFile(_Model):
    """A rule: a condition with a title and the legal reference it implements."""

    id: Name
    title: LocalText
    reference: str
    when: Expression
    description: str | None = None
    message: Messages = Messages()


class RankKeyFile(_Model):
    key: str
    order: Literal["descending", "ascending"] = "descending"
    title: LocalText | None = None


class OpenSlotsFile(_Model):
    """What happens to slots nobody takes: a label (e.g. `additional_call`) and its reference."""

    to: Name
    title: LocalText
    reference: str


class GrantFile(_Model):
    """What an outcome row brings the subject it decides: a name, a title, an optional quantity."""

    id: Name
    title: LocalText
    quantity: str | int | float | None = None  # an expression giving a number, usually a dated parameter
    unit: str | None = None
    reference: str | None = None


class OutcomeRowFile(_Model):
    outcome: Name
    when: Expression
    title: LocalText | None = None
    grants: list[GrantFile] = []

    @field_validator("grants")
    @classmethod
    def _distinct_grants(cls, grants: list[GrantFile]) -> list[GrantFile]:
        seen = [g.id for g in grants]
        twice = sorted({g for g in seen if seen.count(g) > 1})
        if twice:
            raise ValueError(f"grant `{twice[0]}` is listed twice in this row")
        return grants


class TrackFile(_Model):
    """Places of a stage reserved for the subjects for whom `when` holds (e.g. small firms)."""

    id: Name
    title: LocalText | None = None
    when: Expression
    reserved: str | int  # how many places: a whole number, or an expression over parameters and `context`
    unfilled: Literal["release", "keep_open"] = "release"


class StageDatesFile(_Model):
    """The period a stage applies to: every parameter it uses must be in force throughout."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    from_: dt.date = Field(alias="from")
    until: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> StageDatesFile:
        if self.until is not None and self.until < self.from_:
            raise ValueError("`until` comes before `from`")
        return self


class StageFile(_Model):
    """A decision over a cohort: who is ranked, by what, how many slots, what each subject gets."""

    id: Name
    title: LocalText
    reference: str
    pool: Expression = True
    rank_by: list[RankKeyFile] = []
    slots: str | int | None = None
    fills_slot: Name | None = None
    open_slots: OpenSlotsFile | None = None
    outcomes: list[OutcomeRowFile] = Field(min_length=1)
    dates: StageDatesFile | None = None
    capacity: str | int | float | None = None  # how much there is to allocate (parameters and `context`)
    takes: str | None = None  # how much one subject asks for (an expression over its facts)
    does_not_fit: Literal["skip", "partial"] = "skip"
    tracks: list[TrackFile] = []
    objection_period: Name | None = None  # the parameter giving the days a decided subject has to object

    @model_validator(mode="after")
    def _slots_need_ranking(self) -> StageFile:
        allocates = self.slots is not None or self.capacity is not None
        if allocates != (self.fills_slot is not None):
            raise ValueError("`fills_slot` goes with `slots` or `capacity` (or both)")
        if allocates and not self.rank_by:
            raise ValueError(f"a stage with `{'slots' if self.slots is not None else 'capacity'}` needs `rank_by`")
        if (self.capacity is None) != (self.takes is None):
            raise ValueError("`capacity` and `takes` go together")
        if self.tracks and self.slots is None:
            raise ValueError("`tracks` reserve places out of `slots`: give the stage `slots`")
        ids = [t.id for t in self.tracks]
        twice = sorted({t for t in ids if ids.count(t) > 1})
        if twice:
            raise ValueError(f"track `{twice[0]}` is defined twice")
        return self


class ChangeFile(_Model):
    """What a metamorphic invariant changes: numeric fact paths of one subject, up or down."""

    facts: list[str] = Field(min_length=1)
    direction: Literal["increase", "decrease"] = "increase"


class InvariantFile(_Model):
    """A statement that must hold for every possible cohort, checked by search in `policy check`.

    `subject` (default): `holds` for every decision (facts, values, rules, `stage`, `outcome`);
    `cohort`: `holds` over `decisions` and `summary`; `monotonic`: after `change` to one
    subject's facts, `holds` over `before` and `after` (its two decisions); `permutation`: the
    decisions do not depend on the order of the subjects in the file.
    """

    id: Name
    title: LocalText
    reference: str
    kind: Literal["subject", "cohort", "monotonic", "permutation"] = "subject"
    stages: list[Name] = []
    when: Expression | None = None
    holds: Expression | None = None
    change: ChangeFile | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _parts_of_kind(self) -> InvariantFile:
        if self.kind == "permutation":
            if self.holds is not None or self.when is not None or self.change is not None:
                raise ValueError("a `permutation` invariant takes no `when`, `holds` or `change`")
            return self
        if self.holds is None:
            raise ValueError(f"a `{self.kind}` invariant needs `holds`")
        if (self.kind == "monotonic") != (self.change is not None):
            raise ValueError("`change` goes with `kind: monotonic`, and only with it")
        return self


class FactsFile(_Model):
    """Which models describe the facts: `module:Class` names, or records of a fact schema file (`schema:`)."""

    subject: str
    cohort: str
    schema_: str | None = Field(None, alias="schema")  # a fact schema file in the package: subject/cohort name records
    subjects_field: Name
    context_field: Name | None = None
    stage_field: Name | None = None
    date_field: Name | None = None
    id_field: Name = "id"
    name_field: Name | None = None  # the subject's display name (e.g. `name`), shown beside its id to people

    @model_validator(mode="after")
    def _module_colon_class(self) -> FactsFile:
        for value in (self.subject, self.cohort):
            if self.schema_ is not None and not re.fullmatch(r"[A-Za-z]\w*", value):
                raise ValueError(
                    f"with `schema:`, `subject` and `cohort` name records of the schema file, not `{value}`"
                )
            if self.schema_ is None and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", value):
                raise ValueError(
                    f"expected `module:Class`, e.g. `policy.facts:Consortium`, not `{value}` "
                    "(or name a fact schema file with `schema:`)"
                )
        return self


class SectionsFile(_Model):
    """What any rule file may hold."""

    parameters: dict[Name, ParameterFile] = {}
    values: dict[Name, ValueFile] = {}
    rules: list[RuleFile] = []
    stages: list[StageFile] = []
    invariants: list[InvariantFile] = []


class ManifestFile(SectionsFile):
    """`policy.yaml`: the package's identity, fact model and included files."""

    policy: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
    version: str
    title: LocalText
    description: str | None = None
    facts: FactsFile
    include: list[str] = []
    labels: dict[Name, LocalText] = {}  # what an outcome name reads as for people, e.g. `advanced: {ko: 통과}`

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        return str(value) if isinstance(value, (int, float)) else value
