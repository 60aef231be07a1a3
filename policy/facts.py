"""Typed facts of the Sovereign AI Foundation Model Project (pydantic v2).

A cohort file holds the stage context (programme, stage, date, slots planned) and the consortia.
Each consortium has a lead and members, the submitted model with the provenance of each
component (where its weights and code came from), its stage-1 scores against their published
maxima, the expert panel's findings and votes, and its history in the programme.

Numbers and booleans are strict: `"33.6"` or `"yes"` are rejected, not coerced. A missing
optional fact is `None`, and a rule that needs it is *undetermined*, never silently false.

Facts a consortium cannot change (who it is, its history, the panel's size, what a component
is) carry `json_schema_extra={"fixed": True}`: "why not" answers never propose changing them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictBool, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

__all__ = [
    "Organisation",
    "Upstream",
    "Weights",
    "CodeOrigin",
    "Component",
    "Model",
    "BenchmarkScores",
    "Scores",
    "PanelFinding",
    "Panel",
    "StageRecord",
    "History",
    "Consortium",
    "StageContext",
    "Cohort",
]

FIXED: dict[str, JsonValue] = {"fixed": True}  # a fact the subject cannot change
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 country code, e.g. KR")]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", description="lower-case id, e.g. naver-cloud")]
StageId = Annotated[
    str, Field(pattern=r"^[a-z][a-z0-9_]*$", description="a stage of the rule package, e.g. stage1 or additional_call")
]
Points = Annotated[float, Field(strict=True, ge=0)]
Share = Annotated[float, Field(strict=True, ge=0, le=1)]
OrganisationKind = Literal["company", "university", "research_institute", "public_institution", "nonprofit", "other"]
ComponentKind = Literal[
    "language_backbone", "vision_encoder", "audio_encoder", "tokenizer", "architecture_code", "training_data", "other"
]


class _Fact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Organisation(_Fact):
    name: str = Field(min_length=1)
    country: CountryCode
    kind: OrganisationKind


class Upstream(_Fact):
    """A model, or a code base, made by someone other than the team."""

    model: str = Field(min_length=1, description="e.g. Qwen2.5-VL", json_schema_extra=FIXED)
    owner: str = Field(min_length=1, description="e.g. Alibaba Cloud", json_schema_extra=FIXED)
    country: CountryCode = Field(json_schema_extra=FIXED)
    licence: str | None = None
    licence_restricted: StrictBool | None = Field(
        None, description="does the licence restrict use, modification or operation?"
    )
    credited: StrictBool | None = Field(None, description="is the source credited (notices kept, attribution given)?")

    def __str__(self) -> str:
        return f"{self.model} ({self.owner}, {self.country})"


class Weights(_Fact):
    """Where a component's weights came from."""

    origin: Literal["team", "upstream"] = Field(
        description="team: initialised and trained by the team; upstream: taken pretrained"
    )
    upstream: Upstream | None = None
    use: Literal["frozen", "fine_tuned"] | None = Field(None, description="how pretrained upstream weights were used")
    share_of_parameters: Share | None = None

    @model_validator(mode="after")
    def _upstream_named(self) -> Weights:
        if self.origin == "upstream" and (self.upstream is None or self.use is None):
            raise ValueError(
                "pretrained upstream weights need `upstream` (model, owner, country) and `use` (frozen or fine_tuned)"
            )
        if self.origin == "team" and (self.upstream is not None or self.use is not None):
            raise ValueError("weights trained by the team take no `upstream` or `use`")
        return self


class CodeOrigin(_Fact):
    """Where a component's code (architecture, training code) came from."""

    origin: Literal["team", "open_source"]
    upstream: Upstream | None = None

    @model_validator(mode="after")
    def _upstream_named(self) -> CodeOrigin:
        if self.origin == "open_source" and self.upstream is None:
            raise ValueError("open-source code needs `upstream` (project, owner, country, licence, credited)")
        return self


class Component(_Fact):
    name: str = Field(min_length=1, json_schema_extra=FIXED)
    kind: ComponentKind = Field(json_schema_extra=FIXED)
    weights: Weights | None = None
    code: CodeOrigin | None = None

    def __str__(self) -> str:
        kind = self.kind.replace("_", " ")
        if self.weights is not None and self.weights.origin == "upstream" and self.weights.upstream is not None:
            use = (self.weights.use or "").replace("_", "-")
            return f"{self.name} ({kind}: pretrained weights of {self.weights.upstream}, {use})"
        if self.code is not None and self.code.upstream is not None:
            return f"{self.name} ({kind}: code from {self.code.upstream})"
        return f"{self.name} ({kind})"


