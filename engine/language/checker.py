"""Check a loaded package and lower it to the engine's IR.

`check(source)` resolves every name against the fact model and the package's own definitions,
infers and checks types, builds the static dependency graph (an edge from what is used to what
uses it, labelled with the span of the use), rejects cycles, and reports every problem at once.
Errors raise `PolicyError`; warnings (unused definitions) are returned with the IR.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from engine.core.diagnostics import Diagnostic, Span
from engine.core.errors import PolicyError
from engine.core.i18n import translations_of
from engine.language.analysis import dated_value_findings, missing_translations, static_findings
from engine.language.expr import FUNCTIONS, MAX_EXPRESSION_DEPTH, Node, ParseError, depth, parse_expression
from engine.language.factmodels import HOW_TO_TRUST, FactModules, UntrustedModule, trusted_fact_modules
from engine.language.invariants import InvariantScope, lower_invariants
from engine.language.ir import (
    RESERVED,
    Capacity,
    Dependencies,
    FactSchema,
    Invariant,
    OpenSlots,
    OutcomeGrant,
    OutcomeRow,
    Parameter,
    PolicyIR,
    RankKey,
    Rule,
    Stage,
    StageInfo,
    Template,
    Track,
    Value,
)
from engine.language.tables import check_shape, lookup_of, lowered_values, shape_of
from engine.language.typecheck import Resolver, TypeChecker, Use, suggest
from engine.language.types import (
    ANY,
    BOOL,
    DATE,
    NUM,
    STR,
    Choice,
    ListTy,
    ModelTy,
    Ty,
    compatible,
    describe,
    of_value,
    unify,
)
from engine.source.loader import PackageSource, SourceFile
from engine.source.model import OutcomeRowFile, ParameterFile, StageFile, ValueFile
from engine.source.yamlsource import Path_, SourceMap

__all__ = ["check", "node_id"]

_USE_KINDS = {"stage": "ranking"}  # `stage.rank` is produced by ranking, not by the stage node


def node_id(kind: str, name: str) -> str:
    """The id of a node of the dependency graph: `rule:sovereign`, `fact:scores.expert`."""
    return f"{kind}:{name}"


@dataclass
class _Def:
    """One definition of the package (a parameter, value, rule...) and where it is written."""

    kind: str
    name: str
    item: Any
    file: SourceFile
    path: Path_

    @property
    def span(self) -> Span:
        return self.file.source.span(self.path, key=self.kind in ("parameter", "value"))


@dataclass
class _State:
    """What the check has found so far: definitions, types, parsed expressions, the graph, diagnostics."""

    source: PackageSource
    diagnostics: list[Diagnostic] = field(default_factory=list)
    defs: dict[str, _Def] = field(default_factory=dict)
    stages: dict[str, _Def] = field(default_factory=dict)
    graph: Dependencies = field(default_factory=Dependencies)
    types: dict[str, Ty] = field(default_factory=dict)
    exprs: dict[tuple[str, Path_], Node] = field(default_factory=dict)
    templates: dict[str, tuple[Template | None, Template | None]] = field(default_factory=dict)
    mentioned: set[str] = field(default_factory=set)  # names used only in messages
    invariant_defs: list[tuple[Any, SourceFile, Path_]] = field(default_factory=list)
    callables: frozenset[str] = frozenset()  # table and scale parameters, called as `name(key)`

    def error(self, code: str, message: str, span: Span, help: str | None = None, severity: str = "error") -> None:
        self.diagnostics.append(Diagnostic(code=code, message=message, span=span, help=help, severity=severity))  # type: ignore[arg-type]


def _schema(state: _State, trusted: FactModules) -> FactSchema | None:
    facts = state.source.manifest.facts
    manifest = state.source.files[0].source
    models: dict[str, type[BaseModel]] = {}
    for key in ("subject", "cohort"):
        if state.source.fact_schema is not None:  # records of the package's fact schema file: no code is imported
            _schema_record(state, key, models)
            continue
        try:
            models[key] = trusted.import_model(getattr(facts, key))
        except UntrustedModule as error:
            message = f"fact model `{getattr(facts, key)}`: {error}"
            state.error("untrusted-fact-model", message, manifest.span(("facts", key)), HOW_TO_TRUST)
            continue
        except (ImportError, AttributeError, SyntaxError) as error:
            state.error(
                "bad-fact-model",
                f"cannot import fact model `{getattr(facts, key)}`: {error}",
                manifest.span(("facts", key)),
            )
    if len(models) < 2:
        return None
    schema = FactSchema(
        subject=models["subject"],
        cohort=models["cohort"],
        subjects_field=facts.subjects_field,
        context_field=facts.context_field,
        stage_field=facts.stage_field,
        date_field=facts.date_field,
        id_field=facts.id_field,
        name_field=facts.name_field,
    )
    _check_schema(state, schema, manifest)
    return schema


def _schema_record(state: _State, key: str, models: dict[str, type[BaseModel]]) -> None:
    """`facts.subject` or `facts.cohort` as a record of the fact schema file."""
    schema = state.source.fact_schema
    assert schema is not None
    name = getattr(state.source.manifest.facts, key)
    if name in schema.models:
        models[key] = schema.models[name]
        return
    hint = suggest(name, schema.models)
    state.error(
        "bad-fact-model",
        f"the fact schema file `{schema.name}` has no record `{name}`",
        state.source.files[0].source.span(("facts", key)),
        hint or f"its records are {', '.join(f'`{n}`' for n in schema.models)}",
    )


def _check_schema(state: _State, schema: FactSchema, manifest: SourceMap) -> None:
    cohort_fields = ModelTy(schema.cohort).fields()
    wanted = ListTy(ModelTy(schema.subject))
    if cohort_fields.get(schema.subjects_field) != wanted:
        state.error(
            "bad-fact-model",
            f"`{schema.cohort.__name__}.{schema.subjects_field}` must be a list of `{schema.subject.__name__}`",
            manifest.span(("facts", "subjects_field")),
        )
    if schema.id_field not in schema.subject.model_fields:
        state.error(
            "bad-fact-model",
            f"`{schema.subject.__name__}` has no id field `{schema.id_field}`",
            manifest.span(("facts", "id_field")),
        )
    if schema.name_field is not None and schema.name_field not in ModelTy(schema.subject).fields():
        state.error(
            "bad-fact-model",
            f"`{schema.subject.__name__}` has no name field `{schema.name_field}`",
            manifest.span(("facts", "name_field")),
        )
    context = _context_type(schema)
    for key in ("stage_field", "date_field"):
        name = getattr(schema, key)
        if name is not None and (context is None or name not in context.fields()):
            state.error("bad-fact-model", f"the cohort context has no field `{name}`", manifest.span(("facts", key)))


def _context_type(schema: FactSchema) -> ModelTy | None:
    if schema.context_field is None:
        return None
    ty = ModelTy(schema.cohort).fields().get(schema.context_field)
    return ty if isinstance(ty, ModelTy) else None


def _collect(state: _State, schema: FactSchema) -> None:
    subject_fields = set(ModelTy(schema.subject).fields())
    for file in state.source.files:
        sections = file.sections
        items: list[tuple[str, str, Any, Path_]] = [
            ("parameter", n, p, ("parameters", n)) for n, p in sections.parameters.items()
        ]
        items += [("value", n, v, ("values", n)) for n, v in sections.values.items()]
        items += [("rule", r.id, r, ("rules", i)) for i, r in enumerate(sections.rules)]
        for kind, name, item, path in items:
            _define(state, _Def(kind, name, item, file, path), subject_fields)
        for i, stage in enumerate(sections.stages):
            definition = _Def("stage", stage.id, stage, file, ("stages", i))
            if stage.id in state.stages:
                state.error("duplicate-name", f"stage `{stage.id}` is defined twice", definition.span)
            state.stages[stage.id] = definition
        state.invariant_defs += [(item, file, ("invariants", i)) for i, item in enumerate(sections.invariants)]


def _define(state: _State, definition: _Def, subject_fields: set[str]) -> None:
    name, span = definition.name, definition.span
    if name in state.defs:
        first = state.defs[name]
        state.diagnostics.append(
            Diagnostic(
                "duplicate-name",
                f"`{name}` is defined twice ({first.kind} and {definition.kind})",
                span,
                labels=((first.span, "first defined here"),),
            )
        )
        return
    if name in RESERVED:
        state.error("reserved-name", f"`{name}` is a reserved name", span)
    elif name in subject_fields:
        state.error("shadowed-name", f"`{name}` is also a field of the facts: choose another name", span)
    elif name in FUNCTIONS and definition.kind == "parameter" and shape_of(definition.item) != "value":
        state.error(
            "reserved-name", f"`{name}` is a builtin function: name the {shape_of(definition.item)} otherwise", span
        )
    state.defs[name] = definition


def _parse(state: _State, file: SourceFile, path: Path_, text: str | bool) -> Node | None:
    origin = file.source.span(path)
    locate = file.source.locator(path, text) if isinstance(text, str) else None
    try:
        node = parse_expression(text, origin, locate, state.callables)
    except ParseError as error:
        state.diagnostics.append(error.diagnostic)
        return None
    state.exprs[(str(file.path), path)] = node
    return node


class _Checker:
    """Types and uses of every definition; builds the dependency graph."""

    def __init__(self, state: _State, schema: FactSchema) -> None:
        self.state, self.schema = state, schema
        kinds = {name: "fact" for name in ModelTy(schema.subject).fields()}
        kinds["stage"] = "stage"
        if _context_type(schema) is not None:
            kinds["context"] = "context"
        kinds.update({name: d.kind for name, d in state.defs.items()})
        lookups = {
            name: lookup_of(d.item, state.types.get(name, ANY), d.file.source, d.path, d.span)
            for name, d in state.defs.items()
            if name in state.callables
        }
        self.resolver = Resolver(kinds, self._type_of, lookups)
        self.in_progress: set[str] = set()
        self.nodes: dict[str, Node] = {}

    def _type_of(self, kind: str, name: str) -> Ty:
        if kind == "fact":
            return ModelTy(self.schema.subject).fields()[name]
        if kind == "context":
            return _context_type(self.schema) or ANY
        if kind == "stage":
            return ModelTy(StageInfo)
        if kind == "rule":
            return BOOL
        if kind == "parameter":
            return self.state.types.get(name, ANY)
        return self._value_type(name)

    def _value_type(self, name: str) -> Ty:
        if name in self.state.types:
            return self.state.types[name]
        if name in self.in_progress or len(self.in_progress) > MAX_EXPRESSION_DEPTH:
            return ANY  # a cycle (reported by the graph pass), or a chain too long (reported by `_depths`)
        self.in_progress.add(name)
        ty = self.definition(self.state.defs[name])
        self.in_progress.discard(name)
        self.state.types[name] = ty
        return ty

    def infer(
        self, node: Node, owner: str, wanted: Ty | None = None, what: str = "", role: str = "use"
    ) -> tuple[Ty, list[Use]]:
        checker = TypeChecker(self.resolver)
        ty = checker.infer(node)
        if wanted is not None and ty != ANY and not compatible(ty, wanted):
            checker.error("type-mismatch", f"{what} must be {describe(wanted)}, but this is {describe(ty)}", node.span)
        self.state.diagnostics.extend(checker.diagnostics)
        for use in checker.uses:
            self.state.graph.add_edge(
                node_id(_USE_KINDS.get(use.kind, use.kind), use.name), owner, span=use.span, role=role
            )
        return ty, checker.uses

    def definition(self, d: _Def) -> Ty:
        owner = node_id(d.kind, d.name)
        if isinstance(d.item, ValueFile):
            node = _parse(self.state, d.file, d.path + ("expr",), d.item.expr)
            if node is None:
                return ANY
            self.nodes[d.name] = node
            ty, uses = self.infer(node, owner)
            for use in uses:
                if use.kind == "rule":
                    self.state.error(
                        "value-uses-rule",
                        f"value `{d.name}` uses rule `{use.name}`: values are formulas over facts and parameters",
                        use.span,
                        "use the rule in another rule's `when` instead",
                    )
            return ty
        node = _parse(self.state, d.file, d.path + ("when",), d.item.when)
        if node is not None:
            self.nodes[d.name] = node
            self.infer(node, owner, BOOL, f"the condition of rule `{d.name}`")
        return BOOL


def _parameter_type(state: _State, d: _Def) -> Ty:
    item: ParameterFile = d.item
    if shape_of(item) != "value":
        ty, problems = check_shape(item, d.name, d.file.source, d.path)
        state.diagnostics.extend(problems)
        return ty
    raw = [item.value] if item.values is None else list(item.values.values())
    found: Ty | None = of_value(raw[0])
    for value in raw[1:]:
        found = unify(found, of_value(value)) if found is not None else None
    if found is None:
        state.error("parameter-type", f"dated values of `{d.name}` have different types", d.span)
        return ANY
    return found


_PLACEHOLDER = re.compile(r"(?<!\{)\{([^{}]+)\}(?!\})")
# a placeholder written as in a Python f-string, with a format after a colon (`{total_score:.1f}`)
_FORMAT = re.compile(r"(?P<expression>[^:'\"]+?)\s*:\s*(?P<format>(?=\S)[<>^=+\- #0-9,_.]*[bcdeEfFgGnosxX%]?)")


def _template(state: _State, checker: _Checker, d: _Def, key: str) -> Template | None:
    """Parse and check a message's `{expression}` placeholders, each located in the file; a message
    given per language is parsed in each (`translations`)."""
    text = getattr(d.item.message, key)
    if text is None:
        return None
    path = d.path + ("message", key)
    languages = translations_of(text)
    if len(languages) == 1:
        return _template_text(state, checker, d, path, str(text))
    english = _template_text(state, checker, d, path + ("en",), languages.pop("en"))
    others = tuple((lang, _template_text(state, checker, d, path + (lang,), t)) for lang, t in languages.items())
    return dataclasses.replace(english, translations=others)


def _template_text(state: _State, checker: _Checker, d: _Def, path: Path_, text: str) -> Template:
    locate = d.file.source.locator(path, text)
    parts: list[str | Node] = []
    end = 0
    for match in _PLACEHOLDER.finditer(text):
        parts.append(_literal(text[end : match.start()]))
        end = match.end()
        start = match.start(1)
        line, col = text.count("\n", 0, start), start - (text.rfind("\n", 0, start) + 1)
        try:
            node = parse_expression(match.group(1), locate(line, col), _shifted(locate, line, col), state.callables)
        except ParseError as error:
            state.diagnostics.append(_formatted(match.group(1), error.diagnostic))
            continue
        checker_ = TypeChecker(checker.resolver)
        checker_.infer(node)
        state.diagnostics.extend(checker_.diagnostics)
        state.mentioned.update(use.name for use in checker_.uses)
        parts.append(node)
    parts.append(_literal(text[end:]))
    return Template(tuple(p for p in parts if p != ""))


def _formatted(placeholder: str, diagnostic: Diagnostic) -> Diagnostic:
    """A placeholder that failed to parse because it carries a format, as a Python f-string's would
    (`{total_score:.1f}`), is told so, with the expression that shows the value rounded."""
    found = _FORMAT.fullmatch(placeholder.strip())
    if found is None:
        return diagnostic
    places = re.search(r"\.([0-9]+)", found["format"])
    expression = found["expression"].strip()
    return dataclasses.replace(
        diagnostic,
        message=f"`{{{placeholder}}}`: a placeholder holds an expression, not a format (`:{found['format']}`)",
        help=f"to show it rounded, write `{{round({expression}, {places[1] if places else 2})}}`",
    )


def _shifted(locate: Callable[[int, int], Span], line: int, col: int) -> Callable[[int, int], Span]:
    """A locator for text that starts at (line, col) of the text `locate` knows."""
    return lambda ln, c: locate(line + ln, (col if ln == 0 else 0) + c)


def _literal(text: str) -> str:
    return text.replace("{{", "{").replace("}}", "}")


def _lower_stage(state: _State, checker: _Checker, d: _Def) -> Stage | None:
    item: StageFile = d.item
    owner = node_id("stage", item.id)
    state.graph.add_node(owner, kind="stage", name=item.id, title=item.title, reference=item.reference, span=d.span)

    def expr(path: Path_, text: str | bool | int | float, wanted: Ty | None, what: str) -> Node | None:
        node = _parse(state, d.file, d.path + path, text if isinstance(text, (str, bool)) else str(text))
        if node is not None:
            _, uses = checker.infer(node, owner, wanted if wanted is not _ORDERED else None, what, role=str(path[0]))
            if wanted is _ORDERED:
                _ranking_key(state, checker, node)
            _stage_restrictions(state, checker, item.id, path, uses)
        return node

    pool = expr(("pool",), item.pool, BOOL, f"the pool of stage `{item.id}`")
    keys = [expr(("rank_by", i, "key"), k.key, _ORDERED, "a ranking key") for i, k in enumerate(item.rank_by)]
    slots = expr(("slots",), item.slots, NUM, "`slots`") if item.slots is not None else None
    capacity = _capacity(state, item, expr)
    tracks = _tracks(state, d, item, expr)
    rows = [_row(state, checker, d, i, row) for i, row in enumerate(item.outcomes)]
    if item.fills_slot is not None and item.fills_slot not in {r.outcome for r in item.outcomes}:
        state.error(
            "unknown-outcome",
            f"`fills_slot` names `{item.fills_slot}`, which is not an outcome of stage `{item.id}`",
            d.file.source.span(d.path + ("fills_slot",)),
            suggest(item.fills_slot, [r.outcome for r in item.outcomes]),
        )
    _objection_period(state, d)  # checked even when another part of the stage is broken: every error at once
    broken = (item.slots is not None and slots is None) or (item.capacity is not None and capacity is None)
    if pool is None or None in keys or broken or None in rows or None in tracks:
        return None
    rank_by = tuple(
        RankKey(k, spec.order == "descending", spec.title)
        for k, spec in zip(keys, item.rank_by, strict=True)
        if k is not None
    )
    open_slots = (
        OpenSlots(item.open_slots.to, item.open_slots.title, item.open_slots.reference) if item.open_slots else None
    )
    dates = (item.dates.from_, item.dates.until) if item.dates else None
    return Stage(
        id=item.id,
        title=item.title,
        reference=item.reference,
        pool=pool,
        rank_by=rank_by,
        slots=slots,
        fills_slot=item.fills_slot,
        open_slots=open_slots,
        outcomes=tuple(r for r in rows if r is not None),
        span=d.span,
        dates=dates,
        capacity=capacity,
        tracks=tuple(t for t in tracks if t is not None),
        objection_period=item.objection_period,
    )


def _objection_period(state: _State, d: _Def) -> None:
    """`objection_period` names a parameter giving a number of days."""
    name = d.item.objection_period
    if name is None:
        return
    found = state.defs.get(name)
    span = d.file.source.span(d.path + ("objection_period",))
    if found is None or found.kind != "parameter":
        state.error("unknown-name", f"`objection_period` names `{name}`, which is not a parameter", span)
    elif name in state.callables or state.types.get(name) != NUM:  # a table or scale of numbers is not one number
        state.error("type-mismatch", f"`objection_period` names `{name}`, which is not a number of days", span)
    else:
        state.mentioned.add(name)


_StageExpr = Callable[[Path_, "str | bool | int | float", "Ty | None", str], "Node | None"]


def _capacity(state: _State, item: StageFile, expr: _StageExpr) -> Capacity | None:
    """`capacity` (parameters and `context`) and `takes` (a number per subject), checked."""
    if item.capacity is None or item.takes is None:
        return None
    total = expr(("capacity",), item.capacity, NUM, "`capacity`")
    takes = expr(("takes",), item.takes, NUM, "`takes`")
    if total is None or takes is None:
        return None
    unit = None
    named = state.defs.get(str(item.capacity).strip())
    if named is not None and named.kind == "parameter":
        unit = named.item.unit
    return Capacity(total=total, takes=takes, does_not_fit=item.does_not_fit, unit=unit)


def _tracks(state: _State, d: _Def, item: StageFile, expr: _StageExpr) -> list[Track | None]:
    """Each track's `when` (a condition on one subject) and `reserved` places (parameters, `context`)."""
    found: list[Track | None] = []
    for i, track in enumerate(item.tracks):
        when = expr(("tracks", i, "when"), track.when, BOOL, f"the `when` of track `{track.id}`")
        reserved = expr(("tracks", i, "reserved"), track.reserved, NUM, "`reserved`")
        if when is None or reserved is None:
            found.append(None)
            continue
        found.append(
            Track(
                id=track.id,
                title=track.title,
                when=when,
                reserved=reserved,
                unfilled=track.unfilled,
                span=d.file.source.span(d.path + ("tracks", i)),
            )
        )
    return found


