"""Hypothesis strategies shared by every property test: cohorts of the Sovereign AI programme.

Values are drawn near the policy's own cut-offs (the 70-point minimum, the 95% target, a panel
majority), optional facts are sometimes missing, and provenance mixes team-trained and
pretrained upstream weights, so the generated cohorts reach every rule both ways.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

ids = st.sampled_from(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"])
countries = st.sampled_from(["KR", "CN", "US", "FR"])


def _points(maximum: float) -> st.SearchStrategy[float]:
    """Scores, often near the 70% of the maximum where the 70-point minimum bites."""
    near = st.floats(maximum * 0.68, maximum * 0.9, allow_nan=False)
    return st.one_of(near, st.sampled_from([maximum, 0.0])).map(lambda v: round(v, 1))


def mostly(strategy: st.SearchStrategy[Any], absent: Any = None) -> st.SearchStrategy[Any]:
    """`strategy` nine times in ten, else `absent` (a missing fact)."""
    return st.sampled_from([True] * 9 + [False]).flatmap(lambda present: strategy if present else st.just(absent))


def present(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def upstreams() -> st.SearchStrategy[dict[str, Any]]:
    base = {
        "model": st.sampled_from(["Qwen2.5-VL", "Llama 3", "GLM-4.5"]),
        "owner": st.just("someone"),
        "country": countries,
    }
    flags = {
        "licence_restricted": mostly(st.sampled_from([False, False, True])),
        "credited": mostly(st.sampled_from([True, True, False])),
    }
    return st.fixed_dictionaries({**base, **flags}).map(present)


def weights() -> st.SearchStrategy[dict[str, Any] | None]:
    team = st.just({"origin": "team"})
    upstream = st.fixed_dictionaries(
        {"origin": st.just("upstream"), "upstream": upstreams(), "use": st.sampled_from(["frozen", "fine_tuned"])}
    )
    return st.one_of(team, st.none(), team, team, team, team, upstream)


def code() -> st.SearchStrategy[dict[str, Any] | None]:
    borrowed = st.fixed_dictionaries({"origin": st.just("open_source"), "upstream": upstreams()})
    return st.one_of(st.just({"origin": "team"}), st.none(), st.just({"origin": "team"}), borrowed)


def components() -> st.SearchStrategy[dict[str, Any]]:
    kinds = st.sampled_from(["language_backbone", "vision_encoder", "audio_encoder", "tokenizer", "architecture_code"])
    return st.fixed_dictionaries(
        {"name": st.sampled_from(["lm", "vision", "audio", "tok"]), "kind": kinds, "weights": weights(), "code": code()}
    )


def models() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "name": st.just("model"),
            "components": st.lists(components(), min_size=1, max_size=3),
            "target_share_of_global": mostly(st.sampled_from([0.9, 0.95, 1.0])),
            "team_controls_development": mostly(st.sampled_from([True] * 5 + [False])),
            "team_controls_operation": mostly(st.sampled_from([True] * 5 + [False])),
        }
    ).map(present)


def scores() -> st.SearchStrategy[dict[str, Any]]:
    benchmark = st.fixed_dictionaries(
        {"nia": _points(10), "global_common": _points(20), "global_individual": _points(10)}
    )
    return st.fixed_dictionaries(
        {"benchmark": benchmark, "expert": mostly(_points(35)), "user": mostly(_points(25))}
    ).map(present)


def panels() -> st.SearchStrategy[dict[str, Any]]:
    return st.integers(1, 11).flatmap(
        lambda members: st.fixed_dictionaries(
            {
                "members": st.just(members),
                "votes_for": mostly(st.integers(0, members)),
                "score": mostly(st.sampled_from([70.0, 80.0, 84.6, 90.0])),
            }
        ).map(present)
    )


def histories() -> st.SearchStrategy[dict[str, Any]]:
    record = st.fixed_dictionaries(
        {"stage": st.just("stage1"), "outcome": st.sampled_from(["advanced", "eliminated", "disqualified"])}
    )
    entry = st.sampled_from(["selected_2025", "applicant_2025_not_selected", "new_applicant"])
    return st.fixed_dictionaries({"entry": entry, "stages": st.lists(record, max_size=1)})


def consortia(id: str) -> st.SearchStrategy[dict[str, Any]]:
    lead = {"name": id.title(), "country": "KR", "kind": "company"}
    return st.fixed_dictionaries(
        {
            "id": st.just(id),
            "name": st.just(id.title()),
            "lead": st.just(lead),
            "history": histories(),
            "model": mostly(models()),
            "scores": mostly(scores()),
            "panel": mostly(panels()),
        }
    ).map(present)


def cohorts(stage: str | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """A cohort file's data for `stage1` or `additional_call` (drawn when not given)."""
    stages = st.just(stage) if stage else st.sampled_from(["stage1", "additional_call"])
    return st.builds(
        lambda stage, slots, people: {
            "context": {
                "programme": "test",
                "stage": stage,
                "date": "2026-01-15" if stage == "stage1" else "2026-02-20",
                "slots_planned": slots,
            },
            "consortia": people,
        },
        stages,
        st.integers(0, 2),
        st.lists(ids, min_size=1, max_size=6, unique=True).flatmap(
            lambda names: st.tuples(*(consortia(n) for n in names)).map(list)
        ),
    )