class Model(_Fact):
    """The submitted foundation model."""

    name: str = Field(min_length=1)
    parameters_billions: Annotated[float, Field(strict=True, gt=0)] | None = None
    components: list[Component] = Field(min_length=1)
    target_share_of_global: Annotated[float, Field(strict=True, ge=0, le=2)] | None = Field(
        None, description="targeted performance as a share of the latest global models (0.95 = 95%)"
    )
    team_controls_development: StrictBool | None = Field(
        None, description="can the team develop and improve the model at any time?"
    )
    team_controls_operation: StrictBool | None = Field(
        None, description="does the team control its operation and use in all circumstances?"
    )


class BenchmarkScores(_Fact):
    """Benchmark dimension (40 points): NIA 10, global common 20, global individual 10."""

    MAXIMA: ClassVar[dict[str, float]] = {"nia": 10, "global_common": 20, "global_individual": 10}
    nia: Annotated[Points, Field(le=10)]
    global_common: Annotated[Points, Field(le=20)]
    global_individual: Annotated[Points, Field(le=10)]


class Scores(_Fact):
    """Stage-1 scores: benchmark /40, expert review /35, user review /25."""

    MAXIMA: ClassVar[dict[str, float]] = {"benchmark": 40, "expert": 35, "user": 25}
    benchmark: BenchmarkScores
    expert: Annotated[Points, Field(le=35)] | None = None
    user: Annotated[Points, Field(le=25)] | None = None


class PanelFinding(_Fact):
    topic: Literal["strategy", "technology", "sovereignty", "impact", "performance", "cost", "other"]
    text: str
    concern: StrictBool = False


class Panel(_Fact):
    """The expert panel's review: size, approving votes, score, findings."""

    members: Annotated[int, Field(strict=True, ge=1, json_schema_extra=FIXED)]
    votes_for: Annotated[int, Field(strict=True, ge=0)] | None = None
    score: Annotated[Points, Field(le=100)] | None = None
    findings: list[PanelFinding] = []

    @model_validator(mode="after")
    def _votes_within_panel(self) -> Panel:
        if self.votes_for is not None and self.votes_for > self.members:
            raise ValueError(f"`votes_for` ({self.votes_for}) cannot exceed `members` ({self.members})")
        return self


class StageRecord(_Fact):
    stage: StageId
    outcome: str
    date: dt.date | None = None


class History(_Fact):
    """How the consortium entered the programme and what each stage decided."""

    entry: Literal["selected_2025", "applicant_2025_not_selected", "new_applicant"]
    stages: list[StageRecord] = []


class Consortium(_Fact):
    id: Slug = Field(json_schema_extra=FIXED)
    name: str = Field(min_length=1, json_schema_extra=FIXED)
    lead: Organisation = Field(json_schema_extra=FIXED)
    members: list[Organisation] = Field([], json_schema_extra=FIXED)
    model: Model | None = None
    scores: Scores | None = None
    panel: Panel | None = None
    history: History = Field(json_schema_extra=FIXED)


class StageContext(_Fact):
    programme: str
    stage: str
    date: dt.date
    slots_planned: Annotated[int, Field(strict=True, ge=0)] | None = None
    note: str | None = None


class Cohort(_Fact):
    """A fact file: the stage context and the consortia it decides."""

    context: StageContext
    consortia: list[Consortium]
    note: str | None = None

    @model_validator(mode="after")
    def _unique_ids(self) -> Cohort:
        seen: set[str] = set()
        errors = []
        for index, consortium in enumerate(self.consortia):
            if consortium.id in seen:  # reported at the repeat, with its path
                error = PydanticCustomError(
                    "value_error", "consortium ids must be unique: {id} repeated", {"id": consortium.id}
                )
                errors.append(InitErrorDetails(type=error, loc=("consortia", index, "id"), input=consortium.id))
            seen.add(consortium.id)
        if errors:
            raise ValidationError.from_exception_data("Cohort", errors)
        return self
