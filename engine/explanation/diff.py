"""What an edit changes: two versions of a package compared by meaning, and the decisions that move.

`diff_packages(old, new)` lists the definitions whose meaning changed: parameters (each dated
value), values and rules (their expressions, rendered), the outcome rows of each stage, and a
stage's pool, ranking, places and routing; added and removed definitions too. `diff_decisions`
evaluates the same facts under both and lists every decision whose outcome or rank changed,
each with its causes: the changed definitions on its explanation path (old or new), and the
rules on that path whose status flipped. Unchanged decisions are counted, not listed.
"""

from __future__ import annotations

import datetime as dt
import html
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.core.text import shown
from engine.embedding.policy import Policy
from engine.evaluation.reasons import format_value, status_of
from engine.evaluation.result import Decision, Result
from engine.explanation.lookups import shape_rows
from engine.language.expr import render
from engine.language.ir import OutcomeRow, Parameter, PolicyIR, Stage

__all__ = ["Change", "DecisionChange", "PolicyDiff", "diff_packages", "diff_decisions", "diff"]

What = Literal["changed", "added", "removed"]


@dataclass(frozen=True)
class Change:
    """One definition whose meaning differs between the two versions."""

    node: str  # its node in the dependency graph: `parameter:minimum_total_score`, `outcome:stage1.2`
    what: What
    old: str | None  # the old definition, rendered (None when added)
    new: str | None  # the new one (None when removed)

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "what": self.what, "old": self.old, "new": self.new}

    def to_text(self) -> str:
        if self.what == "added":
            return f"+ {self.node}: {self.new}"
        if self.what == "removed":
            return f"- {self.node}: {self.old}"
        return f"~ {self.node}: {self.old}  →  {self.new}"


@dataclass(frozen=True)
class DecisionChange:
    """A decision that moved, and the edits on its explanation path that moved it."""

    id: str
    old_outcome: str
    new_outcome: str
    old_rank: int | None
    new_rank: int | None
    causes: tuple[str, ...]  # changed definitions on its path, as node ids
    flipped: tuple[tuple[str, str, str], ...]  # (rule, old status, new status) on its path

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "outcome": {"old": self.old_outcome, "new": self.new_outcome},
            "rank": {"old": self.old_rank, "new": self.new_rank},
            "causes": list(self.causes),
            "flipped": [{"rule": r, "old": o, "new": n} for r, o, n in self.flipped],
        }


@dataclass(frozen=True)
class PolicyDiff:
    """The package diff, and (with facts) the decisions that change."""

    old: str  # "name version (digest)" of each side, with its overrides
    new: str
    changes: tuple[Change, ...]
    decisions: tuple[DecisionChange, ...] = ()
    counts: tuple[tuple[str, str, int], ...] = ()  # (old outcome, new outcome, how many), unchanged included
    evaluated: int = 0  # decisions compared
    facts: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        """Whether any decision changed (what `--fail-on-change` asks)."""
        return bool(self.decisions)

    def to_json(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "changes": [c.to_json() for c in self.changes],
            "facts": list(self.facts),
            "evaluated": self.evaluated,
            "decisions": [d.to_json() for d in self.decisions],
            "counts": [{"old": o, "new": n, "count": c} for o, n, c in self.counts],
        }

    def to_text(self) -> str:
        lines = [f"old: {self.old}", f"new: {self.new}", ""]
        lines.append(f"{len(self.changes)} definition(s) changed" + (":" if self.changes else ""))
        lines += [f"  {c.to_text()}" for c in self.changes]
        if self.facts:
            lines += ["", f"{len(self.decisions)} of {self.evaluated} decision(s) change ({', '.join(self.facts)})"]
            for d in self.decisions:
                lines.append(
                    f"  {d.id}: {d.old_outcome} → {d.new_outcome} (rank {_rank(d.old_rank)} → {_rank(d.new_rank)})"
                )
                lines += [f"      because {cause} changed" for cause in d.causes]
                lines += [f"      rule `{r}`: {o} → {n}" for r, o, n in d.flipped]
            lines += ["", "counts (old → new):"]
            lines += [f"  {o} → {n}: {c}" + ("" if o != n else " (unchanged)") for o, n, c in self.counts]
        return "\n".join(shown(line) for line in lines)

    def to_html(self) -> str:
        e = _e
        rows = "".join(
            f"<tr><td><code>{e(c.node)}</code></td><td>{e(c.what)}</td><td><code>{e(c.old or '')}</code></td>"
            f"<td><code>{e(c.new or '')}</code></td></tr>"
            for c in self.changes
        )
        moved = "".join(
            f"<tr><td>{e(d.id)}</td><td>{e(d.old_outcome)} → {e(d.new_outcome)}</td>"
            f"<td>{e(_rank(d.old_rank))} → {e(_rank(d.new_rank))}</td>"
            f"<td>{'<br>'.join(e(c) for c in d.causes)}"
            f"{'<br>' if d.causes and d.flipped else ''}"
            f"{'<br>'.join(e(f'rule {r}: {o} → {n}') for r, o, n in d.flipped)}</td></tr>"
            for d in self.decisions
        )
        counts = "".join(f"<tr><td>{e(o)}</td><td>{e(n)}</td><td>{c}</td></tr>" for o, n, c in self.counts)
        facts = f"<h2>Decisions ({len(self.decisions)} of {self.evaluated} change)</h2>" if self.facts else ""
        return (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>policy diff</title>"
            f"<style>{_CSS}</style></head><body><h1>What the edit changes</h1>"
            f"<p class='meta'>old: {e(self.old)}<br>new: {e(self.new)}</p>"
            f"<h2>Definitions ({len(self.changes)} changed)</h2>"
            "<table><tr><th>definition</th><th></th><th>old</th><th>new</th></tr>"
            f"{rows}</table>{facts}"
            + (
                "<table><tr><th>subject</th><th>outcome</th><th>rank</th><th>because</th></tr>"
                f"{moved}</table><h3>Counts</h3><table><tr><th>old</th><th>new</th><th>decisions</th></tr>"
                f"{counts}</table>"
                if self.facts
                else ""
            )
            + "</body></html>"
        )