def gpu_applicants(id: str) -> st.SearchStrategy[dict[str, Any]]:
    """One application to the GPU-hour call (rules/gpu_call): requests near what is left matter."""
    kinds = st.sampled_from(["sme", "large_firm", "university", "institute"])
    domestic = st.sampled_from([True, True, True, False])
    lead = st.builds(lambda kind, home: {"name": id.title(), "kind": kind, "domestic": home}, kinds, domestic)
    hours = st.one_of(st.sampled_from([100.0, 500.0, 1000.0, 2000.0, 2500.0, 3000.0, 4000.0]), st.integers(1, 5000))
    return st.fixed_dictionaries(
        {
            "id": st.just(id),
            "lead": lead,
            "requested_gpu_hours": mostly(hours.map(float)),
            "score": mostly(st.integers(50, 100).map(float)),
            "open_results": mostly(st.sampled_from([True, True, True, False])),
        }
    ).map(present)


def gpu_cohorts() -> st.SearchStrategy[dict[str, Any]]:
    """A cohort of the GPU-hour call, as of a date before or after the pool shrinks."""
    return st.builds(
        lambda date, people: {"context": {"stage": "allocation", "date": date}, "applicants": people},
        st.sampled_from(["2026-06-15", "2026-10-01"]),
        st.lists(ids, min_size=1, max_size=7, unique=True).flatmap(
            lambda names: st.tuples(*(gpu_applicants(n) for n in names)).map(list)
        ),
    )


def households(id: str) -> st.SearchStrategy[dict[str, Any]]:
    """One claim to the household benefit (tests/fixtures/benefit): incomes near the caps and the taper's
    thresholds, sizes on and beyond the tables' rows, assets near each region's cap."""
    incomes = st.one_of(
        st.sampled_from([0.0, 400.0, 1000.0, 1200.0, 1250.0, 1800.0, 1850.0, 2300.0, 2700.0, 3000.0, 3100.0]),
        st.integers(0, 3500).map(float),
    )
    assets = st.one_of(st.sampled_from([35000.0, 45000.0, 60000.0]), st.integers(0, 70000).map(float))
    return st.fixed_dictionaries(
        {
            "id": st.just(id),
            "size": st.integers(1, 8),
            "region": st.sampled_from(["capital", "city", "rural"]),
            "tenure": st.sampled_from(["owner", "renter"]),
            "resident": mostly(st.sampled_from([True, True, True, False])),
            "monthly_income": mostly(incomes),
            "assets": mostly(assets),
        }
    ).map(present)


def benefit_claims() -> st.SearchStrategy[dict[str, Any]]:
    """Claims to the household benefit, as of a date before or after the uprating of 1 July 2026."""
    return st.builds(
        lambda date, people: {"context": {"stage": "claim", "date": date}, "households": people},
        st.sampled_from(["2026-03-01", "2026-06-30", "2026-07-01", "2026-11-15"]),
        st.lists(ids, min_size=1, max_size=7, unique=True).flatmap(
            lambda names: st.tuples(*(households(n) for n in names)).map(list)
        ),
    )


# --- cohorts that reach the decisive cases of ranking ------------------------------------------
#
# `cohorts()` draws realistic facts, and so rarely ties two subjects or fills the places. The
# strategies below build the decisive cases on purpose: every score is a whole number drawn from a
# few values (so keys tie exactly), the first ranking key takes at most three values in a cohort of
# five or more at stage 1 (so, by pigeonhole, two subjects always tie on it), and there are more
# consortia than places. Sovereign, non-sovereign and undetermined models are mixed in one cohort,
# and each comparison the stages use is drawn on both sides: total ≥ minimum (85, 78, 72 vs 65),
# rank ≤ places (5 to 7 teams for 4 places; 2 to 5 for 1 or 2), lead.country == home (KR, CN),
# lead.kind in the admitted kinds (a company, an institute, a university; a non-profit), no
# pretrained or foreign components (none, one), licences unrestricted and work credited (yes, no),
# team control (yes, no, unknown), the panel majority (4, 6 or 8 of 10 votes) and the 95% target
# (0.9, 0.95, 1.0). `test_the_strategies_reach_every_comparison_rule_both_ways` holds them to it.

