"""The HTTP service: FastAPI over a `PolicyStore` (run with `policy serve RULES`).

    POST /v1/evaluate?as_of=&stage=      cohort JSON in, the CLI's `--format json` out
         ...&outside_period=true         a stage decides outside its declared period (a what-if)
         ...&record=true                 and append a decision record: the answer names it (`record`)
    POST /v1/explain?id=&format=         cohort JSON in, one decision's explanation out
    POST /v1/letter?id=                  cohort JSON in, the decision letter to one subject out (HTML),
                                         in the language of `Accept-Language` (en, ko; else English)
    GET  /v1/policy?as_of=               identity, parameters in force with references, stages
    POST /v1/reload                      load the package again; a broken one is rejected (422)
    GET  /v1/records/{id}                one decision record (id, or a unique prefix of 8+ hex digits)
    GET  /v1/records?subject=&limit=     the records (or one subject's decisions), oldest first
    GET  /healthz                        the version in force
    GET  /openapi.json, /docs            the schema, with the package's fact model as request body

Every error is JSON `{"errors": [{"path", "message", "code"}]}` (no tracebacks): invalid facts
and parameters are 422 with field paths (`body.consortia[4].scores.expert`, `query.as_of`), a
body over the limit is 413. Each request takes the version in force once and answers with it to
the end, so a reload never changes an answer half-way. Evaluation runs in the server's thread
pool; the engine is thread-safe on both backends.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, BeforeValidator, ValidationError
from pydantic_core import PydanticCustomError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.core.diagnostics import Diagnostic
from engine.core.errors import BackendError, EngineError, EvaluationError, FactError, OutsidePeriod, RecordError
from engine.core.i18n import pick_language
from engine.core.text import json_text, shown_lines
from engine.embedding.policy import Policy
from engine.embedding.store import PolicyStore
from engine.evaluation.result import to_jsonable
from engine.explanation.letter import write_letter
from engine.language.expr import render
from engine.records.record import StoredRecord, draft_record
from engine.records.store import RecordStore
from engine.service.server_models import (
    ErrorOut,
    EvaluationOut,
    ExplainJsonOut,
    HealthOut,
    PolicyOut,
    RecordListOut,
    RecordOut,
    ReloadOut,
)
from engine.source.jsonsource import parse_json_bytes
from engine.source.validation import format_path, validation_diagnostics

__all__ = [
    "create_app",
    "BodyLimit",
    "MAX_BODY",
    "ExplainFormat",
    "EvaluationOut",
    "ErrorOut",
    "PolicyOut",
    "HealthOut",
    "ReloadOut",
    "ExplainJsonOut",
]

MAX_BODY = 1024 * 1024  # bytes
DRAIN_LIMIT = 16 * MAX_BODY  # a refused body up to this size is read and dropped before answering 413
ExplainFormat = Literal["text", "json", "dot", "mermaid"]
log = logging.getLogger("engine.service.server")


_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorOut, "description": "request body over the size limit"},
    422: {"model": ErrorOut, "description": "invalid facts or parameters, with field paths"},
    500: {"model": ErrorOut, "description": "the engine could not complete"},
}
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> Any:
    """A date query parameter is `YYYY-MM-DD` and nothing else (no Unix time, no `20260801`, no time of day)."""
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise PydanticCustomError("invalid-date", "`{value}` is not a date: give YYYY-MM-DD", {"value": value})
    return value


IsoDate = Annotated[dt.date | None, BeforeValidator(_iso_date)]
AsOf = Annotated[IsoDate, Query(description="evaluate as of this date (YYYY-MM-DD); default: the cohort's date")]


StageId = Annotated[str | None, Query(description="the stage to decide; default: the cohort's stage")]


OutsidePeriodFlag = Annotated[
    bool,
    Query(
        description="decide a stage as of a date outside the period it declares (a what-if); "
        "without it such a date is a 422 at `query.as_of`"
    ),
]


SubjectId = Annotated[str, Query(description="the subject's id, e.g. naver-cloud")]


Format = Annotated[ExplainFormat, Query(description="text (a tree), json (decision + node-link graph), dot or mermaid")]


RecordFlag = Annotated[
    bool,
    Query(description="also append a decision record (the server runs with `--record DB`); the answer names it"),
]


RecordId = Annotated[
    str,
    Path(description="the record's id (64 hex digits) or a unique prefix of at least 8", pattern="^[0-9a-f]{8,64}$"),
]


RecordSubject = Annotated[
    str | None, Query(description="only this subject's decisions, oldest first (its history)", min_length=1)
]


RecordLimit = Annotated[int, Query(description="at most this many (the latest)", ge=1, le=1000)]


InForceOn = Annotated[IsoDate, Query(description="parameters in force on this date (YYYY-MM-DD); default: today")]


_COHORT_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}}


class _Json(JSONResponse):
    """Strict JSON: a non-finite number is `null` (never `Infinity`/`NaN`), control characters escaped."""

    def render(self, content: Any) -> bytes:
        return json_text(content, default=str).encode("utf-8")


class _Rejected(Exception):
    """A request the engine cannot answer: becomes `{"errors": [...]}` with `status`."""

    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        super().__init__(status)
        self.status, self.errors = status, errors


def _error(path: str | None, message: str, code: str, help: str | None = None) -> dict[str, Any]:
    """One error of a response; `help` (a suggestion, e.g. `did you mean ...?`) only where there is one."""
    return {"path": path, "message": message, "code": code} | ({"help": help} if help else {})


def _errors_response(status: int, errors: list[dict[str, Any]]) -> _Json:
    return _Json({"errors": errors}, status_code=status)


class BodyLimit:
    """ASGI middleware: refuse request bodies over `max_body` bytes with 413, before the app reads them."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            await self._refuse(scope, receive, send, more=int(length) <= DRAIN_LIMIT)
            return
        buffered: list[Message] = []
        size = 0
        while True:  # read the body up to the limit, then hand it to the app
            message = await receive()
            buffered.append(message)
            size += len(message.get("body", b""))
            if size > self.max_body:
                await self._refuse(scope, receive, send, more=bool(message.get("more_body")))
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, more: bool) -> None:
        drained = 0
        while more and drained <= DRAIN_LIMIT:  # read and drop the rest, so the client sees the answer
            chunk = await receive()
            drained += len(chunk.get("body", b""))
            more = chunk["type"] == "http.request" and bool(chunk.get("more_body"))
        text = f"the request body is larger than the limit of {self.max_body} bytes"
        response = _errors_response(413, [_error("body", text, "body-too-large")])
        response.headers["connection"] = "close"
        await response(scope, receive, send)


