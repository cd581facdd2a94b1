"""JSON Schemas (draft 2020-12) of hookstream's wire contract, and the validator they compile
to. Each schema is declared once, as data, beside the code that uses it, and that code
validates with it: what is published is what is checked.

    data-event.json           one data event, as the sink reads it and Intercom takes it
                              (`hookstream.core.dataevents.DATA_EVENT_SCHEMA`)
    data-events-request.json  the body of the ingest's `POST /events`: one event or a list
    notification.json         an Intercom notification as the ingest accepts it
                              (`hookstream.core.notification.NOTIFICATION_SCHEMA`)
    routed-notification.json  ... as the worker accepts it and routes it (`type` optional)
    headers/<name>.json       each Kafka header hookstream writes (`HEADER_SCHEMAS`), and one
                              object schema per record kind (`record_headers_schema`)

`compile_schema(schema)` gives a `jsonschema_rs` validator (Rust: a valid event costs about
what the hand-written checks did); `field_path(error)` names the field of one of its errors.
`schema_documents()` is every schema as a standalone document, for
`hookstream contract schemas DIR` and the AsyncAPI document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema_rs

from hookstream.core import contract as c

__all__ = [
    "DRAFT",
    "HEADER_SCHEMAS",
    "RECORD_HEADERS",
    "Schema",
    "compile_schema",
    "field_path",
    "record_headers_schema",
    "schema_documents",
    "standalone",
]

DRAFT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://hookstream.dev/schemas/"
Schema = dict[str, Any]


def compile_schema(schema: Mapping[str, Any]) -> jsonschema_rs.Validator:
    """The draft 2020-12 validator of `schema`."""
    return jsonschema_rs.Draft202012Validator(dict(schema))


def field_path(error: jsonschema_rs.ValidationError) -> str:
    """The dotted path of the failing value (`metadata.price.amount`; empty for the whole);
    for a property name refused by `propertyNames`, the path of that property."""
    parts = [str(part) for part in error.instance_path]
    if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.PropertyNames):
        parts.append(str(error.kind.error.instance))
    return ".".join(parts)


def standalone(schema: Mapping[str, Any], name: str, title: str) -> Schema:
    """`schema` as a document of its own: `$schema`, `$id` and a title first."""
    return {"$schema": DRAFT, "$id": f"{ID_BASE}{name}", "title": title, **schema}


# -- headers ------------------------------------------------------------------------------

_DECIMAL = {"type": "string", "pattern": "^[0-9]+$"}
_TEXT = {"type": "string", "minLength": 1}

HEADER_SCHEMAS: dict[str, Schema] = {
    c.HEADER_TOPIC: {**_TEXT, "description": "The Intercom topic (`conversation.user.created`)."},
    c.HEADER_NOTIFICATION_ID: {
        **_TEXT,
        "description": "The notification's `id` (`notif_...`); absent for a ping on the raw topic.",
    },
    c.HEADER_DELIVERY_ATTEMPTS: {
        **_DECIMAL,
        "description": "Intercom's `delivery_attempts`, in decimal, when it gave one.",
    },
    c.HEADER_RECEIVED_AT: {
        **_DECIMAL,
        "description": "When the ingest received the webhook: Unix milliseconds, in decimal.",
    },
    c.HEADER_APP_ID: {
        **_TEXT,
        "maxLength": 255,
        "description": "The Intercom workspace (`app_id`) the record came from or is for.",
    },
    c.HEADER_HOOKSTREAM_APP: {
        **_TEXT,
        "description": "Which configured app's client secret verified the webhook "
        "(a name of `INTERCOM_CLIENT_SECRETS`).",
    },
    c.HEADER_TRACEPARENT: {
        "type": "string",
        "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
        "description": "W3C trace context (https://www.w3.org/TR/trace-context/), when "
        "tracing is on.",
    },
    c.HEADER_CE_SPECVERSION: {"const": "1.0", "description": "CloudEvents spec version."},
    c.HEADER_CE_ID: {**_TEXT, "description": "CloudEvents id: the notification id."},
    c.HEADER_CE_SOURCE: {
        "type": "string",
        "pattern": "^intercom://(app/.+|hookstream)$",
        "description": "CloudEvents source: `intercom://app/<app_id>`, or "
        "`intercom://hookstream` when the notification names no app.",
    },
    c.HEADER_CE_TYPE: {
        "type": "string",
        "pattern": "^com\\.intercom\\..+$",
        "description": "CloudEvents type: `com.intercom.<intercom topic>`.",
    },
    c.HEADER_CE_TIME: {
        "type": "string",
        "format": "date-time",
        "description": "CloudEvents time: the notification's `created_at` (RFC 3339); absent "
        "when it has none.",
    },
    c.HEADER_CONTENT_TYPE: {
        "const": "application/json",
        "description": "The value's media type (the CloudEvents binary mode's data).",
    },
    c.HEADER_DLQ_REASON: {**_TEXT, "description": "Why the record was dead-lettered."},
    c.HEADER_DLQ_SOURCE_TOPIC: {**_TEXT, "description": "The topic it was read from."},
    c.HEADER_DLQ_SOURCE_PARTITION: {**_DECIMAL, "description": "Its partition there."},
    c.HEADER_DLQ_SOURCE_OFFSET: {**_DECIMAL, "description": "Its offset there."},
    c.HEADER_DLQ_DETAIL: {
        "type": "string",
        "description": "The validation errors as JSON, or what failed.",
    },
    c.HEADER_DLQ_INTERCOM_STATUS: {
        **_DECIMAL,
        "description": "Intercom's HTTP status, when Intercom refused the event.",
    },
    c.HEADER_DLQ_INTERCOM_ERROR: {
        "type": "string",
        "maxLength": 4096,
        "description": "Intercom's `error.list` body (at most 4 KiB), when it refused it.",
    },
}
"""Each header's value (Kafka carries bytes: these describe them decoded as UTF-8)."""