LEAD_KINDS = st.sampled_from(["company", "company", "research_institute", "university", "nonprofit"])
MODEL_KINDS = [
    "sovereign",
    "sovereign",
    "sovereign",
    "foreign_weights",
    "restricted_licence",
    "no_operation_control",
    "control_unknown",
]


def _model(kind: str, target: float = 1.0) -> dict[str, Any]:
    lm = {"name": "lm", "kind": "language_backbone", "weights": {"origin": "team"}, "code": {"origin": "team"}}
    model: dict[str, Any] = {
        "name": "model",
        "components": [lm],
        "target_share_of_global": target,
        "team_controls_development": True,
        "team_controls_operation": True,
    }
    if kind in ("foreign_weights", "restricted_licence"):
        restricted = kind == "restricted_licence"
        upstream = {"model": "Qwen2.5-VL", "owner": "someone", "country": "CN", "credited": not restricted}
        upstream["licence_restricted"] = restricted
        weights = {"origin": "upstream", "upstream": upstream, "use": "frozen"}
        model["components"] = [lm, {"name": "vision", "kind": "vision_encoder", "weights": weights}]
    elif kind == "no_operation_control":
        model["team_controls_operation"] = False
    elif kind == "control_unknown":
        del model["team_controls_operation"]
    return model


def _split_scores(total: int, expert: int, benchmark: int) -> dict[str, Any]:
    """Scores whose total, expert score and benchmark score are exactly `total`, `expert`, `benchmark`."""
    nia = benchmark - 24  # 32 → 8 + 16 + 8, 34 → 10 + 16 + 8
    return {
        "benchmark": {"nia": float(nia), "global_common": 16.0, "global_individual": 8.0},
        "expert": float(expert),
        "user": float(total - expert - benchmark),
    }


@st.composite
def ranked_cohorts(draw: st.DrawFn, stage: str = "stage1") -> dict[str, Any]:
    """A cohort of `stage1` (4 places) or `additional_call` (1 or 2 places) built to reach ties on
    the first and later ranking keys, full and overflowing places, and every outcome."""
    names = draw(st.permutations(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"]))
    if stage == "stage1":
        size, places = draw(st.integers(5, 7)), 4
        totals = draw(st.lists(st.sampled_from([85, 78, 72, 65]), min_size=1, max_size=3, unique=True))
        people = []
        for name in names[:size]:
            people.append(
                {
                    "id": name,
                    "name": name.title(),
                    "lead": {
                        "name": name.title(),
                        "country": draw(st.sampled_from(["KR"] * 5 + ["CN"])),
                        "kind": draw(LEAD_KINDS),
                    },
                    "history": {"entry": "selected_2025", "stages": []},
                    "model": _model(draw(st.sampled_from(MODEL_KINDS))),
                    "scores": _split_scores(
                        draw(st.sampled_from(totals)), draw(st.sampled_from([28, 30])), draw(st.sampled_from([32, 34]))
                    ),
                }
            )
        context = {"programme": "test", "stage": stage, "date": "2026-01-15", "slots_planned": places}
        return {"context": context, "consortia": people}
    places = draw(st.integers(1, 2))
    size = draw(st.integers(places + 1, 5))
    panel_scores = draw(st.lists(st.sampled_from([90.0, 84.6, 80.0]), min_size=1, max_size=size - 1, unique=True))
    people = []
    for name in names[:size]:
        entry = draw(
            st.sampled_from(["applicant_2025_not_selected", "new_applicant", "new_applicant", "selected_2025"])
        )
        panel = {
            "members": 10,
            "votes_for": draw(st.sampled_from([8, 8, 6, 4])),
            "score": draw(st.sampled_from(panel_scores)),
        }
        people.append(
            {
                "id": name,
                "name": name.title(),
                "lead": {"name": name.title(), "country": "KR", "kind": "company"},
                "history": {"entry": entry, "stages": []},
                "model": _model(draw(st.sampled_from(MODEL_KINDS)), draw(st.sampled_from([1.0, 0.95, 0.9]))),
                "panel": panel,
            }
        )
    context = {"programme": "test", "stage": stage, "date": "2026-02-20", "slots_planned": places}
    return {"context": context, "consortia": people}