def _loc_path(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a field path, without union-branch tags."""
    parts = tuple(p for p in loc if isinstance(p, int) or (isinstance(p, str) and "[" not in p and "(" not in p))
    return format_path(parts) if parts else ""


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]


def _fact_errors(error: ValidationError, data: Any, model: type[BaseModel]) -> list[dict[str, Any]]:
    """Invalid facts as errors with paths under `body`, with the engine's messages (and suggestions)."""
    diagnostics = validation_diagnostics(error, data, None, file="<body>", model=model)
    found = []
    for item, diagnostic in zip(error.errors(), diagnostics, strict=True):
        path = _loc_path(tuple(item["loc"]))
        found.append(_error(f"body.{path}" if path else "body", diagnostic.message, diagnostic.code, diagnostic.help))
    return found


def _diagnostic_errors(diagnostics: list[Diagnostic]) -> list[dict[str, Any]]:
    return [_error(str(d.span) if d.span else None, d.message, d.code, d.help) for d in diagnostics]


async def _cohort(request: Request, policy: Policy) -> BaseModel:
    """The request body validated against the package's cohort model (422 with paths if not)."""
    document = parse_json_bytes(await request.body(), "body")
    if document.diagnostics:  # located: `body:3:7`
        raise _Rejected(
            422,
            [
                _error(str(d.span or "body"), d.message, "invalid-json" if d.code == "json-syntax" else d.code)
                for d in document.diagnostics
            ],
        )
    data = document.data
    if not isinstance(data, dict):
        raise _Rejected(
            422, [_error("body", "the body must be a JSON object: a cohort (context and subjects)", "invalid-body")]
        )
    try:
        return policy.ir.schema.cohort.model_validate(data)
    except ValidationError as error:
        raise _Rejected(422, _fact_errors(error, data, policy.ir.schema.cohort)) from None


def _period(dates: tuple[dt.date, dt.date | None] | None) -> dict[str, str | None] | None:
    """A stage's declared period as JSON (`None`: the stage applies on any date)."""
    if dates is None:
        return None
    return {"from": dates[0].isoformat(), "until": dates[1].isoformat() if dates[1] else None}


def _check_stages(policy: Policy, model: BaseModel, stage: str | None) -> None:
    """The stage asked for, and the one the cohort's context names, are stages of this policy (422 if not).

    The context's stage is checked even when `stage` is given: a cohort naming a stage the policy
    does not define is not a cohort of this policy (the OpenAPI schema says so with an `enum`).
    """
    known = policy.ir.stages
    names = ", ".join(f"`{s}`" for s in known)
    errors = (
        []
        if stage is None or stage in known
        else [_error("query.stage", f"unknown stage `{stage}`; this policy defines {names}", "unknown-stage")]
    )
    schema = policy.ir.schema
    context = getattr(model, schema.context_field, None) if schema.context_field else None
    named = getattr(context, schema.stage_field, None) if context is not None and schema.stage_field else None
    if named is not None and str(named) not in known:
        path = f"body.{schema.context_field}.{schema.stage_field}"
        errors.append(_error(path, f"unknown stage `{named}`; this policy defines {names}", "unknown-stage"))
    if errors:
        raise _Rejected(422, errors)


def _policy_json(policy: Policy, store: PolicyStore, as_of: dt.date) -> dict[str, Any]:
    params = policy.compiled.parameters_on(as_of)
    parameters = []
    for name, p in policy.ir.parameters.items():
        in_force = name in params
        value, since = (to_jsonable(params[name]), params.since.get(name)) if in_force else (None, None)
        note = None if in_force else params.absent.get(name)
        parameters.append(
            {
                "name": name,
                "title": p.title,
                "reference": p.reference,
                "unit": p.unit,
                "value": value,
                "since": since,
                "in_force": in_force,
                "note": note,
            }
        )
    stages = []
    for stage in policy.ir.stages.values():
        slots = render(stage.slots) if stage.slots is not None else None
        to = stage.open_slots.to if stage.open_slots else None
        outcomes = list(stage.outcome_names)
        stages.append(
            {
                "id": stage.id,
                "title": stage.title,
                "reference": stage.reference,
                "slots": slots,
                "fills_slot": stage.fills_slot,
                "open_slots_to": to,
                "outcomes": outcomes,
                "period": _period(stage.dates),
            }
        )
    identity = policy.identity
    head = {
        "name": identity.name,
        "version": identity.version,
        "digest": identity.digest,
        "title": policy.ir.title,
        "backend": policy.backend_name,
    }
    return {
        **head,
        "generation": store.generation,
        "as_of": as_of,
        "parameters": parameters,
        "stages": stages,
        "warnings": len(policy.warnings),
    }


_When = tuple[dt.date | None, str | None, bool]  # as_of, stage, outside_period


def _explanation(policy: Policy, model: BaseModel, id: str, format: ExplainFormat, when: _When) -> Response:
    as_of, stage, outside_period = when
    result = policy.evaluate(model, as_of=as_of, stage=stage, outside_period=outside_period)
    decision = result.decisions.get(id)
    if decision is None:
        known = ", ".join(result.decisions)
        raise _Rejected(404, [_error("query.id", f"no subject `{id}` in the cohort; ids: {known}", "unknown-id")])
    explanation = decision.explain()
    if format == "json":
        return _Json({"decision": decision.to_json(), "graph": explanation.to_json()})
    text = {"text": explanation.to_text, "dot": explanation.to_dot, "mermaid": explanation.to_mermaid}[format]()
    return PlainTextResponse(shown_lines(text) + "\n")  # values are escaped already; this keeps it so


def _letter(policy: Policy, model: BaseModel, id: str, lang: str, when: _When) -> Response:
    as_of, stage, outside_period = when
    result = policy.evaluate(model, as_of=as_of, stage=stage, outside_period=outside_period)
    if id not in result.decisions:
        known = ", ".join(result.decisions)
        raise _Rejected(404, [_error("query.id", f"no subject `{id}` in the cohort; ids: {known}", "unknown-id")])
    letter = write_letter(policy, result, id, lang)
    return HTMLResponse(letter.to_html(), headers={"Content-Language": letter.lang})


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(_Rejected)
    async def rejected(_request: Request, error: _Rejected) -> Response:
        return _errors_response(error.status, error.errors)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> Response:
        errors = [_error(_loc_path(tuple(e["loc"])), _lower(str(e["msg"])), str(e["type"])) for e in error.errors()]
        return _errors_response(422, errors)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> Response:
        response = _errors_response(error.status_code, [_error(None, str(error.detail), "http")])
        response.headers.update(error.headers or {})  # e.g. `Allow` of a 405
        return response

    @app.exception_handler(EngineError)
    async def engine_error(_request: Request, error: EngineError) -> Response:
        if isinstance(error, FactError):
            return _errors_response(422, _diagnostic_errors(error.diagnostics))
        if isinstance(error, OutsidePeriod):
            return _errors_response(422, [_error("query.as_of", str(error), "outside-period")])
        if isinstance(error, EvaluationError):
            return _errors_response(422, [_error(None, str(error), "evaluation-error")])
        code = "backend-error" if isinstance(error, BackendError) else "engine-error"
        return _errors_response(500, [_error(None, str(error), code)])

    @app.exception_handler(Exception)
    async def internal(_request: Request, error: Exception) -> Response:
        log.error("internal error", exc_info=error)
        return _errors_response(500, [_error(None, "internal error: see the server's log", "internal")])


def _install_openapi(app: FastAPI, store: PolicyStore) -> None:
    cache: dict[str, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        policy = store.current
        if policy.identity.digest not in cache:
            cache.clear()
            cache[policy.identity.digest] = _openapi_for(app, policy)
        return cache[policy.identity.digest]

    app.openapi = openapi  # type: ignore[method-assign]


def _openapi_for(app: FastAPI, policy: Policy) -> dict[str, Any]:
    identity = policy.identity
    description = (
        f"Decisions of `{identity.name}` {identity.version} (digest {identity.digest[:12]}); "
        f"request bodies are `{policy.ir.schema.cohort.__name__}` fact files as JSON."
    )
    schema = get_openapi(
        title=f"policy engine: {policy.ir.title}", version=identity.version, description=description, routes=app.routes
    )
    cohort = policy.ir.schema.cohort
    facts = cohort.model_json_schema(ref_template="#/components/schemas/facts.{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update({f"facts.{name}": definition for name, definition in facts.pop("$defs", {}).items()})
    components[f"facts.{cohort.__name__}"] = facts
    stages = list(policy.ir.stages)
    for path in ("/v1/evaluate", "/v1/explain", "/v1/letter"):
        operation = schema["paths"][path]["post"]
        operation["requestBody"]["content"]["application/json"]["schema"] = {
            "$ref": f"#/components/schemas/facts.{cohort.__name__}"
        }
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "stage":  # the stages of the version in force
                parameter["schema"] = {"anyOf": [{"type": "string", "enum": stages}, {"type": "null"}]}
    _enumerate_context_stage(policy, components, facts, stages)
    return schema


def _enumerate_context_stage(
    policy: Policy, components: dict[str, Any], cohort: dict[str, Any], stages: list[str]
) -> None:
    """The cohort context's stage field, documented as one of the policy's stages (what the service checks)."""
    fields = policy.ir.schema
    if not fields.context_field or not fields.stage_field:
        return
    context = cohort.get("properties", {}).get(fields.context_field, {})
    for _ in range(4):  # follow `$ref` and a single-branch `allOf`/`anyOf` to the context's definition
        ref = context.get("$ref") or next((b.get("$ref") for b in context.get("allOf", []) if "$ref" in b), None)
        if ref is None:
            break
        context = components.get(ref.rsplit("/", 1)[-1], {})
    field = context.get("properties", {}).get(fields.stage_field)
    if isinstance(field, dict) and field.get("type") == "string":
        field["enum"] = stages


def create_app(store: PolicyStore, max_body: int = MAX_BODY, records: RecordStore | None = None) -> FastAPI:
    """The FastAPI application serving the store's version in force; with `records`, it keeps decision records."""
    app = FastAPI(title="policy engine", docs_url="/docs", redoc_url=None)
    app.add_middleware(BodyLimit, max_body=max_body)
    _install_handlers(app)
    _routes(app, store, records)
    _record_routes(app, records)
    _install_openapi(app, store)
    return app


def _routes(app: FastAPI, store: PolicyStore, records: RecordStore | None = None) -> None:
    @app.post(
        "/v1/evaluate",
        response_model=EvaluationOut,
        responses={
            409: {"model": ErrorOut, "description": "`record=true`, but this server keeps no records"},
            **_ERRORS,
        },
        openapi_extra=_COHORT_BODY,
        summary="Decide every subject of a cohort",
    )
    async def evaluate(
        request: Request,
        as_of: AsOf = None,
        stage: StageId = None,
        record: RecordFlag = False,
        outside_period: OutsidePeriodFlag = False,
    ) -> Response:
        policy = store.current  # this request's version, to the end
        if record and records is None:
            raise _Rejected(409, [_error("query.record", _NO_RECORDS, "records-disabled")])
        model = await _cohort(request, policy)
        _check_stages(policy, model, stage)
        if record and records is not None:
            when = (as_of, stage, outside_period)
            result, stored = await run_in_threadpool(_evaluate_and_record, records, policy, model, when)
            return _Json({**result.to_json(), "record": stored.id})
        result = await run_in_threadpool(
            functools.partial(policy.evaluate, model, as_of, stage, outside_period=outside_period)
        )
        return _Json(result.to_json())

    @app.post(
        "/v1/explain",
        responses={200: {"model": ExplainJsonOut, "content": {"text/plain": {}}}, 404: {"model": ErrorOut}, **_ERRORS},
        openapi_extra=_COHORT_BODY,
        summary="Explain one decision",
    )
    async def explain(
        request: Request,
        id: SubjectId,
        format: Format = "text",
        as_of: AsOf = None,
        stage: StageId = None,
        outside_period: OutsidePeriodFlag = False,
    ) -> Response:
        policy = store.current
        model = await _cohort(request, policy)
        _check_stages(policy, model, stage)
        return await run_in_threadpool(_explanation, policy, model, id, format, (as_of, stage, outside_period))

    @app.post(
        "/v1/letter",
        responses={
            200: {"content": {"text/html": {"schema": {"type": "string"}}}},
            404: {"model": ErrorOut},
            **_ERRORS,
        },
        openapi_extra=_COHORT_BODY,
        summary="The decision letter to one subject, in the language of Accept-Language (en, ko)",
    )
    async def letter(
        request: Request,
        id: SubjectId,
        as_of: AsOf = None,
        stage: StageId = None,
        outside_period: OutsidePeriodFlag = False,
    ) -> Response:
        policy = store.current
        model = await _cohort(request, policy)
        _check_stages(policy, model, stage)
        lang = pick_language(request.headers.get("accept-language"))
        return await run_in_threadpool(_letter, policy, model, id, lang, (as_of, stage, outside_period))

    @app.get(
        "/v1/policy",
        response_model=PolicyOut,
        responses=_ERRORS,
        summary="The version in force, its parameters on a date, its stages",
    )
    async def describe(as_of: InForceOn = None) -> Response:
        policy = store.current
        return _Json(to_jsonable(_policy_json(policy, store, as_of or dt.date.today())))

    @app.post(
        "/v1/reload",
        response_model=ReloadOut,
        responses={
            422: {
                "model": ReloadOut,
                "description": "the package on disk is broken; the previous version stays in force",
            }
        },
        summary="Load the rule package again",
    )
    async def reload() -> Response:
        report = await run_in_threadpool(store.reload_report)
        if report.ok:
            return _Json(report.to_json())
        errors = _diagnostic_errors([d for d in report.diagnostics if d.severity == "error"])
        return _Json({**report.to_json(), "errors": errors}, status_code=422)

    @app.get("/healthz", response_model=HealthOut, summary="Liveness, and the version in force")
    async def healthz() -> Response:
        identity = store.current.identity
        return _Json(
            {
                "status": "ok",
                "name": identity.name,
                "version": identity.version,
                "digest": identity.digest,
                "generation": store.generation,
            }
        )


_NO_RECORDS = "this server keeps no decision records: start it with `policy serve RULES --record DB`"


def _evaluate_and_record(
    records: RecordStore, policy: Policy, model: BaseModel, when: _When
) -> tuple[Any, StoredRecord]:
    """Evaluate, then append the record (nothing is written if the evaluation fails)."""
    as_of, stage, outside_period = when
    result = policy.evaluate(model, as_of, stage, outside_period=outside_period)
    return result, records.append(draft_record(policy, result, model))


def _stored(records: RecordStore | None, id: str) -> StoredRecord:
    if records is None:
        raise _Rejected(404, [_error("path.id", _NO_RECORDS, "records-disabled")])
    try:
        found = records.find(id)
    except RecordError as error:  # a prefix naming several records
        raise _Rejected(422, [_error("path.id", str(error), "ambiguous-id")]) from None
    if found is None:
        raise _Rejected(404, [_error("path.id", f"no record `{id}`", "unknown-record")])
    return found


def _record_routes(app: FastAPI, records: RecordStore | None) -> None:
    not_found: dict[int | str, dict[str, Any]] = {
        404: {"model": ErrorOut, "description": "no such record, or this server keeps no records"}
    }

    @app.get(
        "/v1/records/{id}",
        response_model=RecordOut,
        responses={**not_found, 422: _ERRORS[422], 500: _ERRORS[500]},
        summary="One decision record: its package files, facts, decisions and explanations",
    )
    async def record(id: RecordId) -> Response:
        stored = await run_in_threadpool(_stored, records, id)
        return _Json(stored.to_json())

    @app.get(
        "/v1/records",
        response_model=RecordListOut,
        responses={**not_found, 422: _ERRORS[422], 500: _ERRORS[500]},
        summary="The decision records, oldest first; with `subject`, that subject's decisions over time",
    )
    async def listing(subject: RecordSubject = None, limit: RecordLimit = 100) -> Response:
        if records is None:
            raise _Rejected(404, [_error(None, _NO_RECORDS, "records-disabled")])
        rows = await run_in_threadpool(records.summaries, subject, limit)
        return _Json({"records": [r.to_json() for r in rows]})
