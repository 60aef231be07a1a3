"""Typed facts of the Sovereign AI Foundation Model Project (pydantic v2).

A cohort file holds the stage context (programme, stage, date, slots planned) and the consortia.
Each consortium has a lead and members (each with its country of registration), the submitted
model with the provenance of each component (where its weights and code came from, and what
those came from in turn: an upstream model's own lineage, any depth), its scores against their
published maxima (stage 1's benchmark breakdown, or the global leaderboards of stage 2 onwards),
the expert panel's findings, conclusion and votes, and its history in the programme (how it
entered, what each stage decided).

Numbers and booleans are strict: `"33.6"` or `"yes"` are rejected, not coerced. A missing
optional fact is `None`, and a rule that needs it is *undetermined*, never silently false.

Facts a consortium cannot change (who it is, its history, the panel's size, what a component
is) carry `json_schema_extra={"fixed": True}`: "why not" answers never propose changing them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    ValidationError,
    computed_field,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

__all__ = [
    "Organisation",
    "Derivation",
    "Ancestor",
    "Upstream",
    "MAX_LINEAGE_DEPTH",
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
    country: CountryCode = Field(description="country where the organisation is registered (ISO 3166-1 alpha-2)")
    kind: OrganisationKind


Derivation = Literal["from_scratch", "fine_tuned", "distilled", "continued_pretraining", "merged", "other"]
MAX_LINEAGE_DEPTH = 16  # models in one chain, the upstream itself included

# Where an `Upstream` keeps its lineage once made for that very object: (its `id`, the lineage), in its `__dict__` as
# `functools.cached_property` keeps a value (not a field: not dumped, not compared). Made on first read (each
# `Ancestor` is a validated model, about 1.3 µs), then read again at every evaluation, explanation and letter of
# the same facts. A copy (`model_copy`, which pydantic does not validate, or unpickled) has another `id`: it makes
# its own. Not made when the facts are validated: most upstreams' lineage is never read (their code's, say).
_KEPT = "_lineage_of"


class Ancestor(_Fact):
    """One model of an upstream's lineage, flattened: what rules read (`upstream.lineage`)."""

    hop: int = Field(description="1: the upstream itself; 2: the model it was derived from; and so on")
    model: str
    owner: str
    country: CountryCode
    derivation: Derivation | None = Field(None, description="how this model was made from the next one up")
    licence_restricted: StrictBool | None = None
    credited: StrictBool | None = None


class Upstream(_Fact):
    """A model, or a code base, made by someone other than the team, with what it was derived from.

    `derived_from` records the model this one was itself made from (fine-tuned, distilled, ...),
    to any depth up to MAX_LINEAGE_DEPTH models; a chain that repeats a model (same model and
    owner) is refused. `lineage` (computed) lists the upstream and every ancestor, nearest first.
    """

    model: str = Field(min_length=1, description="e.g. Qwen2.5-VL", json_schema_extra=FIXED)
    owner: str = Field(min_length=1, description="e.g. Alibaba Cloud", json_schema_extra=FIXED)
    country: CountryCode = Field(json_schema_extra=FIXED)
    licence: str | None = None
    licence_restricted: StrictBool | None = Field(
        None, description="does the licence restrict use, modification or operation?"
    )
    credited: StrictBool | None = Field(None, description="is the source credited (notices kept, attribution given)?")
    derivation: Derivation | None = Field(
        None,
        description="how this model was made: from_scratch (its owner's own pretraining), or from `derived_from`",
        json_schema_extra=FIXED,
    )
    derived_from: Upstream | None = Field(
        None, description="the model this one was made from (its own lineage, any depth)", json_schema_extra=FIXED
    )

    @model_validator(mode="before")
    @classmethod
    def _lineage_is_computed(cls, data: object) -> object:
        # `lineage` is computed from `derived_from`; a dump of these facts carries it, and facts
        # changed after a dump (what-if, policy tests) carry a stale one: a given `lineage` is ignored.
        if isinstance(data, dict) and "lineage" in data:
            return {k: v for k, v in data.items() if k != "lineage"}
        return data

    @model_validator(mode="after")
    def _finite_acyclic_lineage(self) -> Upstream:
        if self.derivation == "from_scratch" and self.derived_from is not None:
            raise ValueError("a model pretrained `from_scratch` is not `derived_from` another model")
        if self.derived_from is None:
            return self
        ancestors = [(a.model, a.owner) for a in self.derived_from.lineage]
        if (self.model, self.owner) in ancestors:
            raise ValueError(
                f"lineage repeats {self.model} ({self.owner}): a model cannot be derived from itself ({self.chain()})"
            )
        if len(ancestors) + 1 > MAX_LINEAGE_DEPTH:
            raise ValueError(f"lineage is deeper than {MAX_LINEAGE_DEPTH} models: record at most {MAX_LINEAGE_DEPTH}")
        return self

    @computed_field(description="this model and every model it was derived from, nearest first")  # type: ignore[prop-decorator]
    @property
    def lineage(self) -> list[Ancestor]:
        kept = self.__dict__.get(_KEPT)
        if kept is None or kept[0] != id(self):
            kept = self.__dict__[_KEPT] = (id(self), self._walk())
        return list(kept[1])  # a list of its own: a caller changing it changes no one else's

    def _walk(self) -> list[Ancestor]:
        found: list[Ancestor] = []
        node: Upstream | None = self
        while node is not None and len(found) <= MAX_LINEAGE_DEPTH:
            found.append(
                Ancestor(
                    hop=len(found) + 1,
                    model=node.model,
                    owner=node.owner,
                    country=node.country,
                    derivation=node.derivation,
                    licence_restricted=node.licence_restricted,
                    credited=node.credited,
                )
            )
            node = node.derived_from
        return found

    def chain(self) -> str:
        """The lineage hop by hop: `K-Vision 2 (Hanbit Vision Lab, KR, fine-tuned) ← SigLIP (Google, US)`."""
        hops = []
        for a in self.lineage:
            how = f", {a.derivation.replace('_', '-')}" if a.derivation not in (None, "from_scratch") else ""
            hops.append(f"{a.model} ({a.owner}, {a.country}{how})")
        return " ← ".join(hops)

    def __str__(self) -> str:
        return self.chain()


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
            if self.weights.upstream.derived_from is not None:  # the chain hop by hop
                return f"{self.name} ({kind}, {use}) ← {self.weights.upstream.chain()}"
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
    """Benchmark dimension (40 points).

    Stage 1: NIA 10, global common 20, global individual 10 (MAXIMA). Stage 2 and the final:
    benchmarks drawn from major global leaderboards, 40 points in all (`global_leaderboards`; how
    the 40 points are split was not published). Give the parts of the stage being decided; a part
    a rule needs and that is not given leaves the rule undetermined.
    """

    MAXIMA: ClassVar[dict[str, float]] = {"nia": 10, "global_common": 20, "global_individual": 10}
    LEADERBOARDS_MAXIMUM: ClassVar[float] = 40
    nia: Annotated[Points, Field(le=10)] | None = None
    global_common: Annotated[Points, Field(le=20)] | None = None
    global_individual: Annotated[Points, Field(le=10)] | None = None
    global_leaderboards: Annotated[Points, Field(le=40)] | None = Field(
        None, description="stage 2 onwards: benchmarks drawn from major global leaderboards, out of 40"
    )