def _row(state: _State, checker: _Checker, d: _Def, i: int, row: OutcomeRowFile) -> OutcomeRow | None:
    """One row of a stage's outcome table, with the grants it brings, checked and in the graph."""
    stage = d.item.id
    node = _parse(state, d.file, d.path + ("outcomes", i, "when"), row.when)
    row_id = node_id("outcome", f"{stage}.{i + 1}")
    span = d.file.source.span(d.path + ("outcomes", i))
    state.graph.add_edge(row_id, node_id("stage", stage))
    state.graph.add_node(row_id, kind="outcome", name=row.outcome, stage=stage, row=i + 1, span=span)
    if node is not None:
        checker.infer(node, row_id, BOOL, "an outcome's `when`")
    grants = [_grant(state, checker, d, (i, j), row_id) for j in range(len(row.grants))]
    if node is None or None in grants:
        return None
    return OutcomeRow(
        index=i + 1,
        outcome=row.outcome,
        when=node,
        title=row.title,
        span=span,
        grants=tuple(g for g in grants if g is not None),
    )


def _grant(state: _State, checker: _Checker, d: _Def, where: tuple[int, int], row_id: str) -> OutcomeGrant | None:
    """A grant of an outcome row: its quantity must be a number; a graph node the row leads to."""
    i, j = where
    grant = d.item.outcomes[i].grants[j]
    path = d.path + ("outcomes", i, "grants", j)
    span = d.file.source.span(path)
    grant_id = node_id("grant", f"{d.item.id}.{i + 1}.{grant.id}")
    state.graph.add_node(
        grant_id, kind="grant", name=grant.id, title=grant.title, reference=grant.reference, unit=grant.unit, span=span
    )
    state.graph.add_edge(row_id, grant_id, role="grants")
    quantity = None
    if grant.quantity is not None:
        text = grant.quantity if isinstance(grant.quantity, str) else str(grant.quantity)
        quantity = _parse(state, d.file, path + ("quantity",), text)
        if quantity is None:
            return None
        checker.infer(quantity, grant_id, NUM, f"the quantity of grant `{grant.id}`")
    return OutcomeGrant(
        id=grant.id, title=grant.title, quantity=quantity, unit=grant.unit, reference=grant.reference, span=span
    )