_DLQ = (c.HEADER_DLQ_SOURCE_TOPIC, c.HEADER_DLQ_SOURCE_PARTITION, c.HEADER_DLQ_SOURCE_OFFSET)
_CE = (
    c.HEADER_CE_SPECVERSION,
    c.HEADER_CE_ID,
    c.HEADER_CE_SOURCE,
    c.HEADER_CE_TYPE,
    c.HEADER_CE_TIME,
    c.HEADER_CONTENT_TYPE,
)
_TRACE = (c.HEADER_TRACEPARENT,)

# Per record kind: (required headers, optional headers).
RECORD_HEADERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "raw": (
        (c.HEADER_TOPIC, c.HEADER_RECEIVED_AT),
        (
            c.HEADER_NOTIFICATION_ID,
            c.HEADER_DELIVERY_ATTEMPTS,
            c.HEADER_APP_ID,
            c.HEADER_HOOKSTREAM_APP,
            *_TRACE,
        ),
    ),
    "routed": (
        (c.HEADER_TOPIC, *_CE[:4], c.HEADER_CONTENT_TYPE),
        (
            c.HEADER_NOTIFICATION_ID,  # absent for a ping
            c.HEADER_RECEIVED_AT,  # absent when another producer wrote the raw record
            c.HEADER_CE_TIME,
            c.HEADER_APP_ID,
            c.HEADER_HOOKSTREAM_APP,
            *_TRACE,
        ),
    ),
    "dead-letter": ((c.HEADER_DLQ_REASON, *_DLQ), (c.HEADER_TOPIC, c.HEADER_RECEIVED_AT)),
    "data-event": ((), (c.HEADER_APP_ID, *_TRACE)),
    "data-event-dead-letter": (
        (c.HEADER_DLQ_REASON, c.HEADER_DLQ_DETAIL, *_DLQ),
        (c.HEADER_DLQ_INTERCOM_STATUS, c.HEADER_DLQ_INTERCOM_ERROR, c.HEADER_APP_ID, *_TRACE),
    ),
}
"""The headers of each kind of record (a dead letter also keeps the original's headers)."""


def record_headers_schema(kind: str) -> Schema:
    """The headers of one kind of record (`RECORD_HEADERS`) as one object schema; other
    headers are allowed (a dead letter keeps its original's)."""
    required, optional = RECORD_HEADERS[kind]
    return {
        "type": "object",
        "properties": {name: HEADER_SCHEMAS[name] for name in (*required, *optional)},
        "required": list(required),
    }


def schema_documents() -> dict[str, Schema]:
    """Every schema as a standalone document, by its file name (`headers/<name>.json` for one
    header, `headers/<kind>-record.json` for a record kind's set)."""
    from hookstream.core.dataevents import (  # noqa: PLC0415 - dataevents imports this module
        DATA_EVENT_SCHEMA,
        DATA_EVENTS_REQUEST_SCHEMA,
    )
    from hookstream.core.notification import (  # noqa: PLC0415 - same
        NOTIFICATION_SCHEMA,
        WORKER_NOTIFICATION_SCHEMA,
    )

    documents = {
        "data-event.json": standalone(DATA_EVENT_SCHEMA, "data-event.json", "Data event"),
        "data-events-request.json": standalone(
            DATA_EVENTS_REQUEST_SCHEMA, "data-events-request.json", "POST /events body"
        ),
        "notification.json": standalone(
            NOTIFICATION_SCHEMA, "notification.json", "Intercom notification"
        ),
        "routed-notification.json": standalone(
            WORKER_NOTIFICATION_SCHEMA, "routed-notification.json", "Routed notification"
        ),
    }
    for name, schema in HEADER_SCHEMAS.items():
        documents[f"headers/{name}.json"] = standalone(
            schema, f"headers/{name}.json", f"Kafka header {name}"
        )
    for kind in RECORD_HEADERS:
        file = f"headers/{kind}-record.json"
        documents[file] = standalone(
            record_headers_schema(kind), file, f"Kafka headers of a {kind} record"
        )
    return documents
