"""Parameters of several values: tables keyed by one or two categories, and scales of brackets.

The checker asks this module for a parameter's type (the type of its cells, or a number for a
scale), its shape as a function (`Lookup`: keys on each date, where each row is written) and its
IR values (`Table`, `Scale`). Problems are located diagnostics: rows of mixed shape (one key and
two), keys of mixed kinds, cells of different types, brackets that do not ascend.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from engine.core.diagnostics import Diagnostic, Span
from engine.language.ir import Scale, Table
from engine.language.typecheck import Lookup
from engine.language.types import ANY, NUM, Ty, of_value, unify
from engine.source.model import ParameterFile, ScaleFile, TableFile
from engine.source.yamlsource import Path_, SourceMap

__all__ = ["shape_of", "lookup_of", "lowered_values", "check_shape"]


def shape_of(item: ParameterFile) -> str:
    """`table`, `scale` or `value`."""
    if item.table is not None or item.tables is not None:
        return "table"
    if item.scale is not None or item.scales is not None:
        return "scale"
    return "value"


def _dated(item: ParameterFile) -> list[tuple[dt.date | None, Any, tuple[Any, ...]]]:
    """(date or None, the table or scale, its path below the parameter), in date order.

    A date in a path is written as the file has it: YAML 1.2 reads `2026-07-01:` as text."""
    for shape in ("table", "scale"):
        one = getattr(item, shape)
        if one is not None:
            return [(None, one, (shape,))]
        many = getattr(item, shape + "s")
        if many is not None:
            return [(since, many[since], (shape + "s", since.isoformat())) for since in sorted(many)]
    return []


def _rows(table: TableFile) -> list[tuple[tuple[Any, ...], Any]]:
    rows: list[tuple[tuple[Any, ...], Any]] = []
    for key, cell in table.values.items():
        if isinstance(cell, dict):
            rows += [((key, inner), value) for inner, value in cell.items()]
        else:
            rows.append(((key,), cell))
    return rows


def check_shape(item: ParameterFile, name: str, source: SourceMap, path: Path_) -> tuple[Ty, list[Diagnostic]]:
    """The type of the parameter's cells (a number for a scale), and what is wrong with its shape."""
    found: list[Diagnostic] = []
    cell: Ty | None = None
    arities: set[int] = set()
    for _, part, where in _dated(item):
        base = path + where
        if isinstance(part, ScaleFile):
            found += _ascending(part, name, source, base)
            continue
        rows = _rows(part)
        arities |= {len(keys) for keys, _ in rows}
        kinds = {type(k) for keys, _ in rows for k in keys}
        if len(kinds) > 1:
            found.append(
                Diagnostic(
                    "table-keys",
                    f"the keys of table `{name}` mix text and numbers: use one kind of key",
                    source.span(base + ("values",)),
                )
            )
        cells = [value for _, value in rows] + ([part.otherwise] if part.otherwise is not None else [])
        for value in cells:
            cell = of_value(value) if cell is None else unify(cell, of_value(value))
            if cell is None:
                found.append(
                    Diagnostic(
                        "parameter-type", f"the values of table `{name}` have different types", source.span(base)
                    )
                )
                return ANY, found
    if len(arities) > 1:
        found.append(
            Diagnostic(
                "table-keys",
                f"the rows of table `{name}` mix one key and two keys: give every row the same number of keys",
                source.span(path, key=True),
            )
        )
    if item.scale is not None or item.scales is not None:
        return NUM, found
    return (cell if cell is not None else ANY), found


def _ascending(scale: ScaleFile, name: str, source: SourceMap, base: Path_) -> list[Diagnostic]:
    found = []
    for i in range(1, len(scale.brackets)):
        before, this = scale.brackets[i - 1].threshold, scale.brackets[i].threshold
        if this <= before:
            found.append(
                Diagnostic(
                    "unsorted-brackets",
                    f"the brackets of scale `{name}` must ascend: threshold {this} comes after {before}",
                    source.span(base + ("brackets", i, "threshold")),
                    "write the brackets from the lowest threshold to the highest, each higher than the one before",
                )
            )
    return found


def lookup_of(item: ParameterFile, ty: Ty, source: SourceMap, path: Path_, span: Span) -> Lookup:
    """The parameter as a function: its keys on each date and where each row is written."""
    dated = _dated(item)
    if shape_of(item) == "scale":
        return Lookup(kind="scale", arity=1, result=ty, span=span)
    spans: dict[tuple[Any, ...], Span] = {}
    entries = []
    for since, table, where in dated:
        rows = _rows(table)
        for keys, _ in rows:
            spans.setdefault(keys, source.span(path + where + ("values",) + keys[:1], key=True))
        when = since.isoformat() if since else ""
        entries.append((when, frozenset(keys for keys, _ in rows), table.otherwise is not None))
    arity = max((len(keys) for _, rows, _ in entries for keys in rows), default=1)
    return Lookup(kind="table", arity=arity, result=ty, dated=tuple(entries), span=span, row_spans=spans)


def lowered_values(item: ParameterFile, source: SourceMap, path: Path_) -> tuple[tuple[dt.date | None, Any], ...]:
    """The IR values: (date it takes effect or None, `Table` or `Scale`), each row located."""
    found: list[tuple[dt.date | None, Any]] = []
    for since, part, where in _dated(item):
        base = path + where
        if isinstance(part, ScaleFile):
            brackets = tuple((float(b.threshold), float(b.rate)) for b in part.brackets)
            spans = tuple(source.span(base + ("brackets", i)) for i in range(len(brackets)))
            found.append((since, Scale(kind=part.kind, brackets=brackets, spans=spans)))
        else:
            rows = tuple(_rows(part))
            spans = tuple(source.span(base + ("values", *keys)) for keys, _ in rows)
            table = Table(rows=rows, otherwise=part.otherwise, has_otherwise=part.otherwise is not None, spans=spans)
            found.append((since, table))
    return tuple(found)
