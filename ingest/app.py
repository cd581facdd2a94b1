"""The ingest's ASGI app: Intercom webhooks in, durable Kafka records out.

`create_app(settings)` builds it; its lifespan owns the spool and the Kafka writer. Routes
raise `ingest.errors`; one handler turns them into JSON errors with their status codes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hookstream.contract import (
    HEADER_DELIVERY_ATTEMPTS,
    HEADER_NOTIFICATION_ID,
    HEADER_RECEIVED_AT,
    HEADER_TOPIC,
    encode_headers,
)
from hookstream.dataevents import event_key
from hookstream.logs import get_logger
from hookstream.settings import Settings
from ingest import metrics
from ingest.body import read_body
from ingest.durable import DurableWriter, OutgoingRecord, WriterConfig
from ingest.errors import IngestError, NotDurable
from ingest.events import accept_data_events
from ingest.notification import parse_notification
from ingest.signature import verify_signature
from ingest.spool import Spool

log = get_logger(__name__)

WEBHOOK_PATH = "/webhooks/intercom"
EVENTS_PATH = "/events"
_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": {"application/json": {}}}
    for status, description in {
        400: "Not JSON, or not an Intercom notification.",
        401: "X-Hub-Signature missing or not matching any configured secret.",
        413: "Body over the configured limit.",
        503: "Neither Kafka nor the spool could make the notification durable; retry.",
    }.items()
}


def json_response(content: object, status_code: int = 200) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(content), status_code, media_type="application/json")


def error_response(error: IngestError) -> Response:
    """The JSON body every refusal carries: `{"error": {"code", "message", ...details}}`."""
    body = {"error": {"code": error.code, "message": error.message, **error.details}}
    return json_response(body, error.status)


async def write_durably(writer: DurableWriter, record: OutgoingRecord) -> str:
    """Write through `writer`; anything but a refusal becomes `NotDurable` (503: retry)."""
    try:
        return await writer.write(record)
    except IngestError:
        raise
    except Exception as exc:
        log.exception("write_failed", topic=record.topic, key=record.key.decode(errors="replace"))
        raise NotDurable(f"the record could not be stored: {exc!r}") from exc


def create_app(settings: Settings) -> FastAPI:
    """The ingest app for `settings`. Refuses to build without a client secret."""
    secrets = settings.client_secrets
    if not secrets:
        raise ValueError("set INTERCOM_CLIENT_SECRET (or INTERCOM_CLIENT_SECRETS) for the ingest")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        writer_config = WriterConfig(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topics=(settings.raw_topic, settings.data_events_topic),
            produce_timeout=settings.produce_timeout_seconds,
        )
        async with (
            await Spool.open(settings.spool_path, settings.spool_max_bytes) as spool,
            DurableWriter(writer_config, spool) as writer,
        ):
            app.state.writer = writer
            log.info("ingest_started", spool=str(spool.path), spool_depth=spool.depth)
            yield
            log.info("ingest_stopping", spool_depth=spool.depth)

    app = FastAPI(
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
        return error_response(error)

    @app.post(
        WEBHOOK_PATH,
        summary="Receive one Intercom webhook notification",
        responses={200: {"description": "Durable: in Kafka, or in the spool."}, **_ERROR_RESPONSES},
        openapi_extra={
            "parameters": [
                {
                    "name": "X-Hub-Signature",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^sha1=[0-9a-fA-F]{40}$"},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
        },
    )
    async def receive_webhook(request: Request) -> Response:
        body = await read_body(request, settings.max_body_bytes)
        verify_signature(body, request.headers.get("x-hub-signature"), secrets)
        notification = parse_notification(body)
        headers = encode_headers(
            {
                HEADER_TOPIC: notification.topic,
                HEADER_NOTIFICATION_ID: notification.id,
                HEADER_DELIVERY_ATTEMPTS: notification.delivery_attempts,
                HEADER_RECEIVED_AT: int(time.time() * 1000),
            }
        )
        record = OutgoingRecord(settings.raw_topic, notification.key, body, headers)
        via = await write_durably(request.app.state.writer, record)
        metrics.REQUESTS.labels(WEBHOOK_PATH, "accepted").inc()
        metrics.RECEIVED_BYTES.inc(len(body))
        log.debug("webhook_accepted", notification_id=notification.id, via=via)
        return json_response({"status": "accepted", "id": notification.id, "durable_in": via})

    @app.post(
        EVENTS_PATH,
        status_code=202,
        summary="Queue data events for Intercom (one event, or a list: all or none)",
        responses={
            202: {"description": "Every event is durable and queued for the sink."},
            400: {"description": "Not JSON.", "content": {"application/json": {}}},
            401: {
                "description": "Bearer token missing or wrong.",
                "content": {"application/json": {}},
            },
            413: _ERROR_RESPONSES[413],
            422: {
                "description": "Invalid events, with errors per item; none was queued.",
                "content": {"application/json": {}},
            },
            503: _ERROR_RESPONSES[503],
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
        for event in events:
            record = OutgoingRecord(settings.data_events_topic, event_key(event), event.body(), [])
            await write_durably(writer, record)
        metrics.REQUESTS.labels(EVENTS_PATH, "accepted").inc()
        return json_response({"status": "accepted", "events": len(events)}, 202)

    @app.head(WEBHOOK_PATH, summary="URL validation: Intercom sends HEAD when registering")
    async def validate_webhook_url() -> Response:
        return Response(status_code=200)

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> Response:
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
            "kafka": "up" if writer.kafka_up else "down",
            "spool_depth": spool.depth,
            "spool_has_room": has_room,
        }
        return json_response(body, 200 if ready else 503)

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus_metrics(request: Request) -> Response:
        request.app.state.writer.refresh_gauges()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
