"""`POST /events`: what a request must be before its data events are queued for Intercom,
and the queueing: all events of a request become durable together (one Kafka transaction, or
one spool transaction while Kafka is away) or none does. The validation itself is
`hookstream.core.dataevents`, the code the sink runs too."""

from __future__ import annotations

import hmac

import orjson
from starlette.requests import Request

from hookstream.core.contract import Headers
from hookstream.core.dataevents import DataEvent, event_key, validate_events
from hookstream.core.errors import DataEventInvalid, DataEventsInvalid
from hookstream.core.settings import IngestSettings, Settings
from hookstream.core.tracing import DURABLE_IN, TRACING_OFF, Tracing
from hookstream.ingest.body import read_body
from hookstream.ingest.durable import DurableWriter, OutgoingRecord, Via, write_all_durably
from hookstream.ingest.errors import InvalidDataEvents, NotAuthenticated, RequestRefused

_BEARER = "bearer "


def check_bearer_token(header: str | None, ingest: IngestSettings) -> None:
    """Return when `header` carries HOOKSTREAM_API_TOKEN (compared in constant time)."""
    if ingest.api_token is None:
        raise NotAuthenticated("POST /events is disabled: HOOKSTREAM_API_TOKEN is not set")
    if not header or not header.lower().startswith(_BEARER):
        raise NotAuthenticated("an Authorization: Bearer <token> header is required")
    given = header[len(_BEARER) :].strip().encode()
    if not given:
        raise NotAuthenticated("the bearer token is empty")
    if not hmac.compare_digest(given, ingest.api_token.get_secret_value().encode()):
        raise NotAuthenticated("the bearer token is not valid")


async def accept_data_events(request: Request, settings: Settings) -> list[DataEvent]:
    """The valid events of the request (one object or a list): all of them, or a refusal
    saying what is wrong with each invalid one."""
    check_bearer_token(request.headers.get("authorization"), settings.ingest)
    body = await read_body(
        request.headers.get("content-length"),
        request.stream(),
        settings.topics.max_body_bytes,
        settings.ingest.body_timeout_seconds,
    )
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestRefused(f"the body is not JSON: {exc}") from exc
    try:
        return validate_events(payload, max_events=settings.ingest.events_max_per_request)
    except DataEventsInvalid as exc:
        raise InvalidDataEvents(
            f"{len(exc.items)} of {exc.total} events are invalid; none was accepted",
            items=exc.items_as_dicts(),
        ) from exc
    except DataEventInvalid as exc:
        raise InvalidDataEvents(str(exc), errors=exc.as_dicts()) from exc


async def queue_data_events(
    writer: DurableWriter, events: list[DataEvent], topic: str, tracing: Tracing = TRACING_OFF
) -> Via:
    """Make every event durable on `topic`, together: "kafka" or "spool" says where all of
    them are. Raises `NotDurable` (503) when none could be stored."""
    headers: Headers = []  # the same for every record: `traceparent` when traces are on
    with tracing.producer(topic, None, headers, count=len(events)) as span:
        records = [
            OutgoingRecord(topic, event_key(event), event.body(), headers) for event in events
        ]
        via = await write_all_durably(writer, records)
        span.set_attribute(DURABLE_IN, via)
    return via
