"""What the ingest needs from an Intercom notification envelope, checked no more strictly
than Intercom's real payloads allow (`data.type` may be missing, item times may be ISO
strings: the ingest reads only the envelope)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson

from hookstream.core.contract import PING_TOPIC
from hookstream.ingest.errors import NotANotification

ENVELOPE_TYPE = "notification_event"


@dataclass(frozen=True, slots=True)
class Notification:
    """The envelope fields that key and label the Kafka record."""

    id: str | None
    topic: str
    delivery_attempts: int | None

    @property
    def key(self) -> bytes:
        """The record key: the notification id; a fresh one for a ping (which has none)."""
        return (self.id or f"ping-{uuid.uuid4()}").encode()


def parse_notification(body: bytes) -> Notification:
    """The envelope of `body`, or `NotANotification` saying what is wrong with it."""
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise NotANotification(f"the body is not JSON: {exc}") from exc
    if not isinstance(envelope, dict):
        raise NotANotification("the body must be a JSON object")
    if envelope.get("type") != ENVELOPE_TYPE:
        raise NotANotification(f"`type` must be {ENVELOPE_TYPE!r}", field="type")
    topic = envelope.get("topic")
    if not isinstance(topic, str) or not topic:
        raise NotANotification("`topic` must be a non-empty string", field="topic")
    notification_id = envelope.get("id")
    if notification_id is None and topic != PING_TOPIC:
        raise NotANotification("`id` must be a string (only ping may have a null id)", field="id")
    if notification_id is not None and not (isinstance(notification_id, str) and notification_id):
        raise NotANotification("`id` must be a non-empty string", field="id")
    attempts = envelope.get("delivery_attempts")
    return Notification(
        id=notification_id,
        topic=topic,
        delivery_attempts=attempts if isinstance(attempts, int) else None,
    )