_ORDERED = ListTy(ANY)  # marks a ranking key: a number, a date, text or a boolean


def _ranking_key(state: _State, checker: _Checker, node: Node) -> None:
    ty = TypeChecker(checker.resolver).infer(node)
    family = STR if isinstance(ty, Choice) else ty
    if family not in (NUM, DATE, STR, BOOL, ANY):
        state.error(
            "type-mismatch", f"a ranking key must be a number, a date or text, but this is {describe(ty)}", node.span
        )


_PER_STAGE = ("slots", "capacity", "reserved")  # counted once per stage: no subject's facts
_BEFORE_RANKING = ("pool", "rank_by", "takes", "tracks")  # what ranking and allocation are made of


def _stage_restrictions(state: _State, checker: _Checker, stage: str, path: Path_, uses: list[Use]) -> None:
    where = path[0]
    label = str(path[-1]) if where == "tracks" else str(where)
    for use in uses:
        if label in _PER_STAGE and use.kind not in ("parameter", "context"):
            state.error(
                "slots-uses-facts",
                f"`{label}` of stage `{stage}` may use only parameters and `context`, not `{use.name}`",
                use.span,
            )
        elif where == "rank_by" and use.kind == "rule":
            state.error(
                "value-uses-rule",
                f"a ranking key uses rule `{use.name}`: rank by values, and filter with `pool`",
                use.span,
            )
        elif where in _BEFORE_RANKING and use.kind == "stage":
            state.error(
                "stage-cycle",
                f"the {where} of stage `{stage}` cannot use `{use.name}`: it is what ranking produces",
                use.span,
            )


