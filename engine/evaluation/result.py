"""What an evaluation returns: decisions with their reasons, a stage summary, and JSON.

A `Decision` holds its outcome, the rules that determined it (each with title, legal reference,
status and a plain-language message), what facts were missing, the subject's place in the
stage's ranking, and the compact trace (every value and rule result) that explanations need.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from engine.core.text import json_text
from engine.language.ir import Scale, Table

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "Reason",
    "Placement",
    "Tie",
    "Grant",
    "Allocation",
    "TrackSummary",
    "StageSummary",
    "Decision",
    "Decisions",
    "outcomes_of",
    "Result",
    "PolicyIdentity",
    "UNDETERMINED",
    "to_jsonable",
    "ExplanationView",
    "WhyNotView",
    "register_explainer",
    "Later",
]

UNDETERMINED = "undetermined"


class ExplanationView(Protocol):
    """What `Decision.explain()` returns (`engine.Explanation`, built by the explanation pass)."""

    @property
    def graph(self) -> nx.DiGraph: ...

    def to_json(self) -> dict[str, Any]: ...
    def to_dot(self) -> str: ...
    def to_mermaid(self) -> str: ...
    def to_svg(self) -> str: ...
    def to_text(self, lang: str = "en") -> str: ...


class WhyNotView(Protocol):
    """What `Decision.why_not()` returns (`engine.explanation.whynot.WhyNot`)."""

    def to_json(self) -> dict[str, Any]: ...
    def to_text(self) -> str: ...


class _Explainer(Protocol):
    def __call__(self, policy: Any, decision: Decision, /) -> ExplanationView: ...


class _WhyNot(Protocol):
    def __call__(self, policy: Any, decision: Decision, target: str, /) -> WhyNotView: ...


@dataclass
class _Explainers:
    explain: _Explainer | None = None
    why_not: _WhyNot | None = None


# Set by `engine.explanation` when it is imported (as `import engine` does): evaluation never
# imports the explanation pass, which is built on top of it.
_EXPLAINERS = _Explainers()
_NO_EXPLAINER = "no explainer is registered: import engine (or engine.explanation) first"


def register_explainer(explain: _Explainer, why_not: _WhyNot) -> None:
    """Install the functions behind `Decision.explain()` and `Decision.why_not()`."""
    _EXPLAINERS.explain, _EXPLAINERS.why_not = explain, why_not


Status = Literal["held", "failed", "undetermined"]
Role = Literal["decisive", "passed"]  # decided the outcome / an earlier row that did not apply


@dataclass(frozen=True)
class Reason:
    """One rule that took part in a decision."""

    rule: str
    title: str
    reference: str
    status: Status
    message: str
    role: Role = "decisive"
    missing: tuple[str, ...] = ()
    depth: int = 0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "rule": self.rule,
            "title": self.title,
            "reference": self.reference,
            "message": self.message,
        }
        data.update({"status": self.status, "role": self.role, "depth": self.depth})
        if self.missing:
            data["missing"] = list(self.missing)
        return data


@dataclass(frozen=True, init=False)
class Tie:
    """A neighbour in the ranking with the same first key: which key then told them apart.

    `key` is the index of the ranking key that broke the tie (None: equal on every key, they share
    a rank); `mine` and `theirs` the two values of that key; `across_last_place`: one of them has a
    place and the other not (the tie-break decided a place).
    """

    other: str
    other_rank: int | None
    key: int | None
    mine: Any = None
    theirs: Any = None
    across_last_place: bool = False
    shared: Any = None  # the value of the first key they share

    def __init__(
        self,
        other: str,
        other_rank: int | None,
        key: int | None,
        mine: Any = None,
        theirs: Any = None,
        across_last_place: bool = False,
        shared: Any = None,
    ) -> None:
        # the dataclass's own __init__ written out (see `Decision.__init__`): two per tied pair of a ranking
        state = self.__dict__
        state["other"], state["other_rank"], state["key"], state["mine"] = other, other_rank, key, mine
        state["theirs"], state["across_last_place"], state["shared"] = theirs, across_last_place, shared

    def to_json(self) -> dict[str, Any]:
        return {
            "other": self.other,
            "shared": to_jsonable(self.shared),
            "other_rank": self.other_rank,
            "key": self.key,
            "mine": to_jsonable(self.mine),
            "theirs": to_jsonable(self.theirs),
            "across_last_place": self.across_last_place,
        }


class Later:
    """A value a `Decision` computes on first use: `fn(*args)` (`fn(*args, *more)` when called with
    more), from what the evaluation kept."""

    __slots__ = ("fn", "args")

    def __init__(self, fn: Any, args: tuple[Any, ...]) -> None:
        self.fn, self.args = fn, args

    def __call__(self, *more: Any) -> Any:
        return self.fn(*self.args, *more)


class _Lazy:
    """A field of a frozen dataclass that may be given as a `Later`: computed on first read, then kept."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.key = f"_{name}_kept"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            raise AttributeError(self.key)  # the dataclass field has no default
        value = obj.__dict__[self.key]
        if type(value) is Later:
            value = obj.__dict__[self.key] = value()
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.key] = value


