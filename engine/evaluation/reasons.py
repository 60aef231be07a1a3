"""Which rules decided an outcome, and the plain-language message of each.

The deciding row's condition is walked with its recorded values: for `a and b` that is False, the
operands that are False are the causes (for True, all of them); `or` the other way round; `not`
flips what is looked for; a rule's name is a cause, and its own condition is walked in turn, so a
reason reads from the outcome down to the leaf rule that failed. Earlier rows that did not apply
give `passed` reasons (why the subject was not, say, disqualified).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from engine.core.i18n import Text, translations_of, translator
from engine.evaluation.compiled import CompiledPolicy, CompiledStage
from engine.evaluation.compiler import Missing, Scope, Undetermined
from engine.evaluation.result import Reason, Role, Status
from engine.evaluation.uncertain import Bounder
from engine.language.expr import Attr, BoolOp, Name, Node, Unary, walk
from engine.language.ir import OutcomeRow, Rule, Template

__all__ = ["decision_reasons", "causes", "format_value", "render_message", "status_of", "is_rank"]


def _value(policy: CompiledPolicy, node: Node, scope: Scope) -> Any:
    if isinstance(node, Name) and node.name in scope.known:
        return scope.known[node.name]
    try:
        return policy.fn(node)(scope)
    except Undetermined as error:
        return Missing(error.missing)


def _same(a: Any, b: Any) -> bool:
    return isinstance(b, Missing) if isinstance(a, Missing) else (not isinstance(b, Missing) and bool(a) == bool(b))


def causes(policy: CompiledPolicy, node: Node, value: Any, scope: Scope) -> list[str]:
    """Names of the rules that made `node` come out as `value`, outermost first."""
    if isinstance(node, Unary) and node.op == "not":
        flipped = value if isinstance(value, Missing) else not value
        return causes(policy, node.operand, flipped, scope)
    if isinstance(node, BoolOp):
        found: list[str] = []
        for operand in node.operands:
            if _same(value, _value(policy, operand, scope)):
                found += causes(policy, operand, value, scope)
        return found
    if isinstance(node, Name) and node.name in policy.ir.rules:
        return [node.name]
    return [n.name for n in walk(node) if isinstance(n, Name) and n.name in policy.ir.rules]


def status_of(value: Any) -> Status:
    """A rule's or row's result in words: `held`, `failed` or `undetermined` (missing facts)."""
    return "undetermined" if isinstance(value, Missing) else ("held" if value else "failed")


def format_value(value: Any) -> str:
    """A value as an official reads it: 69.0, yes/no, 2026-01-15, a list joined by commas."""
    if value is None:
        return "not given"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return repr(round(value, 2))
    if isinstance(value, (dt.date,)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value) if value else "none"
    if isinstance(value, Missing):
        return "not known (needs " + ", ".join(sorted(value.paths)) + ")"
    return str(value)


def is_rank(node: Node) -> bool:
    """Whether `node` is `stage.rank`."""
    return isinstance(node, Attr) and node.attr == "rank" and isinstance(node.obj, Name) and node.obj.name == "stage"


def render_message(policy: CompiledPolicy, template: Template, scope: Scope) -> str:
    """Fill a message's `{expression}` placeholders from this evaluation (a rank not yet known as `2 to 4`);
    a message given per language is filled in each (a `Text`, whose value is the English)."""
    english = _render(policy, template, scope)
    if not template.translations:
        return english
    return Text(
        english, {lang: _render(policy, t, scope, " to " if lang == "en" else "~") for lang, t in template.translations}
    )


def _render(policy: CompiledPolicy, template: Template, scope: Scope, to: str = " to ") -> str:
    parts = []
    for part in template.parts:
        if isinstance(part, str):
            parts.append(part)
        elif is_rank(part) and scope.rank_range is not None and scope.stage is not None and scope.stage.rank is None:
            parts.append(f"{scope.rank_range[0]}{to}{scope.rank_range[1]}")  # `2 to 3`; `2~3` in other languages
        else:
            parts.append(_shown(policy, part, scope))
    return "".join(parts)


def _shown(policy: CompiledPolicy, node: Node, scope: Scope) -> str:
    """A value in a message; one not known as what it may be (`between 40.6 and 65.6, not known: needs ...`)."""
    value = _value(policy, node, scope)
    if not isinstance(value, Missing):
        return format_value(value)
    span = Bounder(policy.ir, policy.compiler.value_in(scope)).of(node)
    if not span.bounded or span.known:
        return format_value(value)
    return f"{span.describe()} (not known: needs {', '.join(sorted(value.paths))})"


def _message(policy: CompiledPolicy, rule: Rule, value: Any, scope: Scope) -> str:
    if isinstance(value, Missing):
        return f"cannot be decided yet: needs {', '.join(sorted(value.paths))}"
    template = rule.held if value else rule.failed
    if template is not None:
        return render_message(policy, template, scope)
    prefix = "met: " if value else "not met: "
    title = translations_of(rule.title)
    return Text(prefix + rule.title, {lang: translator(lang)(prefix) + t for lang, t in title.items() if lang != "en"})


def _expand(
    policy: CompiledPolicy, name: str, scope: Scope, role: Role, depth: int, seen: set[str], out: list[Reason]
) -> None:
    if name in seen:
        return
    seen.add(name)
    rule, value = policy.ir.rules[name], scope.known.get(name)
    missing = tuple(sorted(value.paths)) if isinstance(value, Missing) else ()
    out.append(
        Reason(
            rule=name,
            title=rule.title,
            reference=rule.reference,
            status=status_of(value),
            message=_message(policy, rule, value, scope),
            role=role,
            missing=missing,
            depth=depth,
        )
    )
    if role == "decisive":
        for child in causes(policy, rule.when, value, scope):
            _expand(policy, child, scope, role, depth + 1, seen, out)


def decision_reasons(
    policy: CompiledPolicy, stage: CompiledStage, scope: Scope, conditions: dict[str, Any], row: OutcomeRow | None
) -> tuple[Reason, ...]:
    """Reasons of a decision: the deciding row's rules (expanded), then the rows before it."""
    out: list[Reason] = []
    seen: set[str] = set()
    deciding = (
        row.index
        if row
        else next((r.index for r, _ in stage.rows if isinstance(conditions[f"row:{r.index}"], Missing)), None)
    )
    for candidate, _ in stage.rows:
        if candidate.index == deciding:
            for name in causes(policy, candidate.when, conditions[f"row:{candidate.index}"], scope):
                _expand(policy, name, scope, "decisive", 0, seen, out)
    for candidate, _ in stage.rows:
        if deciding is None or candidate.index < deciding:
            for name in causes(policy, candidate.when, False, scope):
                _expand(policy, name, scope, "passed", 0, seen, out)
    return tuple(out)
