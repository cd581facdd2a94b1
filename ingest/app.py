"""The ingest's ASGI app: Intercom webhooks in, durable Kafka records out.

`create_app(settings)` builds it: one ASGI app for the two ports uvicorn serves. Requests to
the admin port (HOOKSTREAM_INGEST_ADMIN_PORT: `/metrics`, `/readyz`, `/docs`, ...; see
`hookstream.ingest.admin`) go to the admin app; every other request goes to the webhook app,
which serves only `POST|HEAD /webhooks/intercom`, `POST /events` and a bare `/healthz` (404
for anything else), so a public ingress can expose that port alone. The webhook app's
lifespan owns the spool and the Kafka writer, which the admin endpoints read. The webhook
endpoint is the plain ASGI `ingest.webhook.WebhookEndpoint`; the other routes are FastAPI's.
Routes raise `ingest.errors`; one handler turns them into JSON errors with their status codes,
and `ingest.refusals` counts and logs them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from hookstream.core.build_info import VERSION
from hookstream.core.dataevents import data_events_request_schema
from hookstream.core.kafka import KafkaConnection
from hookstream.core.logs import get_logger
from hookstream.core.settings import Settings, weak_secrets, weak_secrets_refusal
from hookstream.core.topics import RECORD_OVERHEAD_BYTES
from hookstream.core.tracing import Tracing
from hookstream.ingest import metrics
from hookstream.ingest.admin import create_admin_app
from hookstream.ingest.durable import DurableWriter, WriterConfig
from hookstream.ingest.errors import IngestError, Overloaded
from hookstream.ingest.events import accept_data_events, queue_data_events
from hookstream.ingest.refusals import RefusalLog
from hookstream.ingest.spool import Spool
from hookstream.ingest.webhook import ERROR_RESPONSES, OPERATION, WEBHOOK_PATH, WebhookEndpoint

log = get_logger(__name__)

EVENTS_PATH = "/events"


def json_response(content: object, status_code: int = 200) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(content), status_code, media_type="application/json")


class IngestApp:
    """The two ports' apps as one ASGI app: a request whose server port is `admin_port` goes
    to `admin`, every other one (and the lifespan) to `webhooks`."""

    def __init__(self, webhooks: WebhookApp, admin: Starlette, admin_port: int) -> None:
        self.webhooks = webhooks
        self.admin = admin
        self.admin_port = admin_port
        # With traces on, a SERVER span around each webhook and data-events request.
        self._serve = webhooks.tracing.server(webhooks, _TIMED_PATHS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        if scope["type"] != "lifespan" and server is not None and server[1] == self.admin_port:
            await self.admin(scope, receive, send)
        else:
            await self._serve(scope, receive, send)


class WebhookApp(FastAPI):
    """The webhook port: FastAPI, except for `POST /webhooks/intercom`, which goes straight
    to the webhook endpoint (the OpenAPI schema documents it all the same). No docs here:
    the admin port serves them.

    At most HOOKSTREAM_INGEST_MAX_CONCURRENCY requests are served at once; past that a
    request gets a fast 503 with Retry-After (`/healthz` is not counted, so a busy pod is not
    taken for a dead one)."""

    def __init__(
        self, settings: Settings, refusals: RefusalLog, tracing: Tracing, **options: Any
    ) -> None:
        super().__init__(docs_url=None, redoc_url=None, openapi_url=None, **options)
        self.refusals = refusals
        self.tracing = tracing
        self.webhook_endpoint = WebhookEndpoint(settings, self.state, refusals, tracing)
        self._max_concurrency = settings.ingest.max_concurrency
        self._in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNCOUNTED_PATHS:
            await super().__call__(scope, receive, send)
            return
        path = scope["path"]
        send = metrics.timed(path if path in _TIMED_PATHS else "other", send)
        if self._in_flight >= self._max_concurrency:
            await _refuse_overloaded(scope, send, self.refusals)
            return
        self._in_flight += 1
        try:
            if scope["path"] == WEBHOOK_PATH and scope["method"] == "POST":
                await self.webhook_endpoint(scope, receive, send)
            else:
                await super().__call__(scope, receive, send)
        finally:
            self._in_flight -= 1

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:  # FastAPI's schema, built once and cached
            schema = super().openapi()
            schema["paths"].setdefault(WEBHOOK_PATH, {})["post"] = OPERATION
            return schema
        return self.openapi_schema


_UNCOUNTED_PATHS = frozenset({"/healthz"})
_TIMED_PATHS = frozenset({WEBHOOK_PATH, EVENTS_PATH})


async def _refuse_overloaded(scope: Scope, send: Send, refusals: RefusalLog) -> None:
    error = Overloaded("the ingest is serving its most requests at once; retry")
    path = scope["path"]
    refusals.refused(path if path in (WEBHOOK_PATH, EVENTS_PATH) else "other", error)
    body = error.json_body()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        (b"retry-after", b"%d" % error.retry_after),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def _traced(tracing: Tracing) -> AsyncIterator[None]:
    """Traces from the lifespan's start to its end: exported (flushed) off the event loop
    after the writer has stopped."""
    tracing.start()
    try:
        yield
    finally:
        await asyncio.to_thread(tracing.shutdown)


def secrets_refusal(settings: Settings) -> str | None:
    """Why the ingest must not start with these secrets, or None. Without a client secret,
    or with a weak one (short, a placeholder, a development default) unless
    HOOKSTREAM_ALLOW_DEV_SECRETS is set, which is then said in the log."""
    if not settings.ingest.client_secrets:
        return "set INTERCOM_CLIENT_SECRET (or INTERCOM_CLIENT_SECRETS) for the ingest"
    weak = weak_secrets(settings.ingest) + weak_secrets(settings.kafka)
    refusal = weak_secrets_refusal(weak, allowed=settings.ingest.allow_dev_secrets)
    if weak and not refusal:
        log.warning("ingest_using_dev_secrets", weak=weak)
    return refusal


def create_app(settings: Settings) -> IngestApp:
    """The ingest app for `settings`, both ports. Refuses to build without a client secret,
    or with a weak secret (see `secrets_refusal`)."""
    webhooks = create_webhook_app(settings)
    admin = create_admin_app(webhooks.state, webhooks.openapi)
    return IngestApp(webhooks, admin, settings.ingest.admin_port)


def create_webhook_app(settings: Settings) -> WebhookApp:
    """The webhook port's app (its lifespan owns the spool and the writer)."""
    refusal = secrets_refusal(settings)
    if refusal:
        raise ValueError(refusal)
    tracing = Tracing.from_settings(settings.tracing, "hookstream-ingest")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        writer_config = WriterConfig(
            connection=KafkaConnection.from_settings(settings.kafka),
            topics=(settings.topics.raw, settings.topics.data_events),
            produce_timeout=settings.ingest.produce_timeout_seconds,
            max_request_bytes=settings.topics.max_body_bytes + RECORD_OVERHEAD_BYTES,
            drain_failure_bound=settings.ingest.drain_failure_seconds,
            transactional_id_prefix=settings.ingest.transactional_id_prefix,
        )
        async with (
            _traced(tracing),
            await Spool.open(settings.ingest.spool_path, settings.ingest.spool_max_bytes) as spool,
            DurableWriter(writer_config, spool) as writer,
        ):
            app.state.writer = writer
            log.info(
                "ingest_started", version=VERSION, spool=str(spool.path), spool_depth=spool.depth
            )
            yield
            log.info("ingest_stopping", spool_depth=spool.depth)

    app = WebhookApp(
        settings,
        RefusalLog(settings.ingest.refused_log_interval_seconds),
        tracing,
        title="hookstream ingest",
        summary="Verifies Intercom webhooks and makes each one durable in Kafka.",
        version="1",
        lifespan=lifespan,
    )

    @app.exception_handler(IngestError)
    async def _refuse(request: Request, error: IngestError) -> Response:
        app.refusals.refused(request.url.path, error)
        return Response(error.json_body(), error.status, media_type="application/json")

    @app.post(
        EVENTS_PATH,
        status_code=202,
        summary="Queue data events for Intercom (one event, or a list: all or none)",
        responses={
            202: {
                "description": "Every event is durable and queued for the sink, all in one "
                "place: `durable_in` is kafka (one transaction) or spool."
            },
            400: {"description": "Not JSON.", "content": {"application/json": {}}},
            401: {
                "description": "Bearer token missing or wrong.",
                "content": {"application/json": {}},
            },
            413: ERROR_RESPONSES["413"],
            422: {
                "description": "Invalid events (or more than HOOKSTREAM_EVENTS_MAX_PER_REQUEST),"
                " with errors per item; none was queued.",
                "content": {"application/json": {}},
            },
            503: ERROR_RESPONSES["503"],
        },
        openapi_extra={
            "parameters": [
                {
                    "name": "Authorization",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^Bearer .+$"},
                }
            ],
            "requestBody": {
                "required": True,
                "description": "Data events as Intercom's Data Events API takes them, each"
                " with an optional `workspace_id` (the Intercom workspace, its app_id: a"
                " non-empty string of at most 255 characters), which the ingest moves into"
                " the record's `intercom-app-id` header and out of the event.",
                "content": {
                    "application/json": {
                        "schema": data_events_request_schema(settings.ingest.events_max_per_request)
                    }
                },
            },
        },
    )
    async def receive_data_events(request: Request) -> Response:
        events = await accept_data_events(request, settings)
        writer: DurableWriter = request.app.state.writer
        via = await queue_data_events(writer, events, settings.topics.data_events, tracing)
        metrics.REQUESTS.labels(EVENTS_PATH, "accepted").inc()
        return json_response({"status": "accepted", "events": len(events), "durable_in": via}, 202)

    @app.head(WEBHOOK_PATH, summary="URL validation: Intercom sends HEAD when registering")
    async def validate_webhook_url() -> Response:
        return Response(status_code=200)

    @app.get(
        "/healthz",
        summary="Liveness: the process answers, and its spool drain has not failed for long",
        description="Bare: the admin port's /healthz and /readyz say why.",
        responses={503: {"description": "Restart me", "content": {"application/json": {}}}},
    )
    async def healthz(request: Request) -> Response:
        writer: DurableWriter = request.app.state.writer
        if writer.unhealthy is not None:
            return json_response({"status": "unhealthy"}, 503)
        return json_response({"status": "ok"})

    return app
