"""`POST /events`: what a request must be before its data events are queued for Intercom,
and the queueing: all events of a request become durable together (one Kafka transaction, or
one spool transaction while Kafka is away) or none does. The validation itself is
`hookstream.core.dataevents`, the code the sink runs too.

An event of the request may carry one field Intercom's does not: `workspace_id`, the Intercom
workspace (`app_id`) it is for, a non-empty string of at most 255 characters. The ingest takes
it out of the event and puts it in the record's `intercom-app-id` header; the record's value
is the event exactly as Intercom takes it."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import orjson
from starlette.requests import Request

from hookstream.core.contract import HEADER_APP_ID, Headers, encode_headers
from hookstream.core.dataevents import (
    MAX_TEXT_CHARS,
    REQUEST_ONLY_PROPERTIES,
    DataEvent,
    event_key,
    validate_events,
)
from hookstream.core.errors import DataEventInvalid, DataEventsInvalid, FieldError
from hookstream.core.schemas import compile_schema
from hookstream.core.settings import IngestSettings, Settings
from hookstream.core.tracing import DURABLE_IN, TRACING_OFF, Tracing
from hookstream.ingest.body import read_body
from hookstream.ingest.durable import DurableWriter, OutgoingRecord, Via, write_all_durably
from hookstream.ingest.errors import InvalidDataEvents, NotAuthenticated, RequestRefused

_BEARER = "bearer "
WORKSPACE_FIELD = "workspace_id"
_WORKSPACE_ID = compile_schema(REQUEST_ONLY_PROPERTIES[WORKSPACE_FIELD])


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


@dataclass(frozen=True, slots=True)
class WorkspaceEvent:
    """A valid data event and the workspace it is for (None: the sink's default one)."""

    event: DataEvent
    workspace_id: str | None


async def accept_data_events(request: Request, settings: Settings) -> list[WorkspaceEvent]:
    """The valid events of the request (one object or a list): all of them, or a refusal
    saying what is wrong with each invalid one. An event may name its workspace in a
    `workspace_id` field, which is taken out of the event Intercom is sent."""
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
        return _with_workspaces(payload, settings.ingest.events_max_per_request)
    except DataEventsInvalid as exc:
        raise InvalidDataEvents(
            f"{len(exc.items)} of {exc.total} events are invalid; none was accepted",
            items=exc.items_as_dicts(),
        ) from exc
    except DataEventInvalid as exc:
        raise InvalidDataEvents(str(exc), errors=exc.as_dicts()) from exc


def _with_workspaces(payload: object, max_events: int) -> list[WorkspaceEvent]:
    """Validate the events of `payload` with their `workspace_id`s taken out first (Intercom's
    event has no such field), and each workspace id too: every problem of every event is
    reported at once, as `validate_events` does."""
    single = isinstance(payload, dict)
    items: list[object] = [payload] if single else payload if isinstance(payload, list) else []
    workspaces: list[str | None] = []
    refused: dict[int, list[FieldError]] = {}
    for index, item in enumerate(items):
        workspace, problem = _workspace_id(item)
        workspaces.append(workspace)
        if problem is not None:
            refused[index] = [FieldError(WORKSPACE_FIELD, problem)]
    stripped = [_without_workspace(item) for item in items]
    checked = stripped[0] if single else stripped if isinstance(payload, list) else payload
    try:
        events = validate_events(checked, max_events=max_events)
    except DataEventsInvalid as exc:
        failures = {i: exc.items.get(i, []) + refused.get(i, []) for i in {*exc.items, *refused}}
        raise DataEventsInvalid(failures, total=exc.total) from exc
    except DataEventInvalid as exc:
        if single and refused:
            raise DataEventInvalid(exc.errors + refused[0]) from exc
        raise
    if refused:
        if single:
            raise DataEventInvalid(refused[0])
        raise DataEventsInvalid(refused, total=len(items))
    return [WorkspaceEvent(e, w) for e, w in zip(events, workspaces, strict=True)]


def _workspace_id(item: object) -> tuple[str | None, str | None]:
    """(the event's workspace id, or None; what is wrong with it, or None)."""
    if not isinstance(item, dict) or WORKSPACE_FIELD not in item:
        return None, None
    value = item[WORKSPACE_FIELD]
    if _WORKSPACE_ID.is_valid(value):  # the schema POST /events publishes (OpenAPI)
        return value, None
    if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
        return None, f"must be at most {MAX_TEXT_CHARS} characters, got {len(value)}"
    return None, "must be a non-empty string (the Intercom workspace, its app_id)"


def _without_workspace(item: object) -> object:
    if isinstance(item, dict) and WORKSPACE_FIELD in item:
        return {key: value for key, value in item.items() if key != WORKSPACE_FIELD}
    return item


async def queue_data_events(
    writer: DurableWriter, events: list[WorkspaceEvent], topic: str, tracing: Tracing = TRACING_OFF
) -> Via:
    """Make every event durable on `topic`, together: "kafka" or "spool" says where all of
    them are; an event's workspace goes in its `intercom-app-id` header. Raises `NotDurable`
    (503) when none could be stored."""
    trace: Headers = []  # `traceparent` when traces are on: one for all the records
    with tracing.producer(topic, None, trace, count=len(events)) as span:
        records = [
            OutgoingRecord(
                topic,
                event_key(item.event),
                item.event.body(),
                encode_headers({HEADER_APP_ID: item.workspace_id}) + trace,
            )
            for item in events
        ]
        via = await write_all_durably(writer, records)
        span.set_attribute(DURABLE_IN, via)
    return via
