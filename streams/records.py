"""The records the worker reads and writes, built to the contract in `hookstream.core.contract`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from hookstream.core.contract import (
    HEADER_APP_ID,
    HEADER_CE_ID,
    HEADER_CE_SOURCE,
    HEADER_CE_SPECVERSION,
    HEADER_CE_TIME,
    HEADER_CE_TYPE,
    HEADER_CONTENT_TYPE,
    HEADER_DLQ_REASON,
    HEADER_DLQ_SOURCE_OFFSET,
    HEADER_DLQ_SOURCE_PARTITION,
    HEADER_DLQ_SOURCE_TOPIC,
    HEADER_HOOKSTREAM_APP,
    HEADER_NOTIFICATION_ID,
    HEADER_RECEIVED_AT,
    HEADER_TOPIC,
    Headers,
    encode_headers,
)
from hookstream.core.notification import Notification

CLOUDEVENTS_SPECVERSION = "1.0"
CLOUDEVENTS_TYPE_PREFIX = "com.intercom."
CLOUDEVENTS_SOURCE_WITHOUT_APP = "intercom://hookstream"
"""`ce_source` of a notification without `app_id` (none of Intercom's examples lacks one)."""


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record of the raw topic, as consumed."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int

    @property
    def received_at_ms(self) -> int:
        """When the ingest received the notification (its header, else the record time)."""
        value = self.header(HEADER_RECEIVED_AT)
        return int(value) if value is not None and value.isdigit() else self.timestamp_ms

    def header(self, name: str) -> bytes | None:
        """The value of header `name` (the last one wins, as in `decode_headers`), or None."""
        for header, value in reversed(self.headers):
            if header == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class OutRecord:
    """A record to produce."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    received_at_ms: int | None = None
    """A routed record's `hookstream-received-at` (Unix ms), for the commit's
    receive-to-commit histogram; None for a dead letter."""


def routed_record(raw: RawRecord, notification: Notification, destination: str) -> OutRecord:
    """The routed copy of a notification: keyed by the item it is about (so a conversation
    or contact keeps its order), the original bytes, the contract's headers."""
    notification_id = None if notification.id is None else notification.id.encode()
    if notification.item_id is not None:
        key: bytes | None = notification.item_id.encode()
    elif notification_id is not None:
        key = notification_id
    else:  # ping: no id anywhere; the ingest's synthetic `ping-<uuid>` key
        key = raw.key
    received_at_ms = raw.received_at_ms
    # Built pair by pair, the values that repeat (topic, workspace, time) encoded once each:
    # this runs for every routed record, and through a mapping and `encode_headers` it took
    # 5.0 us a record against 2.9 us now (`bench.streams`' notification).
    headers: Headers = []
    if notification_id is not None:
        headers.append((HEADER_NOTIFICATION_ID, notification_id))
    headers.append((HEADER_TOPIC, _encoded(notification.topic)))
    headers.append((HEADER_RECEIVED_AT, b"%d" % received_at_ms))
    if notification.app_id is not None:
        headers.append((HEADER_APP_ID, _encoded(notification.app_id)))
    headers += _cloudevent(raw, notification, notification_id)
    app = raw.header(HEADER_HOOKSTREAM_APP)
    if app is not None:  # which of the ingest's secrets verified it: passed on as it came
        headers.append((HEADER_HOOKSTREAM_APP, app))
    return OutRecord(destination, key, raw.value, headers, received_at_ms)


def _cloudevent(
    raw: RawRecord, notification: Notification, notification_id: bytes | None
) -> Headers:
    """The CloudEvents Kafka binding's binary-mode headers: the record's value is the data;
    `notification_id` is the notification's id, encoded."""
    if notification_id is not None:
        event_id = notification_id
    elif raw.key:  # a ping: the ingest's `ping-<uuid>`, the same on every copy of the record
        event_id = raw.key.decode(errors="replace").encode()  # a CloudEvents id is text
    else:  # a keyless ping from another producer: its place in the raw topic
        event_id = f"{raw.topic}/{raw.partition}/{raw.offset}".encode()
    headers = [
        _CE_SPECVERSION,
        (HEADER_CE_ID, event_id),
        (HEADER_CE_SOURCE, _source(notification.app_id)),
        (HEADER_CE_TYPE, _type(notification.topic)),
    ]
    if notification.created_at is not None:
        headers.append((HEADER_CE_TIME, _time(notification.created_at)))
    headers.append(_CONTENT_TYPE)
    return headers


_CE_SPECVERSION = (HEADER_CE_SPECVERSION, CLOUDEVENTS_SPECVERSION.encode())
_CONTENT_TYPE = (HEADER_CONTENT_TYPE, b"application/json")


@lru_cache(maxsize=1024)  # Intercom topics and workspaces: few per worker
def _encoded(text: str) -> bytes:
    return text.encode()


@lru_cache(maxsize=1024)
def _source(app_id: str | None) -> bytes:
    if app_id is None:
        return CLOUDEVENTS_SOURCE_WITHOUT_APP.encode()
    return f"intercom://app/{quote(app_id, safe='')}".encode()


@lru_cache(maxsize=256)
def _type(intercom_topic: str) -> bytes:
    return (CLOUDEVENTS_TYPE_PREFIX + intercom_topic).encode()


@lru_cache(maxsize=4096)  # notifications of one second share their `created_at`
def _time(created_at: int) -> bytes:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created_at)).encode()


def dead_letter(raw: RawRecord, dlq_topic: str, reason: str) -> OutRecord:
    """The dead letter of a raw record: its key, value and headers, plus why and whence."""
    dlq_names = {
        HEADER_DLQ_REASON,
        HEADER_DLQ_SOURCE_TOPIC,
        HEADER_DLQ_SOURCE_PARTITION,
        HEADER_DLQ_SOURCE_OFFSET,
    }
    kept = [(name, value) for name, value in raw.headers if name not in dlq_names]
    headers = kept + encode_headers(
        {
            HEADER_DLQ_REASON: reason,
            HEADER_DLQ_SOURCE_TOPIC: raw.topic,
            HEADER_DLQ_SOURCE_PARTITION: raw.partition,
            HEADER_DLQ_SOURCE_OFFSET: raw.offset,
        }
    )
    return OutRecord(topic=dlq_topic, key=raw.key, value=raw.value, headers=headers)