def _graph_checks(state: _State) -> tuple[tuple[str, ...], frozenset[str]]:
    graph = state.graph
    defined = [n for n, a in graph.nodes.items() if a.get("kind") in ("value", "rule")]
    ordered = graph.order(defined)
    order: tuple[str, ...] = ()
    if ordered is None:  # a cycle: networkx names every one (only here: a package that loads never imports it)
        import networkx as nx

        sub = graph.to_networkx().subgraph(defined)
        cycles = [c for c in nx.strongly_connected_components(sub) if len(c) > 1 or any(sub.has_edge(n, n) for n in c)]
        for cycle in cycles:
            members = sorted(cycle, key=lambda n: graph.nodes[n]["span"])
            names = " → ".join(f"`{graph.nodes[n]['name']}`" for n in members + members[:1])
            state.error(
                "cycle", f"definitions depend on each other in a cycle: {names}", graph.nodes[members[0]]["span"]
            )
    else:
        order = tuple(graph.nodes[n]["name"] for n in ordered)
    stage_uses = [n for n in graph if n.startswith("ranking:")]
    dependent = set().union(*(graph.descendants(n) for n in stage_uses)) if stage_uses else set()
    users = frozenset(graph.nodes[n]["name"] for n in dependent if graph.nodes[n].get("kind") in ("value", "rule"))
    return order, users


