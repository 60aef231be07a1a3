"""Static analyses of a checked package, and the findings of the search stated as diagnostics.

Static (run by the checker, so every `load_policy` reports them):
- `duplicate-date` (error): one parameter gives the same date twice, in two spellings
  (`2026-01-15` and `"2026-01-15"`), so one of the values is silently lost;
- `unsorted-dates` (warning): dated values written out of date order;
- `parameter-not-in-force` (error): a stage declares the period it applies to (`dates`), and a
  parameter it uses (directly or through its rules and values) has no value in force on its first day;
- `shadowed-row` (warning): an outcome row that can never decide because an earlier row holds
  whenever it does (an earlier `true` row, the same condition, or one it implies syntactically).

Found by search (`policy check`, from what the generated cohorts showed):
- `rule-never-holds` / `rule-always-holds` (warnings), with a witness: the facts the rule reads,
  as they were in one generated subject;
- `row-never-decides` (warning): an outcome row no generated subject reached.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from engine.core.diagnostics import Diagnostic, Span
from engine.core.errors import EvaluationError
from engine.core.i18n import translations_of
from engine.language.expr import Binary, BoolOp, Call, Const, Name, Node, Unary, render
from engine.language.ir import OutcomeRow, PolicyIR, Stage
from engine.source.yamlsource import SourceMap

__all__ = [
    "Observed",
    "dated_value_findings",
    "missing_translations",
    "package_languages",
    "static_findings",
    "shadowing",
    "shadowed_rows",
    "period_findings",
    "stage_parameters",
    "decidable_from",
    "search_findings",
]


def _as_date(key: Any) -> dt.date | None:
    if isinstance(key, dt.date):
        return key
    try:
        return dt.date.fromisoformat(str(key))
    except ValueError:
        return None


def dated_value_findings(files: Iterable[tuple[Any, SourceMap]]) -> list[Diagnostic]:
    """Dates given twice (in two spellings) or out of order in a parameter's `values` (`tables`, `scales`)."""
    found: list[Diagnostic] = []
    for sections, source in files:
        for name, parameter in sections.parameters.items():
            shape = next((s for s in ("values", "tables", "scales") if getattr(parameter, s, None) is not None), None)
            if shape is None:
                continue
            written = [
                (path[3], span)
                for path, span in source.keys.items()
                if len(path) == 4 and path[:3] == ("parameters", name, shape)
            ]
            seen: dict[dt.date, Span] = {}
            previous: dt.date | None = None
            for key, span in written:
                date = _as_date(key)
                if date is None:
                    continue
                if date in seen:
                    found.append(
                        Diagnostic(
                            "duplicate-date",
                            f"parameter `{name}` gives a value for {date} twice",
                            span,
                            "keep one value per date",
                            labels=((seen[date], "first given here"),),
                        )
                    )
                elif previous is not None and date < previous:
                    found.append(
                        Diagnostic(
                            code="unsorted-dates",
                            message=f"dated values of `{name}` are out of order: {date} comes after {previous}",
                            span=span,
                            help=(
                                "the value in force is the latest one on or before the as-of date, whatever the order: "
                                "write them in date order"
                            ),
                            severity="warning",
                        )
                    )
                seen.setdefault(date, span)
                previous = max(previous or date, date)
    return found


def _implies(a: Node, b: Node) -> bool:
    """Whether `a` holding makes `b` hold, by the shape of the two conditions alone."""
    if (isinstance(b, Const) and b.value is True) or (isinstance(a, Const) and a.value is False) or a == b:
        return True
    if isinstance(b, BoolOp) and b.op == "or" and any(_implies(a, o) for o in b.operands):
        return True
    if isinstance(b, BoolOp) and b.op == "and" and all(_implies(a, o) for o in b.operands):
        return True
    if isinstance(a, BoolOp) and a.op == "and" and any(_implies(o, b) for o in a.operands):
        return True
    return isinstance(a, BoolOp) and a.op == "or" and all(_implies(o, b) for o in a.operands)


def _row_text(row: OutcomeRow) -> str:
    return f"row {row.index} (`{row.outcome}`)"


def shadowing(stage: Stage) -> list[tuple[OutcomeRow, OutcomeRow]]:
    """(row, an earlier row that holds whenever it does), for every row that can never decide."""
    found: list[tuple[OutcomeRow, OutcomeRow]] = []
    for j, row in enumerate(stage.outcomes):
        earlier = stage.outcomes[:j]
        blame = next((r for r in earlier if _implies(row.when, r.when)), None)
        if blame is None and earlier and _implies(row.when, BoolOp(row.span, "or", tuple(r.when for r in earlier))):
            blame = earlier[-1]
        if blame is not None:
            found.append((row, blame))
    return found