_CSS = (
    "body{font-family:Helvetica,Arial,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}.meta{color:#666}"
)


def _e(text: object) -> str:
    return html.escape(shown(text))


def _rank(rank: int | None) -> str:
    return "-" if rank is None else str(rank)


def _dated(parameter: Parameter) -> str:
    parts = [format_value(v) + (f" from {since.isoformat()}" if since else "") for since, v in parameter.values]
    return ", ".join(parts)


def _stage_parts(stage: Stage) -> dict[str, str]:
    keys = ", ".join(f"{render(k.expr)} {'desc' if k.descending else 'asc'}" for k in stage.rank_by)
    routing = f"fills {stage.fills_slot}" + (f"; open places → {stage.open_slots.to}" if stage.open_slots else "")
    return {
        "pool": render(stage.pool),
        "ranking": keys,
        "slots": render(stage.slots) if stage.slots is not None else "none",
        "routing": routing,
        "dates": " – ".join(d.isoformat() if d else "…" for d in stage.dates) if stage.dates else "any date",
        **_allocation_parts(stage),
    }


def _allocation_parts(stage: Stage) -> dict[str, str]:
    """Capacity and tracks, only for a stage that has them (a package without them shows no change)."""
    parts = {}
    if stage.capacity is not None:
        c = stage.capacity
        parts["capacity"] = f"{render(c.total)}; each takes {render(c.takes)}; does not fit: {c.does_not_fit}"
    for track in stage.tracks:
        parts[f"track.{track.id}"] = (
            f"when {render(track.when)}; reserved {render(track.reserved)}; unfilled: {track.unfilled}"
        )
    return parts


def _grant_text(row: OutcomeRow) -> str:
    grants = [f"{g.id}" + (f" = {render(g.quantity)}" if g.quantity is not None else "") for g in row.grants]
    return f"; grants {', '.join(grants)}" if grants else ""


def _rows(name: str, parameter: Parameter) -> dict[str, str]:
    """A table or scale, one entry per key or bracket (`parameter:cap[3]`), its values across dates."""
    header, rows = shape_rows(parameter.values)
    dates = [h.removeprefix("from ") for h in header[1:]]
    found = {}
    for key, *cells in rows:
        parts = [cell + (f" from {date}" if date != "value" else "") for cell, date in zip(cells, dates, strict=True)]
        label = f"bracket {key}" if header[0] == "bracket" else key
        found[f"parameter:{name}[{label}]"] = ", ".join(p for p in parts if not p.startswith("—"))
    return found


def _definitions(ir: PolicyIR) -> dict[str, str]:
    """Every definition of a package as node id → its meaning, rendered (a table or scale row by row)."""
    found: dict[str, str] = {}
    for n, p in ir.parameters.items():
        found |= _rows(n, p) if p.shape != "value" else {f"parameter:{n}": _dated(p)}
    found |= {f"value:{n}": render(v.expr) for n, v in ir.values.items()}
    found |= {f"rule:{n}": render(r.when) for n, r in ir.rules.items()}
    for stage in ir.stages.values():
        found |= {f"stage:{stage.id}.{part}": text for part, text in _stage_parts(stage).items()}
        found |= {
            f"outcome:{stage.id}.{row.index}": f"{row.outcome} when {render(row.when)}{_grant_text(row)}"
            for row in stage.outcomes
        }
    return found