class Scores(_Fact):
    """Review scores: benchmark /40, expert review /35, user review /25 (stage 1; the same dimensions later)."""

    MAXIMA: ClassVar[dict[str, float]] = {"benchmark": 40, "expert": 35, "user": 25}
    benchmark: BenchmarkScores
    expert: Annotated[Points, Field(le=35)] | None = None
    user: Annotated[Points, Field(le=25)] | None = None


class PanelFinding(_Fact):
    topic: Literal["strategy", "technology", "sovereignty", "impact", "performance", "cost", "other"]
    text: str
    concern: StrictBool = False

    def __str__(self) -> str:
        return f"{self.topic}: {self.text}"


class Panel(_Fact):
    """The expert panel (committee): size, approving votes, score, findings, and its conclusion.

    `core_requirements_met` is the committee's conclusion on the core requirements of a
    domestically developed foundation model (False: it concluded the model does not meet them,
    as for Naver Cloud on 15 Jan 2026); `conclusion` is its statement, `findings` what the
    reviewers raised.
    """

    members: Annotated[int, Field(strict=True, ge=1, json_schema_extra=FIXED)]
    votes_for: Annotated[int, Field(strict=True, ge=0)] | None = None
    score: Annotated[Points, Field(le=100)] | None = None
    findings: list[PanelFinding] = []
    core_requirements_met: StrictBool | None = Field(
        None, description="the committee's conclusion: does the model meet the core requirements of a domestic model?"
    )
    conclusion: str | None = Field(None, description="the committee's conclusion in its own words")

    @model_validator(mode="after")
    def _votes_within_panel(self) -> Panel:
        if self.votes_for is not None and self.votes_for > self.members:
            raise ValueError(f"`votes_for` ({self.votes_for}) cannot exceed `members` ({self.members})")
        return self


class StageRecord(_Fact):
    """What one stage decided for the consortium (e.g. stage1: advanced; additional_call: selected)."""

    stage: StageId
    outcome: str
    date: dt.date | None = None


class History(_Fact):
    """How the consortium entered the programme and what each stage decided.

    `entry`: selected in the 2025 call, an applicant of 2025 not then selected, or a new applicant
    (the additional call of 2026 admitted the last two); `stages` links the stages: a team in
    stage 2 either advanced at stage 1 or was selected by the additional call.
    """

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
    gpu_rental_supplier: StrictBool = Field(
        False,
        description=(
            "does the lead supply GPUs to the government's rental programme? "
            "(such teams got no government GPUs until H2 2026)"
        ),
        json_schema_extra=FIXED,
    )


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