@dataclass(frozen=True, init=False)
class Placement:
    """Where a subject stood in a stage's ranking."""

    in_pool: bool | None
    rank: int | None
    pool_size: int | None
    slots: int | None
    keys: tuple[Any, ...] | None = None
    rank_range: tuple[int, int] | None = None  # rank not known: the best and worst it can be (missing facts)
    key_ranges: tuple[str, ...] | None = None  # keys not all known: what each may be, in words
    if TYPE_CHECKING:
        ties: tuple[Tie, ...] = ()  # neighbours with the same first key, and what told them apart
    else:
        ties: tuple[Tie, ...] = _Lazy()  # a `Later` given here is computed on first read (a cohort's ties: once)
    settled_by: tuple[str, ...] = ()  # rank not known: the facts that would settle it (another's as `id: path`)

    def __init__(
        self,
        in_pool: bool | None,
        rank: int | None,
        pool_size: int | None,
        slots: int | None,
        keys: tuple[Any, ...] | None = None,
        rank_range: tuple[int, int] | None = None,
        key_ranges: tuple[str, ...] | None = None,
        ties: tuple[Tie, ...] | Later = (),
        settled_by: tuple[str, ...] = (),
    ) -> None:
        # the dataclass's own __init__ written out (see `Decision.__init__`)
        state = self.__dict__
        state["in_pool"], state["rank"], state["pool_size"], state["slots"] = in_pool, rank, pool_size, slots
        state["keys"], state["rank_range"], state["key_ranges"] = keys, rank_range, key_ranges
        state["_ties_kept"], state["settled_by"] = ties, settled_by  # `ties` (`_Lazy`): a tuple, or a `Later`

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with its ties computed (what they are computed from is not sent along)."""
        _ = self.ties
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def rank_text(self) -> str:
        """`3 of 5`, `2 to 4 of 5` (not known yet), `-` (not ranked)."""
        if self.rank is not None:
            return f"{self.rank} of {self.pool_size}"
        if self.rank_range is not None:
            return f"{self.rank_range[0]} to {self.rank_range[1]} of {self.pool_size}"
        return "-"

    def to_json(self) -> dict[str, Any]:
        data = {
            "in_pool": self.in_pool,
            "rank": self.rank,
            "pool_size": self.pool_size,
            "slots": self.slots,
            "keys": to_jsonable(self.keys),
        }
        if self.rank_range is not None:
            data["rank_range"] = list(self.rank_range)
        if self.key_ranges is not None:
            data["key_ranges"] = list(self.key_ranges)
        if self.ties:
            data["ties"] = [t.to_json() for t in self.ties]
        if self.settled_by:
            data["settled_by"] = list(self.settled_by)
        return data


def quantity_text(value: float | None, unit: str | None = None) -> str:
    """A quantity as people read it: `512 GPUs`, `1,250.5 GPU-hours`, `unknown`."""
    if value is None:
        return "unknown"
    number = f"{int(value):,}" if float(value).is_integer() else f"{round(value, 2):,}"
    return f"{number} {unit}" if unit else number


@dataclass(frozen=True, init=False)
class Grant:
    """What the deciding outcome row brings the subject: a name, a title, a quantity if the row gives one.

    A quantity that cannot be computed for want of facts is None, with the facts in `missing`.
    """

    id: str
    title: str
    quantity: float | None = None
    unit: str | None = None
    reference: str | None = None
    missing: tuple[str, ...] = ()

    def __init__(
        self,
        id: str,
        title: str,
        quantity: float | None = None,
        unit: str | None = None,
        reference: str | None = None,
        missing: tuple[str, ...] = (),
    ) -> None:
        # the dataclass's own __init__ written out (see `Decision.__init__`): one per grant of every decision
        state = self.__dict__
        state["id"], state["title"], state["quantity"] = id, title, quantity
        state["unit"], state["reference"], state["missing"] = unit, reference, missing

    def describe(self) -> str:
        """`Government GPUs (NVIDIA B200) 512 GPUs`; `... (quantity undetermined: missing x)`."""
        if self.missing:
            return f"{self.title} (quantity undetermined: missing {', '.join(self.missing)})"
        return f"{self.title} {quantity_text(self.quantity, self.unit)}" if self.quantity is not None else self.title

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "quantity": to_jsonable(self.quantity),
            "unit": self.unit,
            "reference": self.reference,
        }
        if self.missing:
            data["missing"] = list(self.missing)
        return data


Allotment = Literal["awarded", "partial", "does_not_fit", "no_place", "not_in_pool", "undetermined"]


@dataclass(frozen=True)
class Allocation:
    """How a stage with `capacity` or `tracks` treated one subject, and why.

    `allotment`: `awarded` (all it asked for), `partial` (what was left), `does_not_fit` (skipped:
    what was left was less than it asked for), `no_place` (no place left when its turn came),
    `not_in_pool`, `undetermined` (missing facts). `capacity_left` is what was left when its turn
    came; `reserved` says it took one of its track's reserved places.
    """

    allotment: Allotment
    awarded: float | None
    requested: float | None
    capacity: float | None
    capacity_left: float | None
    track: str | None
    reserved: bool
    unit: str | None = None
    missing: tuple[str, ...] = ()

    def note(self) -> str:
        """Why the subject got what it got, in words: `capacity left 120 h < requested 300 h; skipped`."""

        def q(value: float | None) -> str:
            return quantity_text(value, self.unit)

        where = f" (a reserved place of track `{self.track}`)" if self.reserved else ""
        if self.allotment == "awarded":
            if self.capacity is None:
                return f"took a place{where}"
            return f"awarded {q(self.awarded)} of the {q(self.capacity_left)} left{where}"
        if self.allotment == "partial":
            return f"partial award: {q(self.awarded)} of the {q(self.requested)} requested (all that was left){where}"
        if self.allotment == "does_not_fit":
            return f"capacity left {q(self.capacity_left)} < requested {q(self.requested)}; skipped"
        if self.allotment == "no_place":
            return "no place left when its turn came: the places went to subjects ranked above (or reserved)"
        if self.allotment == "not_in_pool":
            return "not in the pool: nothing to allocate"
        return "allocation undetermined: missing " + ", ".join(self.missing)

    def to_json(self) -> dict[str, Any]:
        data = {
            k: to_jsonable(getattr(self, k))
            for k in ("allotment", "awarded", "requested", "capacity", "capacity_left", "track", "reserved", "unit")
        }
        data["note"] = self.note()
        if self.missing:
            data["missing"] = list(self.missing)
        return data


@dataclass(frozen=True)
class TrackSummary:
    """One track of a stage: its reserved places, how many its subjects took, what became of the rest."""

    id: str
    title: str | None
    reserved: int
    filled: int  # reserved places taken by the track's subjects whose outcome fills a place
    unfilled: int  # reserved places none of its subjects took
    unfilled_to: str  # release (to the general ranking) | keep_open
    members: int  # subjects of the pool in the track

    def to_json(self) -> dict[str, Any]:
        keys = ("id", "title", "reserved", "filled", "unfilled", "unfilled_to", "members")
        return {k: getattr(self, k) for k in keys}


@dataclass(frozen=True, init=False)
class StageSummary:
    """A stage over the whole cohort: slots, who filled them, what was left open.

    A stage with `capacity` adds what there was to allocate, what was awarded and what is left;
    a stage with `tracks`, each track's places; a stage that declares `dates`, its period, and
    `outside_period` when it decided outside it (a what-if asked for).
    """

    id: str
    title: str
    reference: str
    slots: int | None
    filled: int
    open: int | None
    open_slots_to: str | None
    open_slots_title: str | None
    ranking: tuple[tuple[str, int | None], ...]
    cut_off: tuple[Any, ...] | None
    tie_at_cut_off: bool
    missing: tuple[str, ...] = ()
    capacity: float | None = None
    capacity_used: float | None = None
    capacity_left: float | None = None
    unit: str | None = None
    tracks: tuple[TrackSummary, ...] = ()
    period: tuple[dt.date, dt.date | None] | None = None
    outside_period: bool = False
    pending: int | None = None  # places that depend on undetermined decisions (missing facts)
    ranges: tuple[tuple[str, int, int], ...] = ()  # subjects whose rank is not known: (id, best, worst)
    unbounded: tuple[str, ...] = ()  # missing ranking facts the fact model gives no bounds for (`id: path`)

    def __init__(
        self,
        id: str,
        title: str,
        reference: str,
        slots: int | None,
        filled: int,
        open: int | None,
        open_slots_to: str | None,
        open_slots_title: str | None,
        ranking: tuple[tuple[str, int | None], ...],
        cut_off: tuple[Any, ...] | None,
        tie_at_cut_off: bool,
        missing: tuple[str, ...] = (),
        capacity: float | None = None,
        capacity_used: float | None = None,
        capacity_left: float | None = None,
        unit: str | None = None,
        tracks: tuple[TrackSummary, ...] = (),
        period: tuple[dt.date, dt.date | None] | None = None,
        outside_period: bool = False,
        pending: int | None = None,
        ranges: tuple[tuple[str, int, int], ...] = (),
        unbounded: tuple[str, ...] = (),
    ) -> None:
        # the dataclass's own __init__ written out (see `Decision.__init__`): one per evaluation, small ones
        # included, and a frozen one's 22 `object.__setattr__` calls cost 2 µs
        state = self.__dict__
        state["id"], state["title"], state["reference"], state["slots"] = id, title, reference, slots
        state["filled"], state["open"], state["open_slots_to"] = filled, open, open_slots_to
        state["open_slots_title"], state["ranking"], state["cut_off"] = open_slots_title, ranking, cut_off
        state["tie_at_cut_off"], state["missing"], state["capacity"] = tie_at_cut_off, missing, capacity
        state["capacity_used"], state["capacity_left"], state["unit"] = capacity_used, capacity_left, unit
        state["tracks"], state["period"], state["outside_period"] = tracks, period, outside_period
        state["pending"], state["ranges"], state["unbounded"] = pending, ranges, unbounded

    def places_text(self) -> str:
        """`4 place(s): 2 filled, 1 pending, 1 left open → additional_call: ...` (empty without slots)."""
        if self.slots is None:
            return ""
        pending = f", {self.pending} pending (undetermined decisions)" if self.pending else ""
        text = f"{self.slots} place(s): {self.filled} filled{pending}, {self.open} left open"
        return text + (f" → {self.open_slots_to}: {self.open_slots_title}" if self.open_slots_to else "")

    def to_json(self) -> dict[str, Any]:
        data = {
            k: to_jsonable(getattr(self, k))
            for k in (
                "id",
                "title",
                "reference",
                "slots",
                "filled",
                "open",
                "pending",
                "open_slots_to",
                "open_slots_title",
                "cut_off",
                "tie_at_cut_off",
            )
        }
        ranges = {i: (best, worst) for i, best, worst in self.ranges}
        data["ranking"] = [
            {"id": i, "rank": r} | ({"rank_range": list(ranges[i])} if i in ranges else {}) for i, r in self.ranking
        ]
        if self.unbounded:
            data["unbounded"] = list(self.unbounded)
        if self.missing:
            data["missing"] = list(self.missing)
        if self.capacity is not None:
            data.update({k: getattr(self, k) for k in ("capacity", "capacity_used", "capacity_left", "unit")})
        if self.tracks:
            data["tracks"] = [t.to_json() for t in self.tracks]
        if self.period is not None:
            data["period"] = {"from": self.period[0].isoformat(), "until": to_jsonable(self.period[1])}
        if self.outside_period:
            data["outside_period"] = True
        return data


@dataclass(frozen=True)
class PolicyIdentity:
    name: str
    version: str
    digest: str
    overrides: tuple[tuple[str, Any], ...] = ()  # what-if parameters in force (none: the package as written)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "version": self.version, "digest": self.digest}
        if self.overrides:
            data["overrides"] = {name: to_jsonable(value) for name, value in self.overrides}
        return data


@dataclass(frozen=True, init=False)
class Decision:
    """The outcome for one subject, with its reasons and trace.

    `reasons` may be given as a `Later`: the evaluation passes one, so the rules' messages are
    written only when someone reads them (explanations, JSON, the CLI); the value is the same.
    """

    id: str
    outcome: str
    stage: str | None
    row: int | None
    if TYPE_CHECKING:
        reasons: tuple[Reason, ...]
    else:
        reasons: tuple[Reason, ...] = _Lazy()  # a `Later` given here is computed on first read
    missing: tuple[str, ...]
    placement: Placement | None
    as_of: dt.date
    trace: Mapping[str, Any] = field(repr=False, compare=False)
    parameters: Mapping[str, tuple[Any, dt.date | None]] = field(repr=False, compare=False)
    policy: Any = field(default=None, repr=False, compare=False)  # the `engine.Policy` that decided it
    subject: Any = field(default=None, repr=False, compare=False)
    context: Any = field(default=None, repr=False, compare=False)
    cohort: Any = field(default=None, repr=False, compare=False)  # the facts it was decided with
    grants: tuple[Grant, ...] = ()  # what the deciding row brings
    awarded: float | None = None  # a stage with `capacity`: the quantity this subject receives
    allocation: Allocation | None = None  # a stage with `capacity` or `tracks`: how it was treated
    outside_period: bool = field(default=False, repr=False, compare=False)  # decided outside the stage's period
    possible: tuple[str, ...] = ()  # undetermined: the outcomes it may still get, in the table's order

    def __init__(
        self,
        id: str,
        outcome: str,
        stage: str | None,
        row: int | None,
        reasons: tuple[Reason, ...],
        missing: tuple[str, ...],
        placement: Placement | None,
        as_of: dt.date,
        trace: Mapping[str, Any],
        parameters: Mapping[str, tuple[Any, dt.date | None]],
        policy: Any = None,
        subject: Any = None,
        context: Any = None,
        cohort: Any = None,
        grants: tuple[Grant, ...] = (),
        awarded: float | None = None,
        allocation: Allocation | None = None,
        outside_period: bool = False,
        possible: tuple[str, ...] = (),
    ) -> None:
        # the dataclass's own __init__, written out: one store per field instead of a frozen
        # `object.__setattr__` call each (a decision is built for every subject of a cohort)
        state = self.__dict__
        state["id"], state["outcome"], state["stage"], state["row"] = id, outcome, stage, row
        state["_reasons_kept"] = reasons  # the `reasons` field (`_Lazy`): a tuple, or a `Later`
        state["missing"], state["placement"], state["as_of"], state["trace"] = missing, placement, as_of, trace
        state["parameters"], state["policy"], state["subject"], state["context"] = parameters, policy, subject, context
        state["cohort"], state["grants"], state["awarded"], state["allocation"] = cohort, grants, awarded, allocation
        state["outside_period"], state["possible"] = outside_period, possible

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with every `Later` computed (what it would compute from is not sent along)."""
        _ = self.reasons
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def references(self) -> tuple[str, ...]:
        """The legal references of the rules that decided the outcome, in order, once each."""
        return tuple(dict.fromkeys(r.reference for r in self.reasons if r.role == "decisive"))

    @property
    def causes(self) -> tuple[Reason, ...]:
        """The innermost decisive reasons: the rules at the bottom of each chain (e.g. the failed test)."""
        shown = [r for r in self.reasons if r.role == "decisive"]
        return tuple(r for i, r in enumerate(shown) if i + 1 == len(shown) or shown[i + 1].depth <= r.depth)

    def why_not(self, outcome: str) -> WhyNotView:
        """What stands between this decision and `outcome`, and the smallest changes of facts that reach it."""
        if self.policy is None:
            raise ValueError("this decision is not attached to a policy")
        if not self.trace:
            raise ValueError(
                "this decision was evaluated with trace=False: evaluate again with the trace to ask why not"
            )
        if _EXPLAINERS.why_not is None:
            raise RuntimeError(_NO_EXPLAINER)
        return _EXPLAINERS.why_not(self.policy, self, outcome)

    def explain(self) -> ExplanationView:
        """The explanation graph of this decision (built now, from the trace)."""
        if self.policy is None:
            raise ValueError("this decision is not attached to a policy")
        if not self.trace:
            raise ValueError(
                "this decision was evaluated with trace=False: evaluate again with the trace to explain it"
            )
        if _EXPLAINERS.explain is None:
            raise RuntimeError(_NO_EXPLAINER)
        return _EXPLAINERS.explain(self.policy, self)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "outcome": self.outcome, "stage": self.stage, "row": self.row}
        data["reasons"] = [r.to_json() for r in self.reasons]
        data["references"] = list(self.references)
        data["missing"] = list(self.missing)
        data["placement"] = self.placement.to_json() if self.placement else None
        data["grants"] = [g.to_json() for g in self.grants]
        data["awarded"] = to_jsonable(self.awarded)
        if self.allocation is not None:
            data["allocation"] = self.allocation.to_json()
        if self.possible:
            data["possible_outcomes"] = list(self.possible)
        return data

    def to_dict(self) -> dict[str, Any]:
        """The decision as a dict of JSON values (what `to_json()` returns too)."""
        return self.to_json()

    def to_json_text(self, indent: int | None = None) -> str:
        """The decision as strict JSON text."""
        return json_text(self.to_json(), indent=indent)