def _unused(state: _State) -> None:
    for name, d in state.defs.items():
        users = list(state.graph.successors(node_id(d.kind, name)))
        if not users and name not in state.mentioned:
            state.error(
                f"unused-{d.kind}",
                f"{d.kind} `{name}` is not used by any rule, value or stage",
                d.span,
                severity="warning",
            )


def _lower(
    state: _State,
    checker: _Checker,
    schema: FactSchema,
    stages: dict[str, Stage],
    order: tuple[str, ...],
    dependent: frozenset[str],
) -> PolicyIR:
    parameters, values, rules = {}, {}, {}
    for name, d in state.defs.items():
        if d.kind == "parameter":
            item: Any = d.item
            dated = ((None, item.value),) if item.values is None else tuple(sorted(item.values.items()))
            if shape_of(item) != "value":
                dated = lowered_values(item, d.file.source, d.path)
            parameters[name] = Parameter(
                name=name,
                title=item.title,
                reference=item.reference,
                ty=state.types.get(name, ANY),
                values=dated,
                unit=item.unit,
                span=d.span,
            )
        elif d.kind == "value":
            values[name] = Value(
                name=name,
                title=d.item.title,
                expr=checker.nodes[name],
                ty=state.types.get(name, ANY),
                reference=d.item.reference,
                unit=d.item.unit,
                span=d.span,
            )
        else:
            held, failed = state.templates[name]
            rules[name] = Rule(
                id=name,
                title=d.item.title,
                reference=d.item.reference,
                when=checker.nodes[name],
                held=held,
                failed=failed,
                description=d.item.description,
                span=d.span,
            )
    manifest = state.source.manifest
    files = tuple(str(f.path) for f in state.source.files)
    return PolicyIR(
        name=manifest.policy,
        version=manifest.version,
        title=manifest.title,
        digest=state.source.digest,
        schema=schema,
        parameters=parameters,
        values=values,
        rules=rules,
        stages=stages,
        order=order,
        stage_dependent=dependent,
        dependencies=state.graph,
        files=files,
        labels=dict(manifest.labels),
    )


