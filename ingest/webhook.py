"""`POST /webhooks/intercom`, the ingest's hot path, as a plain ASGI endpoint.

Every Intercom delivery comes through here, so it skips FastAPI's per-request machinery
(middleware stack, routing, dependency solving, a `Request` object): measured in-process, that
machinery cost as much as everything the endpoint does itself. `hookstream.ingest.app.WebhookApp`
hands it the requests for its path and method, and puts `OPERATION` in the OpenAPI schema.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.datastructures import State
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from hookstream.core.contract import (
    HEADER_APP_ID,
    HEADER_DELIVERY_ATTEMPTS,
    HEADER_HOOKSTREAM_APP,
    HEADER_NOTIFICATION_ID,
    HEADER_RECEIVED_AT,
    HEADER_TOPIC,
    encode_headers,
)
from hookstream.core.errors import NotificationInvalid
from hookstream.core.logs import get_logger
from hookstream.core.notification import Notification, parse_notification
from hookstream.core.settings import Settings
from hookstream.core.tracing import DURABLE_IN, TRACING_OFF, Tracing
from hookstream.ingest import metrics
from hookstream.ingest.body import read_body
from hookstream.ingest.durable import OutgoingRecord, write_durably
from hookstream.ingest.errors import IngestError, NotANotification
from hookstream.ingest.refusals import RefusalLog
from hookstream.ingest.signature import verify_signature

log = get_logger(__name__)

WEBHOOK_PATH = "/webhooks/intercom"
ERROR_RESPONSES: dict[str, dict[str, Any]] = {
    str(status): {"description": description, "content": {"application/json": {}}}
    for status, description in {
        400: "Not JSON, or not an Intercom notification.",
        401: "X-Hub-Signature missing or not matching any configured secret.",
        413: "Body over the configured limit.",
        503: "Neither Kafka nor the spool could make the notification durable; retry.",
    }.items()
}
_ACCEPTED = metrics.REQUESTS.labels(WEBHOOK_PATH, "accepted")
OPERATION: dict[str, Any] = {
    "summary": "Receive one Intercom webhook notification",
    "operationId": "receive_webhook",
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
    "responses": {
        "200": {
            "description": "Durable: in Kafka, or in the spool.",
            "content": {"application/json": {}},
        },
        **ERROR_RESPONSES,
    },
}


class WebhookEndpoint:
    """Verifies a delivery, makes it durable through `state.writer` (set by the app's
    lifespan), and answers 200, or a JSON error with the status of the refusal."""

    def __init__(
        self, settings: Settings, state: State, refusals: RefusalLog, tracing: Tracing = TRACING_OFF
    ) -> None:
        signing = settings.ingest.signing_secrets
        self._secrets = [secret for _app, secret in signing]
        self._apps = [app for app, _secret in signing]  # None: an unnamed secret
        self._raw_topic = settings.topics.raw
        self._max_body_bytes = settings.topics.max_body_bytes
        self._body_deadline = settings.ingest.body_timeout_seconds
        self._state = state
        self._refusals = refusals
        self._tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, body = 200, await self._accept(scope, receive)
        except IngestError as error:
            self._refusals.refused(WEBHOOK_PATH, error)
            status, body = error.status, error.json_body()
        except ClientDisconnect:
            return  # nobody to answer; nothing was stored
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(body)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _accept(self, scope: Scope, receive: Receive) -> bytes:
        signature = content_length = None
        for name, value in scope["headers"]:
            if name == b"x-hub-signature" and signature is None:
                signature = value.decode("latin-1")
            elif name == b"content-length" and content_length is None:
                content_length = value.decode("latin-1")
        body = await read_body(
            content_length, _body_chunks(receive), self._max_body_bytes, self._body_deadline
        )
        app = self._apps[verify_signature(body, signature, self._secrets)]
        notification = _notification(body)
        headers = encode_headers(
            {
                HEADER_TOPIC: notification.topic,
                HEADER_NOTIFICATION_ID: notification.id,
                HEADER_DELIVERY_ATTEMPTS: notification.delivery_attempts,
                HEADER_RECEIVED_AT: int(time.time() * 1000),
                HEADER_APP_ID: notification.app_id,
                HEADER_HOOKSTREAM_APP: app,
            }
        )
        record = OutgoingRecord(self._raw_topic, notification.key, body, headers)
        with self._tracing.producer(self._raw_topic, notification.key, headers) as span:
            via = await write_durably(self._state.writer, record)
            span.set_attribute(DURABLE_IN, via)
        _ACCEPTED.inc()
        metrics.RECEIVED_BYTES.inc(len(body))
        log.debug("webhook_accepted", notification_id=notification.id, via=via)
        return orjson.dumps({"status": "accepted", "id": notification.id, "durable_in": via})


async def _body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _notification(body: bytes) -> Notification:
    try:
        return parse_notification(body, require_envelope_type=True)
    except NotificationInvalid as exc:
        details = {"field": exc.field} if exc.field else {}
        raise NotANotification(exc.detail, **details) from exc