class Decisions(Mapping[str, Decision]):
    """The decisions of one cohort evaluation, by subject id in the order of the input.

    A cohort evaluation settles every subject's outcome at once (what `outcomes()` and the stage
    summary read), and keeps what the rest of each decision is made of: its scope and trace, its
    outcome row, its place in the ranking, its grants. The `Decision` object itself is built the
    first time it is read, then kept, so a cohort whose decisions are read one by one (or only
    their outcomes) does not pay for objects nobody reads. What a decision says does not depend on
    when it is read: everything it is built from was settled, and every error raised, during the
    evaluation (its trace still settles another stage's values when first read for one, as a trace
    always has). Pickled, it is sent as a plain dict of its decisions.
    """

    __slots__ = ("_outcomes", "_kept", "_build", "_made")

    def __init__(
        self, outcomes: dict[str, str], kept: dict[str, tuple[Any, ...]], build: Callable[..., Decision]
    ) -> None:
        self._outcomes = outcomes  # id -> outcome, in the order of the input
        self._kept = kept  # id -> the arguments of `build` for its decision
        self._build = build
        self._made: dict[str, Decision] = {}

    def __getitem__(self, id: str) -> Decision:
        made = self._made.get(id)
        if made is None:  # two threads may both build it: the first one kept is the one every reader gets
            made = self._made.setdefault(id, self._build(*self._kept[id]))
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._outcomes)

    def __len__(self) -> int:
        return len(self._outcomes)

    def __contains__(self, id: object) -> bool:
        return id in self._outcomes

    def outcomes(self) -> dict[str, str]:
        """Subject id → outcome, without building any decision."""
        return dict(self._outcomes)

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self.items()),))

    def __repr__(self) -> str:
        return f"Decisions({dict(self.items())!r})"