def _annotate(state: _State) -> None:
    for name, d in state.defs.items():
        item = d.item
        attrs = {
            "kind": d.kind,
            "name": name,
            "title": item.title,
            "reference": getattr(item, "reference", None),
            "span": d.span,
        }
        state.graph.add_node(node_id(d.kind, name), **attrs)


def _invariants(state: _State, checker: _Checker, schema: FactSchema) -> list[Invariant]:
    stages = {name: tuple(r.outcome for r in d.item.outcomes) for name, d in state.stages.items()}
    rules = tuple(n for n, d in state.defs.items() if d.kind == "rule")
    values = tuple((n, state.types.get(n, ANY)) for n, d in state.defs.items() if d.kind == "value")
    scope = InvariantScope(
        resolver=checker.resolver,
        subject=schema.subject,
        stages=stages,
        rules=rules,
        values=values,
        parse=lambda file, path, text: _parse(state, file, path, text),
    )
    invariants, found = lower_invariants(state.invariant_defs, scope)
    state.diagnostics.extend(found)
    state.mentioned.update(
        use.split(":", 1)[1]
        for invariant in invariants
        for use in invariant.uses
        if not use.startswith(("fact:", "context:"))
    )
    return invariants


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _value_order(state: _State) -> list[str]:
    """Values, each after the values its text names: typing one then never recurses far (chains may be long)."""
    values = {n: d for n, d in state.defs.items() if d.kind == "value"}
    names = {n: [w for w in _WORD.findall(str(d.item.expr)) if w in values] for n, d in values.items()}
    order: list[str] = []
    seen: set[str] = set()
    for root in values:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(names[root]))]
        while stack:
            name, uses = stack[-1]
            used = next(uses, None)
            if used is None:
                stack.pop()
                order.append(name)
            elif used not in seen:
                seen.add(used)
                stack.append((used, iter(names[used])))
    return order


