"""The sandbox's ASGI app: Intercom's Data Events API, and a control API for tests and tools.

Intercom's API (every answer carries `X-RateLimit-Limit/-Remaining/-Reset`):
    POST /events                  202 with an empty body, or Intercom's `error.list`
    GET  /events?type=user&user_id=...|email=...|intercom_user_id=...[&summary=true]
Control API (not rate limited, no token):
    GET  /sandbox/accepted?since=<seq>&limit=<n>   accepted events in arrival order
    GET  /sandbox/stats                            calls, answers by status, per-window counts
    GET  /sandbox/config, POST /sandbox/config     read or change the config at run time
    POST /sandbox/reset                            forget events, counters and windows
    POST /sandbox/workspaces/<id>                  add a workspace or change its token, limit,
                                                   region or `revoked` (a JSON object)
    POST /sandbox/workspaces/<id>/revoke           its token answers 401 from now on

Workspaces: the `access_token` is workspace `default`; `workspaces` adds more, each with its
own token, rate limiter (its own windows and `X-RateLimit-*` headers) and region, as a public
app's installations. Accepted events and `/sandbox/stats` name the workspace.
    GET  /healthz

A plain Starlette app (no FastAPI validation layer) to keep the per-call cost low: it is the
target of the sink's throughput benchmark.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hookstream.core.logs import get_logger
from hookstream.sandbox.config import SandboxConfig
from hookstream.sandbox.errors import ApiError, BadRequest, Injected, ParameterNotFound, RateLimited
from hookstream.sandbox.faults import Fault
from hookstream.sandbox.ratelimit import Clock, Decision
from hookstream.sandbox.state import DEFAULT_WORKSPACE, Sandbox
from hookstream.sandbox.validation import parse_event

log = get_logger(__name__)


def _json(content: object, status_code: int = 200, decision: Decision | None = None) -> Response:
    """A JSON answer; with a rate decision, its `X-RateLimit-*` headers too."""
    response = Response(orjson.dumps(content), status_code, media_type="application/json")
    if decision is not None:
        response.raw_headers.extend(decision.raw_headers())
    return response


def error_body(code: str, message: str | None, field: str | None = None) -> dict[str, Any]:
    """Intercom's error shape: `{"type": "error.list", "request_id", "errors": [...]}`."""
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"type": "error.list", "request_id": str(uuid.uuid4()), "errors": [error]}


def _sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


class _Call:
    """One Intercom API call: remembers the rate decision its answer's headers show."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.decision: Decision | None = None
        self.workspace: str | None = None

    async def begin(self, request: Request) -> str:
        """What every Intercom call goes through: latency, auth, Accept, version, rate limit
        and injected failures, in that order. Returns the call's Intercom-Version."""
        sandbox = self.sandbox
        config = sandbox.config
        await sandbox.faults.delay(config)
        headers = request.headers
        self.workspace = sandbox.identify(headers.get("authorization"))
        sandbox.check_auth(self.workspace)
        sandbox.check_accept(headers.get("accept"))
        version = sandbox.check_version(headers.get("intercom-version"))
        self.decision = sandbox.limiter_for(self.workspace).acquire()
        if not self.decision.allowed:
            raise RateLimited("Exceeded rate limit")
        fault = sandbox.faults.draw(config)
        if fault is Fault.HANG:
            sandbox.recorder.injected_timeouts += 1
            await asyncio.sleep(config.hang_seconds)
            raise Injected(504)
        if fault is Fault.ERROR:
            sandbox.recorder.injected_errors += 1
            raise Injected(config.error_status)
        return version

    def error(self, error: ApiError) -> Response:
        """The one place an `ApiError` becomes an answer: Intercom's body, the rate headers."""
        self.sandbox.answered(error.status, self.workspace)
        decision = self.decision or self.sandbox.limiter_for(self.workspace).peek()
        return _json(error_body(error.code, error.message, error.field), error.status, decision)

    def answer(self, status: int, content: object = None) -> Response:
        """A successful answer (JSON `content`, or no body), with the rate headers."""
        assert self.decision is not None  # noqa: S101 - begin() succeeded before any answer
        self.sandbox.answered(status, self.workspace)
        if content is None:
            response = Response(b"", status)
            response.raw_headers.extend(self.decision.raw_headers())
            return response
        return _json(content, status, self.decision)


async def post_event(request: Request) -> Response:
    """Intercom's `POST /events`: validate, deduplicate, record, answer 202 with no body."""
    sandbox = _sandbox(request)
    call = _Call(sandbox)
    try:
        version = await call.begin(request)
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("application/json"):
            raise BadRequest("Content-Type must be application/json")
        event = parse_event(await request.body())
    except ApiError as error:
        return call.error(error)
    sandbox.recorder.accept(
        event,
        received_at=sandbox.clock(),
        request_id=str(uuid.uuid4()),
        version=version,
        workspace=call.workspace or DEFAULT_WORKSPACE,
    )
    return call.answer(202)


_LIST_FILTERS = {"user_id": "user_id", "email": "email", "intercom_user_id": "id"}