def shadowed_rows(stage: Stage) -> list[Diagnostic]:
    """Rows that can never decide because earlier rows hold whenever they do."""
    found: list[Diagnostic] = []
    for row, blame in shadowing(stage):
        why = (
            "holds always"
            if isinstance(blame.when, Const) and blame.when.value is True
            else f"holds whenever `{render(row.when)}` does"
        )
        message = f"{_row_text(row)} of stage `{stage.id}` never decides: {_row_text(blame)} above it {why}"
        found.append(
            Diagnostic(
                code="shadowed-row",
                message=message,
                span=row.span,
                help="remove the row, or move it above the row that shadows it",
                severity="warning",
                labels=((blame.span, "shadowed by this row"),),
            )
        )
    return found


def stage_parameters(ir: PolicyIR, stage: str) -> list[str]:
    """The parameters deciding a stage needs: its own, and those of every value and rule (all are settled)."""
    graph, node = ir.dependencies, f"stage:{stage}"
    own = {graph.nodes[n]["name"] for n in graph.ancestors(node) if graph.nodes[n].get("kind") == "parameter"}
    settled = {
        p
        for p in ir.parameters
        if any(graph.nodes[s].get("kind") in ("value", "rule") for s in graph.successors(f"parameter:{p}"))
    }
    return sorted(own | settled)


def decidable_from(ir: PolicyIR, stage: str) -> dt.date | None:
    """The first date on which every parameter the stage uses has a value (None: always)."""
    firsts = [
        min(d for d, _ in ir.parameters[p].values if d is not None)
        for p in stage_parameters(ir, stage)
        if all(d is not None for d, _ in ir.parameters[p].values)
    ]
    return max(firsts) if firsts else None


def period_findings(ir: PolicyIR) -> list[Diagnostic]:
    """Parameters with no value in force on the first day of a stage's declared period."""
    found: list[Diagnostic] = []
    for stage in ir.stages.values():
        if stage.dates is None:
            continue
        start, until = stage.dates
        for name in stage_parameters(ir, stage.id):
            parameter = ir.parameters[name]
            dates = [d for d, _ in parameter.values]
            if None in dates or min(dates) <= start:  # type: ignore[type-var, operator]
                continue
            first = min(dates)  # type: ignore[type-var]
            period = f"from {start}" + (f" until {until}" if until else "")
            message = (
                f"parameter `{name}` has no value in force on {start}, but stage `{stage.id}` uses it "
                f"{period} (its first value takes effect on {first})"
            )
            found.append(
                Diagnostic(
                    "parameter-not-in-force",
                    message,
                    stage.span,
                    f"give `{name}` a value dated {start} or earlier, or start the stage's `dates` on {first}",
                    labels=((parameter.span, "defined here"),),
                )
            )
    return found


class _NotStatic(Exception):
    """The expression reads something only an evaluation knows (the cohort's context)."""


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "//": lambda a, b: a // b,
    "%": lambda a, b: a % b,
}


_FUNCTIONS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "round": round, "abs": abs}


def _static(node: Node, values: dict[str, Any]) -> Any:
    """The value of an expression over parameters alone, or `_NotStatic`."""
    if isinstance(node, Const) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, Name) and node.name in values:
        return values[node.name]
    if isinstance(node, Unary) and node.op in ("-", "+"):
        value = _static(node.operand, values)
        return -value if node.op == "-" else value
    if isinstance(node, Binary) and node.op in _ARITHMETIC:
        return _ARITHMETIC[node.op](_static(node.left, values), _static(node.right, values))
    if isinstance(node, Call) and node.func in ("min", "max", "round", "abs") and node.args:
        args = [_static(a, values) for a in node.args]
        return _FUNCTIONS[node.func](*args)
    raise _NotStatic


def _names(node: Any) -> set[str]:
    if isinstance(node, Name):
        return {node.name}
    found: set[str] = set()
    for value in vars(node).values() if hasattr(node, "__dataclass_fields__") else ():
        for item in value if isinstance(value, tuple) else (value,):
            if hasattr(item, "__dataclass_fields__") and not isinstance(item, Span):
                found |= _names(item)
    return found


def slot_findings(ir: PolicyIR) -> list[Diagnostic]:
    """A stage's `slots` that is not a whole number of at least 0 on some date, where parameters alone decide it."""
    found: list[Diagnostic] = []
    for stage in ir.stages.values():
        if stage.slots is None:
            continue
        used = sorted(n for n in _names(stage.slots) if n in ir.parameters)
        start, until = stage.dates if stage.dates is not None else (None, None)
        dates = {d for p in used for d, _ in ir.parameters[p].values if d is not None}
        dates = {d for d in dates if (start is None or d >= start) and (until is None or d <= until)}
        dates |= {start} if start is not None else set()
        for date in sorted(dates) or [dt.date.max]:
            try:
                values = {p: ir.parameters[p].value_on(date)[0] for p in used}
                value = _static(stage.slots, values)
            except (_NotStatic, EvaluationError, TypeError, ValueError, ZeroDivisionError, OverflowError):
                # context, a parameter not yet in force, a value that is not a number: decided when evaluated
                continue
            if isinstance(value, (int, float)) and (value < 0 or not float(value).is_integer()):
                on = f" on {date}" if date != dt.date.max else ""
                found.append(
                    Diagnostic(
                        "slots-not-whole",
                        f"`slots` of stage `{stage.id}` is {value:g}{on} (`{render(stage.slots)}`): places are "
                        "counted in whole numbers of at least 0",
                        stage.slots.span,
                        "round it (`round(...)`), or give the parameters values that divide evenly",
                    )
                )
                break
    return found