def _depths(state: _State, checker: _Checker, stages: dict[str, Stage | None], order: tuple[str, ...]) -> None:
    """Each definition, with the values and rules it uses written out in place, nests at most
    `MAX_EXPRESSION_DEPTH` levels: explanations and why-not follow definitions through each other."""
    unfolded: dict[str, int] = {}
    exprs = [
        (node_id(state.defs[n].kind, n), [checker.nodes[n]], state.defs[n].span, f"{state.defs[n].kind} `{n}`")
        for n in order
    ]
    for stage in (s for s in stages.values() if s is not None):
        own = [stage.pool] + [k.expr for k in stage.rank_by] + ([stage.slots] if stage.slots is not None else [])
        own += [stage.capacity.total, stage.capacity.takes] if stage.capacity else []
        own += [n for t in stage.tracks for n in (t.when, t.reserved)]
        exprs.append((node_id("stage", stage.id), own, stage.span, f"stage `{stage.id}`"))
        for row in stage.outcomes:
            exprs.append(
                (
                    node_id("outcome", f"{stage.id}.{row.index}"),
                    [row.when],
                    row.span,
                    f"outcome row {row.index} of stage `{stage.id}`",
                )
            )
    for owner, nodes, span, what in exprs:
        used = [unfolded[p] for p in state.graph.predecessors(owner) if p in unfolded]
        levels = max(depth(n) for n in nodes) + max(used, default=0)
        unfolded[owner] = levels
        if levels > MAX_EXPRESSION_DEPTH and all(u <= MAX_EXPRESSION_DEPTH for u in used):
            state.error(
                "too-deep",
                f"{what} nests {levels} levels deep with the rules and values it uses written out, "
                f"more than {MAX_EXPRESSION_DEPTH}",
                span,
                "use fewer rules and values that build on each other, or flatter expressions",
            )