def diff_packages(old: PolicyIR, new: PolicyIR) -> list[Change]:
    """The definitions whose meaning differs, in the order of the new package (removed ones last)."""
    before, after = _definitions(old), _definitions(new)
    changes = []
    for node, text in after.items():
        if node not in before:
            changes.append(Change(node=node, what="added", old=None, new=text))
        elif before[node] != text:
            changes.append(Change(node=node, what="changed", old=before[node], new=text))
    changes += [
        Change(node=node, what="removed", old=text, new=None) for node, text in before.items() if node not in after
    ]
    return changes


def _path(decision: Decision) -> set[str]:
    """The nodes of a decision's explanation, with each stage's parts standing for its stage."""
    graph = decision.explain().graph
    nodes = set(graph.nodes)
    nodes |= {f"{n}[{row}]" for n, attrs in graph.nodes(data=True) for row in attrs.get("rows", ())}  # rows used
    if decision.stage:
        nodes |= {f"stage:{decision.stage}.{part}" for part in ("pool", "ranking", "slots", "routing", "dates")}
    return nodes


def _rank_of(decision: Decision) -> int | None:
    return decision.placement.rank if decision.placement else None


def _flipped(old: Decision, new: Decision, path: set[str]) -> list[tuple[str, str, str]]:
    flipped: list[tuple[str, str, str]] = []
    for node in sorted(path):
        kind, _, name = node.partition(":")
        if kind == "rule" and name in old.trace and name in new.trace:
            before, after = status_of(old.trace[name]), status_of(new.trace[name])
            if before != after:
                flipped.append((name, before, after))
    return flipped


def diff_decisions(
    old: Result, new: Result, changes: Sequence[Change]
) -> tuple[list[DecisionChange], Counter[tuple[str, str]]]:
    """The decisions whose outcome or rank differ, each with its causes; and counts per outcome pair."""
    changed_nodes = {c.node for c in changes}
    moved: list[DecisionChange] = []
    counts: Counter[tuple[str, str]] = Counter()
    for subject, before in old.decisions.items():
        after = new.decisions.get(subject)
        if after is None:
            continue
        counts[(before.outcome, after.outcome)] += 1
        if before.outcome == after.outcome and _rank_of(before) == _rank_of(after):
            continue
        path = _path(before) | _path(after)
        change = DecisionChange(
            id=subject,
            old_outcome=before.outcome,
            new_outcome=after.outcome,
            old_rank=_rank_of(before),
            new_rank=_rank_of(after),
            causes=tuple(n for n in (c.node for c in changes) if n in path and n in changed_nodes),
            flipped=tuple(_flipped(before, after, path)),
        )
        moved.append(change)
    return moved, counts


def _label(policy: Policy) -> str:
    identity = policy.identity
    text = f"{identity.name} {identity.version} (digest {identity.digest[:12]}) at {policy.path}"
    if identity.overrides:
        text += " with " + ", ".join(f"{n}={format_value(v)}" for n, v in identity.overrides)
    return text


def diff(
    old: Policy,
    new: Policy,
    facts: Iterable[Any] = (),
    as_of: dt.date | str | None = None,
    stage: str | None = None,
    outside_period: bool = False,
) -> PolicyDiff:
    """Compare two policies by meaning and, over each fact file, the decisions they make.

    `outside_period` lets a stage decide as of a date outside its declared period (a what-if).
    """
    changes = diff_packages(old.ir, new.ir)
    moved: list[DecisionChange] = []
    counts: Counter[tuple[str, str]] = Counter()
    names = []
    for cohort in facts:
        names.append(str(cohort))
        before = old.evaluate(cohort, as_of=as_of, stage=stage, outside_period=outside_period)
        after = new.evaluate(cohort, as_of=as_of, stage=stage, outside_period=outside_period)
        found, seen = diff_decisions(before, after, changes)
        moved += found
        counts += seen
    return PolicyDiff(
        old=_label(old),
        new=_label(new),
        changes=tuple(changes),
        decisions=tuple(moved),
        counts=tuple((o, n, c) for (o, n), c in sorted(counts.items())),
        evaluated=sum(counts.values()),
        facts=tuple(names),
    )