async def list_events(request: Request) -> Response:
    """Intercom's `GET /events?type=user&<identifier>=...`: the contact's accepted events
    (duplicates left out), or with `summary=true` a count per event name."""
    sandbox = _sandbox(request)
    call = _Call(sandbox)
    params = request.query_params
    try:
        await call.begin(request)
        if params.get("type") != "user":
            raise ParameterNotFound("type must be user", field="type")
        given = [(name, params[name]) for name in _LIST_FILTERS if name in params]
        if not given:
            raise ParameterNotFound(
                "One of user_id, email or intercom_user_id is required", field="user_id"
            )
    except ApiError as error:
        return call.error(error)
    name, value = given[0]
    body_field = _LIST_FILTERS[name]
    wanted = value.lower() if name == "email" else value
    events = [
        entry.event
        for entry in sandbox.recorder.unique_events()
        if (
            str(entry.event.get(body_field, "")).lower()
            if name == "email"
            else entry.event.get(body_field)
        )
        == wanted
    ]
    if params.get("summary") == "true":
        return call.answer(200, _summary(name, value, events))
    listed = [{"type": "event", **event} for event in events]
    return call.answer(200, {"type": "event.list", "events": listed, "pages": {}})


def _summary(name: str, value: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for event in events:
        event_name, created_at = event["event_name"], event["created_at"]
        counts[event_name] += 1
        first[event_name] = min(first.get(event_name, created_at), created_at)
        last[event_name] = max(last.get(event_name, created_at), created_at)
    items = [
        {
            "name": event_name,
            "count": count,
            "first": _iso(first[event_name]),
            "last": _iso(last[event_name]),
        }
        for event_name, count in counts.items()
    ]
    return {"type": "event.summary", name: value, "events": items}


def _iso(unix: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime(unix))


async def accepted(request: Request) -> Response:
    """Accepted events after `since` (a sequence number), oldest first, at most `limit`."""
    sandbox = _sandbox(request)
    try:
        since = int(request.query_params.get("since", "0"))
        limit_param = request.query_params.get("limit")
        limit = None if limit_param is None else max(int(limit_param), 0)
    except ValueError:
        return _json(error_body("parameter_invalid", "since and limit are integers"), 400)
    entries = sandbox.recorder.since(since, limit)
    return _json(
        {
            "events": [entry.as_dict() for entry in entries],
            "last_seq": entries[-1].seq if entries else since,
            "total": sandbox.recorder.stats()["accepted"],
        }
    )


async def stats(request: Request) -> Response:
    """Counters, per-window counts and the config."""
    return _json(_sandbox(request).stats())


async def get_config(request: Request) -> Response:
    """The current config."""
    return _json(_sandbox(request).config.model_dump())


async def set_config(request: Request) -> Response:
    """Change the config: a JSON object of the fields to change."""
    sandbox = _sandbox(request)
    return await _change(request, sandbox.configure)


async def set_workspace(request: Request) -> Response:
    """Add a workspace, or change some of its fields (token, region, window_limit, revoked)."""
    sandbox = _sandbox(request)
    name = request.path_params["workspace"]
    return await _change(request, lambda changes: sandbox.configure_workspace(name, changes))


async def revoke_workspace(request: Request) -> Response:
    """Revoke a workspace's token: every call with it answers 401 from now on."""
    sandbox = _sandbox(request)
    name = request.path_params["workspace"]
    if name not in sandbox.config.workspaces:
        return _json(error_body("not_found", f"no workspace {name}"), 404)
    sandbox.configure_workspace(name, {"revoked": True})
    log.info("sandbox_workspace_revoked", workspace=name)
    return _json({"workspace": name, "revoked": True})


async def _change(request: Request, apply: Callable[[dict[str, Any]], SandboxConfig]) -> Response:
    try:
        changes = orjson.loads(await request.body() or b"{}")
        if not isinstance(changes, dict):
            raise TypeError("not an object")
        config = apply(changes)
    except (orjson.JSONDecodeError, TypeError):
        return _json(error_body("bad_request", "The body must be a JSON object"), 400)
    except ValidationError as exc:
        errors = [
            {
                "code": "parameter_invalid",
                "message": err["msg"],
                "field": ".".join(str(part) for part in err["loc"]),
            }
            for err in exc.errors()
        ]
        return _json({"type": "error.list", "request_id": None, "errors": errors}, 422)
    log.info("sandbox_configured", fields=sorted(changes))
    return _json(config.model_dump())


async def reset(request: Request) -> Response:
    """Forget accepted events, counters and windows (the config stays)."""
    _sandbox(request).reset()
    return _json({"reset": True})


async def healthz(_request: Request) -> Response:
    """Liveness."""
    return _json({"status": "ok"})


async def _http_error(_request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "server_error")
    return _json(error_body(code, "Resource Not Found" if status == 404 else str(exc)), status)


def create_app(
    config: SandboxConfig | None = None,
    *,
    clock: Clock = time.time,
    rng: random.Random | None = None,
) -> Starlette:
    """The sandbox app. `clock` (Unix seconds) drives the rate-limit windows and `rng` the
    failure injection; tests pass their own to control time and chance."""
    app = Starlette(
        routes=[
            Route("/events", post_event, methods=["POST"]),
            Route("/events", list_events, methods=["GET"]),
            Route("/sandbox/accepted", accepted, methods=["GET"]),
            Route("/sandbox/stats", stats, methods=["GET"]),
            Route("/sandbox/config", get_config, methods=["GET"]),
            Route("/sandbox/config", set_config, methods=["POST"]),
            Route("/sandbox/reset", reset, methods=["POST"]),
            Route("/sandbox/workspaces/{workspace}", set_workspace, methods=["POST"]),
            Route("/sandbox/workspaces/{workspace}/revoke", revoke_workspace, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.sandbox = Sandbox(config or SandboxConfig(), clock, rng or random.Random())  # noqa: S311
    return app
