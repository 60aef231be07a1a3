"""Which row of a table, or which bracket of a scale, a decision used: for explanations and why-not.

A table or scale parameter is called with keys (`minimum_by_lead_kind(lead.kind)`); its value in a
decision is the row those keys found. Every call of the parameter in the policy is evaluated again
in the decision's scope (rebuilt from its trace), so an explanation names `company`, not the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.evaluation.compiler import Undetermined
from engine.evaluation.evaluate import scope_of
from engine.evaluation.reasons import format_value
from engine.evaluation.result import Decision
from engine.language.expr import Call, Node, walk
from engine.language.ir import PolicyIR, Scale, Table

if TYPE_CHECKING:
    from engine.embedding.policy import Policy

__all__ = ["Used", "call_sites", "used_rows", "describe_shape", "shape_rows"]


@dataclass(frozen=True)
class Used:
    """One use of a table or scale in a decision: its keys (or amount), the value and the row or bracket."""

    name: str
    keys: tuple[Any, ...]
    value: Any  # None when no row was found (or a key was missing)
    row: tuple[Any, ...] | None = None  # the row's keys; None: `otherwise` (table) or no row
    bracket: int | None = None  # scale: the index of the bracket the amount falls in (None: below the first)
    found: bool = True
    missing: tuple[str, ...] = ()  # facts the keys needed and did not have
    scale: Scale | None = None

    @property
    def rows(self) -> list[str]:
        """The rows this use read, named as in documents and diffs: `company`, `(otherwise)`, `bracket 2`.

        A scale reads every bracket (a threshold moved past the amount changes the result)."""
        if self.scale is not None:
            return [f"bracket {i + 1}" for i in range(len(self.scale.brackets))]
        if self.missing:
            return []
        if self.row is None:
            return ["(otherwise)"] if self.found else []
        return [", ".join(format_value(k) for k in self.row)]

    @property
    def call(self) -> str:
        return f"{self.name}({', '.join(format_value(k) for k in self.keys)})"

    def text(self) -> str:
        """`minimum_by_lead_kind(company) = 80.0`, with how the value was found when it was not a row."""
        if self.missing:
            return f"{self.name}(...) cannot be looked up: missing {', '.join(self.missing)}"
        if not self.found:
            return f"{self.call} has no value: the table has no row for it and no `otherwise`"
        shown = f"{self.call} = {format_value(self.value)}"
        if self.scale is not None:
            return shown + f" ({_bracket_text(self.scale, self.bracket)})"
        return shown if self.row is not None else shown + " (no row for it: the table's `otherwise`)"

    def to_json(self) -> dict[str, Any]:
        return {
            "keys": [format_value(k) if not isinstance(k, (int, float, str)) else k for k in self.keys],
            "value": self.value,
            "row": None if self.row is None else list(self.row),
            "bracket": None if self.bracket is None else self.bracket + 1,
            "found": self.found,
            "missing": list(self.missing),
        }


def _bracket_text(scale: Scale, index: int | None) -> str:
    kind = scale.kind.replace("_", " ")
    if index is None:
        return f"{kind} scale: below its first bracket, from {format_value(scale.brackets[0][0])}"
    threshold, rate = scale.brackets[index]
    return f"{kind} scale: bracket {index + 1}, from {format_value(threshold)} at rate {format_value(rate)}"


def call_sites(ir: PolicyIR, name: str) -> list[Call]:
    """Every call of the table or scale `name` in the policy's values, rules, stages and grants."""
    roots: list[Node] = [v.expr for v in ir.values.values()] + [r.when for r in ir.rules.values()]
    for stage in ir.stages.values():
        roots += [stage.pool, *(k.expr for k in stage.rank_by), *(r.when for r in stage.outcomes)]
        roots += [g.quantity for r in stage.outcomes for g in r.grants if g.quantity is not None]
        roots += [stage.slots] if stage.slots is not None else []
        roots += [n for t in stage.tracks for n in (t.when, t.reserved)]
        roots += [stage.capacity.total, stage.capacity.takes] if stage.capacity else []
    return [node for root in roots for node in walk(root) if isinstance(node, Call) and node.func == name]


def used_rows(policy: Policy, decision: Decision, name: str) -> list[Used]:
    """The rows (or brackets) of `name` this decision used, one per distinct key, in the policy's order."""
    value, _ = decision.parameters.get(name, (None, None))
    if not isinstance(value, (Table, Scale)):
        return []
    compiled = policy.compiled
    scope = scope_of(compiled, decision)
    found: dict[tuple[Any, ...], Used] = {}
    for call in call_sites(policy.ir, name):
        try:
            keys = tuple(compiled.fn(arg)(scope) for arg in call.args)
        except Undetermined as error:
            missing = tuple(sorted(error.missing))
            found.setdefault(("?",) + missing, Used(name, (), None, found=False, missing=missing))
            continue
        except Exception:  # noqa: BLE001 - a key that cannot be computed outside its comprehension
            continue
        found.setdefault(keys, _use(name, value, keys))
    return list(found.values())


def _use(name: str, value: Table | Scale, keys: tuple[Any, ...]) -> Used:
    if isinstance(value, Scale):
        return Used(name, keys, round(value.apply(keys[0]), 10), bracket=value.bracket_of(keys[0]), scale=value)
    present, result, row = value.lookup(keys)
    return Used(name, keys, result if present else None, row=row, found=present)


def shape_rows(values: tuple[tuple[Any, Any], ...]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """A dated table or scale as one table for people: a row per key (or bracket), a column per date.

    Returns the header and the rows; a key with no row on a date shows `—`.
    """
    dated = sorted(values, key=lambda pair: (pair[0] is not None, pair[0]))
    columns = tuple(f"from {since.isoformat()}" if since else "value" for since, _ in dated)
    cells: dict[str, dict[int, str]] = {}
    for column, (_, value) in enumerate(dated):
        for key, text in describe_shape(value):
            cells.setdefault(key, {})[column] = text
    first = "bracket" if dated and isinstance(dated[0][1], Scale) else "key"
    rows = [(key, *(row.get(c, "—") for c in range(len(dated)))) for key, row in cells.items()]
    return (first, *columns), rows


def describe_shape(value: Any) -> list[tuple[str, str]]:
    """A table's rows or a scale's brackets as (key, value) text pairs, for documents and diffs."""
    if isinstance(value, Table):
        rows = [(", ".join(format_value(k) for k in keys), format_value(v)) for keys, v in value.rows]
        return rows + ([("(otherwise)", format_value(value.otherwise))] if value.has_otherwise else [])
    if isinstance(value, Scale):
        kind = value.kind.replace("_", " ")
        return [
            (f"{i + 1}", f"from {format_value(t)} at rate {format_value(r)} ({kind})")
            for i, (t, r) in enumerate(value.brackets)
        ]
    return []