@dataclass(frozen=True, init=False)
class Result:
    """The decisions of one evaluation, in the order of the input."""

    policy: PolicyIdentity
    as_of: dt.date
    stage: str | None
    backend: str
    decisions: Mapping[str, Decision]
    summary: StageSummary | None
    outside_period: bool = False  # the stage decided as of a date outside its declared period (a what-if)

    def __init__(
        self,
        policy: PolicyIdentity,
        as_of: dt.date,
        stage: str | None,
        backend: str,
        decisions: Mapping[str, Decision],
        summary: StageSummary | None,
        outside_period: bool = False,
    ) -> None:
        # the dataclass's own __init__ written out (see `Decision.__init__`): one per evaluation
        state = self.__dict__
        state["policy"], state["as_of"], state["stage"], state["backend"] = policy, as_of, stage, backend
        state["decisions"], state["summary"], state["outside_period"] = decisions, summary, outside_period

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy.name,
            "version": self.policy.version,
            "digest": self.policy.digest,
            **({"overrides": self.policy.to_json()["overrides"]} if self.policy.overrides else {}),
            "as_of": self.as_of.isoformat(),
            **({"outside_period": True} if self.outside_period else {}),
            "stage": self.stage,
            "backend": self.backend,
            "decisions": [d.to_json() for d in self.decisions.values()],
            "summary": self.summary.to_json() if self.summary else None,
        }

    def to_dict(self) -> dict[str, Any]:
        """The result as a dict of JSON values (what `to_json()` returns too: every `to_json()` of the API does)."""
        return self.to_json()

    def to_json_text(self, indent: int | None = None) -> str:
        """The result as strict JSON text, as `policy evaluate --format json` prints it."""
        return json_text(self.to_json(), indent=indent)

    def outcomes(self) -> dict[str, str]:
        """Subject id → outcome."""
        return outcomes_of(self.decisions)


def outcomes_of(decisions: Mapping[str, Decision]) -> dict[str, str]:
    """Subject id → outcome, without building a cohort's decisions (`Decisions`) where they are not built yet."""
    if isinstance(decisions, Decisions):
        return decisions.outcomes()
    return {i: d.outcome for i, d in decisions.items()}


def to_jsonable(value: Any) -> Any:
    """Facts and values as JSON data (dates as ISO text, models as dicts, a value not known as its needs)."""
    paths = getattr(value, "paths", None)
    if isinstance(paths, frozenset):  # `Missing`: what the value needs
        return {"missing": sorted(paths)}
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, (Table, Scale)):
        return to_jsonable(value.to_json())
    if isinstance(value, float) and value != value:
        return None
    return value
