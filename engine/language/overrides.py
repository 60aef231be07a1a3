"""What-if: parameters set for one evaluation, without editing the package's files.

`override_parameters(ir, {"minimum_total_score": 80})` returns the IR with each named parameter
holding the given value (type-checked against the parameter's declared values). A dated parameter
takes the override from the as-of date of the evaluation on: whatever date is evaluated, the
override is the value in force, and `since` reports that date. Unknown names and values of the
wrong type are diagnostics that name `--set NAME`, never a half-applied override.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from engine.core.diagnostics import Diagnostic, Span
from engine.core.errors import PolicyError
from engine.language.ir import Parameter, PolicyIR
from engine.language.typecheck import suggest
from engine.language.types import ANY, NONE, NUM, ListTy, compatible, describe, of_value, unify

__all__ = ["override_parameters", "OVERRIDE_SINCE"]

OVERRIDE_SINCE = None  # an override holds on every date: `value_on` answers it with no date of its own


def _problem(name: str, message: str, help: str | None = None) -> Diagnostic:
    return Diagnostic(code="bad-override", message=message, span=Span(f"--set {name}"), help=help)


def _check(parameter: Parameter, value: Any) -> str | None:
    if parameter.shape != "value":
        return f"`{parameter.name}` is a {parameter.shape}: edit its rows in the package (a what-if sets single values)"
    ty = of_value(value)
    if ty == NONE:
        return f"`{parameter.name}` cannot be set to nothing"
    declared = parameter.ty
    if isinstance(declared, ListTy) and isinstance(ty, ListTy) and unify(declared.item, ty.item) is not None:
        return None
    if declared == ANY or (compatible(declared, ty) and (declared != NUM or ty == NUM)):
        return None
    return f"`{parameter.name}` is {describe(declared)}; `{value!r}` is {describe(ty)}"


def override_parameters(ir: PolicyIR, values: Mapping[str, Any]) -> PolicyIR:
    """`ir` with the parameters in `values` set to those values; PolicyError lists every problem."""
    problems: list[Diagnostic] = []
    parameters = dict(ir.parameters)
    for name, value in values.items():
        parameter = ir.parameters.get(name)
        if parameter is None:
            hint = suggest(name, ir.parameters)
            problems.append(_problem(name, f"unknown parameter `{name}`", hint))
            continue
        wrong = _check(parameter, value)
        if wrong is not None:
            problems.append(_problem(name, wrong))
            continue
        parameters[name] = dataclasses.replace(parameter, values=((OVERRIDE_SINCE, value),))
    if problems:
        raise PolicyError(problems)
    merged = dict(ir.overrides) | dict(values)
    return dataclasses.replace(ir, parameters=parameters, overrides=tuple(sorted(merged.items())))