def check(source: PackageSource, fact_modules: FactModules | None = None) -> tuple[PolicyIR, list[Diagnostic]]:
    """Check `source` and lower it to IR; raise PolicyError if any error is found.

    Fact models are imported only from `fact_modules` (default: the modules trusted through
    entry points and `POLICY_FACT_MODULES`; see `engine.language.factmodels`).
    """
    state = _State(source)
    schema = _schema(state, fact_modules if fact_modules is not None else trusted_fact_modules())
    if schema is None or state.diagnostics:  # names cannot be resolved against a broken fact model
        raise PolicyError(state.diagnostics)
    _collect(state, schema)
    state.callables = frozenset(
        n for n, d in state.defs.items() if d.kind == "parameter" and shape_of(d.item) != "value"
    )
    _annotate(state)
    for name, d in state.defs.items():
        if d.kind == "parameter":
            state.types[name] = _parameter_type(state, d)
    checker = _Checker(state, schema)
    for name in _value_order(state):
        checker._value_type(name)
    for name, d in state.defs.items():
        if d.kind == "rule":
            checker.definition(d)
            state.templates[name] = (_template(state, checker, d, "held"), _template(state, checker, d, "failed"))
    stages = {name: _lower_stage(state, checker, d) for name, d in state.stages.items()}
    invariants = _invariants(state, checker, schema)
    state.diagnostics.extend(dated_value_findings((f.sections, f.source) for f in source.files))
    state.diagnostics.extend(missing_translations((f.sections, f.source) for f in source.files))
    for n, attrs in state.graph.nodes.items():
        attrs.setdefault("kind", n.split(":", 1)[0])
        attrs.setdefault("name", n.split(":", 1)[1])
    order, dependent = _graph_checks(state)
    if order and not any(d.severity == "error" for d in state.diagnostics):
        _depths(state, checker, stages, order)
    state.diagnostics = list(dict.fromkeys(state.diagnostics))  # a table's row found at each of its uses: once
    errors = [d for d in state.diagnostics if d.severity == "error"]
    if not errors:  # after an error, "unused" is often only a consequence of it
        _unused(state)
    if errors or None in stages.values():
        raise PolicyError(state.diagnostics)
    ir = _lower(state, checker, schema, {k: v for k, v in stages.items() if v is not None}, order, dependent)
    ir = dataclasses.replace(ir, invariants=tuple(invariants))
    state.diagnostics.extend(static_findings(ir))
    if any(d.severity == "error" for d in state.diagnostics):
        raise PolicyError(state.diagnostics)
    warnings = [d for d in state.diagnostics if d.severity == "warning"]
    return ir, warnings