def static_findings(ir: PolicyIR) -> list[Diagnostic]:
    """Every static finding about a checked package (IR level)."""
    found = period_findings(ir) + slot_findings(ir)
    for stage in ir.stages.values():
        found += shadowed_rows(stage)
    return found


@dataclass
class Observed:
    """What the search saw: each rule's results with a witness, and the rows that decided."""

    subjects: int = 0
    rules: dict[str, dict[str, str]] = field(default_factory=dict)  # rule -> status -> witness text
    rows: dict[tuple[str, int], int] = field(default_factory=dict)  # (stage, row) -> times it decided

    def rule(self, name: str, status: str, witness: Any) -> None:
        seen = self.rules.setdefault(name, {})
        if status not in seen:
            seen[status] = witness() if callable(witness) else str(witness)


def search_findings(ir: PolicyIR, observed: Observed, shadowed: set[tuple[str, int]]) -> list[Diagnostic]:
    """Rules seen only holding or only failing, and rows never reached, as warnings."""
    found: list[Diagnostic] = []
    if observed.subjects == 0:
        return found
    for name, rule in ir.rules.items():
        seen = observed.rules.get(name, {})
        for missing, other in (("held", "failed"), ("failed", "held")):
            if missing not in seen and other in seen:
                code = "rule-never-holds" if missing == "held" else "rule-always-holds"
                never = "never held" if missing == "held" else "never failed"
                message = f"rule `{name}` {never} in {observed.subjects} generated subjects"
                hint = (
                    f"witness: it {other} with {seen[other]}; a policy test whose facts make it "
                    f"{'hold' if missing == 'held' else 'fail'} also starts the search there"
                )
                found.append(Diagnostic(code=code, message=message, span=rule.span, help=hint, severity="warning"))
    for stage in ir.stages.values():
        for row in stage.outcomes:
            if (stage.id, row.index) not in observed.rows and (stage.id, row.index) not in shadowed:
                message = (
                    f"{_row_text(row)} of stage `{stage.id}` decided no subject in {observed.subjects} "
                    "generated subjects"
                )
                found.append(
                    Diagnostic(
                        code="row-never-decides",
                        message=message,
                        span=row.span,
                        help=(
                            "an earlier row may hold whenever this one does; if not, a policy test reaching it also "
                            "starts the search there"
                        ),
                        severity="warning",
                    )
                )
    return found


# --- texts lacking a translation ------------------------------------------------------------------
# A package that gives any title, message or label in a language (`{en: ..., ko: ...}`) speaks that
# language; every other text for people in it should then be given in it too. A text that is not
# falls back to English where it is read, and `policy check` warns (`missing-translation`).

_TEXT_FIELDS = frozenset({"title", "held", "failed"})
_TextPath = tuple[str | int, ...]


def _texts(item: Any, path: _TextPath) -> Iterator[tuple[_TextPath, str]]:
    """Every text for people in a file model, with its path: titles, messages and labels."""
    if isinstance(item, BaseModel):
        for name in type(item).model_fields:
            value = getattr(item, name)
            if name in _TEXT_FIELDS and isinstance(value, str):
                yield path + (name,), value
            elif name == "labels" and isinstance(value, dict):
                yield from ((path + (name, k), v) for k, v in value.items())
            else:
                yield from _texts(value, path + (name,))
    elif isinstance(item, dict):
        for key, value in item.items():
            yield from _texts(value, path + (str(key),))
    elif isinstance(item, (list, tuple)):
        for i, value in enumerate(item):
            yield from _texts(value, path + (i,))


def package_languages(files: Iterable[tuple[Any, SourceMap]]) -> set[str]:
    """The languages any text of the package is given in (English always)."""
    found = {"en"}
    for sections, _ in files:
        for _, text in _texts(sections, ()):
            found |= set(translations_of(text))
    return found


def missing_translations(files: Iterable[tuple[Any, SourceMap]]) -> list[Diagnostic]:
    """A warning for each text not given in a language the package speaks elsewhere."""
    files = list(files)
    languages = package_languages(files)
    if languages == {"en"}:
        return []
    found = []
    for sections, source in files:
        for path, text in _texts(sections, ()):
            lacking = sorted(languages - set(translations_of(text)))
            if lacking:
                found.append(
                    Diagnostic(
                        "missing-translation",
                        f"`{str(text)[:60]}` is not given in {', '.join(f'`{lang}`' for lang in lacking)}: "
                        "readers of that language see the English",
                        source.span(path),
                        "give it per language, e.g. `{en: ..., " + lacking[0] + ": ...}`",
                        severity="warning",
                    )
                )
    return found
