"""Schemathesis against the live app's own OpenAPI schema, in process over ASGI (no port needed):
no generated request, valid or not, answers 500, and every answer conforms to the schema (status
code, content type, headers, body), with every check the installed schemathesis runs by default.

Bounded and deterministic: 50 examples per operation, derandomized, no example database.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from pydantic import ValidationError

from engine import PolicyStore
from engine.service.server import create_app
from tests.conftest import RULES

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install -e '.[test]')")

STORE = PolicyStore(RULES)
API = schemathesis.openapi.from_asgi("/openapi.json", create_app(STORE))
# Refusals JSON Schema cannot express: a fact model's own validators (`model_validator`, e.g. "open-
# source code needs `upstream`"), and evaluation errors (no parameter in force on that date).
CUSTOM = {"value_error", "assertion_error"}


def _integral_float(error: Any) -> bool:
    """`4059492.0` for a strict integer: JSON Schema counts it an integer, pydantic's strict int does
    not (a known gap between the two, left to the fact model: see the report of issue 9)."""
    return error["type"] == "int_type" and isinstance(error["input"], float) and error["input"].is_integer()


def _only_unexpressible_refusals(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schema-valid data is accepted, or refused (422) only for what its JSON Schema cannot say.

    Replaces schemathesis' `positive_data_acceptance`, which counts every 422 to schema-valid data
    as the schema promising too much: here, such a 422 must come from a fact model's own
    validator or from evaluation, never from a constraint the schema could have stated.
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    errors = json.loads(response.content)["errors"]
    if all(e["code"] in ("evaluation-error", "outside-period") for e in errors):
        return True  # evaluation refused it: a parameter not in force, or a date outside the stage's period
    try:
        STORE.current.ir.schema.cohort.model_validate(case.body)
    except ValidationError as error:
        kinds = {e["type"] for e in error.errors() if not _integral_float(e)}
        assert kinds <= CUSTOM, f"schema-valid body refused by built-in constraints {kinds}: {errors}"
        return True
    raise AssertionError(f"a valid body refused: {errors}")


BOUNDED = settings(
    max_examples=50, derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)


@API.parametrize()
@BOUNDED
def test_schemathesis_finds_nothing(case: Any) -> None:
    """Every operation, positive and negative data, every default check (50 examples each)."""
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    case.call_and_validate(excluded_checks=[positive_data_acceptance], additional_checks=[_only_unexpressible_refusals])
