"""The ingest's ASGI app: Intercom webhooks in, durable Kafka records out.

`create_app(settings)` builds it; its lifespan owns the spool and the Kafka writer. The webhook
endpoint is the plain ASGI `ingest.webhook.WebhookEndpoint`; the other routes are FastAPI's.
Routes raise `ingest.errors`; one handler turns them into JSON errors with their status codes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import Receive, Scope, Send

from hookstream.core.build_info import VERSION
from hookstream.core.kafka import KafkaConnection
from hookstream.core.logs import get_logger
from hookstream.core.settings import Settings, weak_secrets
from hookstream.core.topics import RECORD_OVERHEAD_BYTES
from hookstream.ingest import metrics
from hookstream.ingest.durable import DurableWriter, WriterConfig
from hookstream.ingest.errors import IngestError, Overloaded
from hookstream.ingest.events import accept_data_events, queue_data_events
from hookstream.ingest.spool import Spool
from hookstream.ingest.webhook import ERROR_RESPONSES, OPERATION, WEBHOOK_PATH, WebhookEndpoint

log = get_logger(__name__)

EVENTS_PATH = "/events"


def json_response(content: object, status_code: int = 200) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(content), status_code, media_type="application/json")


class IngestApp(FastAPI):
    """FastAPI, except for `POST /webhooks/intercom`: that goes straight to the webhook
    endpoint, which the OpenAPI schema documents all the same.

    At most HOOKSTREAM_INGEST_MAX_CONCURRENCY requests are served at once; past that a
    request gets a fast 503 with Retry-After (the probes and /metrics are not counted, so a
    busy pod is not taken for a dead one)."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        super().__init__(**options)
        self.webhook_endpoint = WebhookEndpoint(settings, self.state)
        self._max_concurrency = settings.ingest.max_concurrency
        self._in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNCOUNTED_PATHS:
            await super().__call__(scope, receive, send)
            return
        if self._in_flight >= self._max_concurrency:
            await _refuse_overloaded(scope, send)
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


_UNCOUNTED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


async def _refuse_overloaded(scope: Scope, send: Send) -> None:
    error = Overloaded("the ingest is serving its most requests at once; retry")
    path = scope["path"]
    endpoint = path if path in (WEBHOOK_PATH, EVENTS_PATH) else "other"
    metrics.REQUESTS.labels(endpoint, error.code).inc()
    body = error.json_body()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        (b"retry-after", b"%d" % error.retry_after),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def secrets_refusal(settings: Settings) -> str | None:
    """Why the ingest must not start with these secrets, or None. Without a client secret,
    or with a weak one (short, a placeholder, a development default) unless
    HOOKSTREAM_ALLOW_DEV_SECRETS is set, which is then said in the log."""
    if not settings.ingest.client_secrets:
        return "set INTERCOM_CLIENT_SECRET (or INTERCOM_CLIENT_SECRETS) for the ingest"
    weak = weak_secrets(settings.ingest) + weak_secrets(settings.kafka)
    if weak and not settings.ingest.allow_dev_secrets:
        return (
            "; ".join(weak) + ": use a long random secret (HOOKSTREAM_ALLOW_DEV_SECRETS=true "
            "accepts it, for local development only)"
        )
    if weak:
        log.warning("ingest_using_dev_secrets", weak=weak)
    return None


def create_app(settings: Settings) -> IngestApp:
    """The ingest app for `settings`. Refuses to build without a client secret, or with a
    weak secret (see `secrets_refusal`)."""
    refusal = secrets_refusal(settings)
    if refusal:
        raise ValueError(refusal)

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
            await Spool.open(settings.ingest.spool_path, settings.ingest.spool_max_bytes) as spool,
            DurableWriter(writer_config, spool) as writer,
        ):
            app.state.writer = writer
            log.info(
                "ingest_started", version=VERSION, spool=str(spool.path), spool_depth=spool.depth
            )
            yield
            log.info("ingest_stopping", spool_depth=spool.depth)

    app = IngestApp(
        settings,
        title="hookstream ingest",
        summary="Verifies Intercom webhooks and makes each one durable in Kafka.",
        version="1",
        lifespan=lifespan,
    )

    @app.exception_handler(IngestError)
    async def _refuse(request: Request, error: IngestError) -> Response:
        endpoint = request.url.path
        metrics.REQUESTS.labels(endpoint, error.code).inc()
        log.info("request_refused", endpoint=endpoint, code=error.code, reason=error.message)
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
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"type": "object"},
                                {"type": "array", "items": {"type": "object"}},
                            ]
                        }
                    }
                },
            },
        },
    )
    async def receive_data_events(request: Request) -> Response:
        events = await accept_data_events(request, settings)
        writer: DurableWriter = request.app.state.writer
        via = await queue_data_events(writer, events, settings.topics.data_events)
        metrics.REQUESTS.labels(EVENTS_PATH, "accepted").inc()
        return json_response({"status": "accepted", "events": len(events), "durable_in": via}, 202)

    @app.head(WEBHOOK_PATH, summary="URL validation: Intercom sends HEAD when registering")
    async def validate_webhook_url() -> Response:
        return Response(status_code=200)

    @app.get(
        "/healthz",
        summary="Liveness: the process answers, and its spool drain has not failed for long",
        responses={503: {"description": "Restart me", "content": {"application/json": {}}}},
    )
    async def healthz(request: Request) -> Response:
        writer: DurableWriter = request.app.state.writer
        reason = writer.unhealthy
        if reason is not None:
            return json_response({"status": "unhealthy", "reason": reason}, 503)
        return json_response({"status": "ok"})

    @app.get(
        "/readyz",
        summary="Readiness: Kafka acknowledges produces now (503 otherwise)",
        description="With `allow_spool=true`, also ready while Kafka is away but the spool "
        "has room: the probe for a load balancer that should keep sending during an outage.",
        responses={503: {"description": "Not ready", "content": {"application/json": {}}}},
    )
    async def readyz(request: Request, allow_spool: bool = False) -> Response:
        writer: DurableWriter = request.app.state.writer
        spool = writer.spool
        has_room = not spool.is_full
        ready = writer.kafka_up or (allow_spool and has_room)
        body = {
            "ready": ready,
            "kafka": "up" if writer.kafka_up else "refused" if writer.refused else "down",
            "spool_depth": spool.depth,
            "spool_has_room": has_room,
            "quarantined": spool.quarantined,
        }
        if writer.refused is not None:
            body["kafka_refused"] = str(writer.refused)
        return json_response(body, 200 if ready else 503)

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus_metrics(request: Request) -> Response:
        request.app.state.writer.refresh_gauges()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
