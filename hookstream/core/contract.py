"""The wire contract of hookstream's Kafka topics: header names and how values are encoded.

Raw topic (`HOOKSTREAM_RAW_TOPIC`, default `intercom.notifications`), written by the ingest:
    key     the notification id (UTF-8); for `ping`, which Intercom sends with `"id": null`,
            a synthetic `ping-<uuid>` so the record still has a stable key
    value   the exact bytes Intercom sent
    headers `intercom-topic`, `intercom-delivery-attempts`, `hookstream-received-at`
            (Unix milliseconds), `intercom-notification-id` (absent for ping),
            `intercom-app-id` (the notification's `app_id`, absent without one),
            `hookstream-app` (the name of the INTERCOM_CLIENT_SECRETS secret that verified
            it; absent for an unnamed secret)

Routed topics (`<prefix><intercom topic>`, default prefix `intercom.`), written by the worker:
    key     `data.item.id` of the notification (the notification id when the item has none)
    value   the notification's original bytes, unchanged
    headers `intercom-notification-id`, `intercom-topic`, `hookstream-received-at`,
            `intercom-app-id` and `hookstream-app` (as on the raw record), and the
            CloudEvents Kafka binding's binary-mode headers (the value is the event's data):
            `ce_specversion` `1.0`; `ce_id` the notification id (a ping's: the raw record's
            key); `ce_source` `intercom://app/<app_id>` (`intercom://hookstream` when the
            notification names no app); `ce_type` `com.intercom.<intercom topic>`; `ce_time`
            `created_at` in RFC 3339 (absent when the notification has none);
            `content-type` `application/json`

With traces on (OTEL_EXPORTER_OTLP_ENDPOINT), raw, routed and data-events records written by
the ingest and the worker also carry W3C `traceparent` (`hookstream.core.tracing`).

Dead-letter topics add `hookstream-dlq-reason`, `hookstream-dlq-source-topic`,
`hookstream-dlq-source-partition`, `hookstream-dlq-source-offset` and keep the original
key, value and headers.

Data events (`HOOKSTREAM_DATA_EVENTS_TOPIC`, default `intercom.data-events`), read by the sink:
    key     the event's identifier (`hookstream.core.dataevents.event_key`), so one contact's
            events share a partition and keep their order
    value   one JSON data event as Intercom's `POST /events` takes it
    headers `intercom-app-id`: the workspace to send it to (absent: the sink's single
            configured one); `POST /events` moves an event's `workspace_id` here
Their dead letters (`HOOKSTREAM_DATA_EVENTS_DLQ_TOPIC`) carry `hookstream-dlq-reason` =
`invalid_event` | `rejected` | `retries_exhausted` | `no_token_for_workspace`,
`hookstream-dlq-detail` (the validation errors as JSON, or what failed), and for Intercom's
refusals `hookstream-dlq-intercom-status` and `hookstream-dlq-intercom-error` (Intercom's
`error.list` body, at most 4 KiB).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Headers = list[tuple[str, bytes]]

HEADER_TOPIC = "intercom-topic"
HEADER_NOTIFICATION_ID = "intercom-notification-id"
HEADER_DELIVERY_ATTEMPTS = "intercom-delivery-attempts"
HEADER_RECEIVED_AT = "hookstream-received-at"
# The Intercom workspace (`app_id`) a notification came from or a data event is for.
HEADER_APP_ID = "intercom-app-id"
# Which configured app's client secret verified a webhook (`INTERCOM_CLIENT_SECRETS` names).
HEADER_HOOKSTREAM_APP = "hookstream-app"
# W3C trace context (https://www.w3.org/TR/trace-context/), when tracing is on.
HEADER_TRACEPARENT = "traceparent"
HEADER_CE_SPECVERSION = "ce_specversion"
HEADER_CE_ID = "ce_id"
HEADER_CE_SOURCE = "ce_source"
HEADER_CE_TYPE = "ce_type"
HEADER_CE_TIME = "ce_time"
HEADER_CONTENT_TYPE = "content-type"
HEADER_DLQ_REASON = "hookstream-dlq-reason"
HEADER_DLQ_SOURCE_TOPIC = "hookstream-dlq-source-topic"
HEADER_DLQ_SOURCE_PARTITION = "hookstream-dlq-source-partition"
HEADER_DLQ_SOURCE_OFFSET = "hookstream-dlq-source-offset"
HEADER_DLQ_DETAIL = "hookstream-dlq-detail"
HEADER_DLQ_INTERCOM_STATUS = "hookstream-dlq-intercom-status"
HEADER_DLQ_INTERCOM_ERROR = "hookstream-dlq-intercom-error"

PING_TOPIC = "ping"


def encode_headers(values: Mapping[str, str | int | None]) -> Headers:
    """Kafka headers from a mapping; `None` values are left out."""
    return [(name, str(value).encode()) for name, value in values.items() if value is not None]


def decode_headers(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    """A mapping of the headers of a consumed record (the last value wins)."""
    return {name: value.decode(errors="replace") for name, value in headers or ()}


def routed_topic(prefix: str, intercom_topic: str) -> str:
    """The default routed topic of an Intercom topic: `conversation.user.created` →
    `intercom.conversation.user.created`."""
    return f"{prefix}{intercom_topic}"
