"""The Intercom notification envelope, parsed once for the ingest (a webhook's body) and the
worker (a raw record's value): its id, topic, delivery attempts and the item it is about.

Checked no more strictly than Intercom's real payloads allow (`data.type` may be missing, item
times may be ISO strings): only the envelope is read. The value is parsed with orjson and
never re-serialised: records carry the original bytes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson

from hookstream.core.contract import PING_TOPIC
from hookstream.core.errors import MissingId, NotANotification, NotJson

ENVELOPE_TYPE = "notification_event"


@dataclass(frozen=True, slots=True)
class Notification:
    """The facts of one Intercom notification that key, label and route its records."""

    id: str | None
    """The notification id (`notif_...`); None only for `ping`, which Intercom sends without."""
    topic: str
    """The Intercom topic, e.g. `conversation.user.created`."""
    item_id: str | None = None
    """`data.item.id`: the conversation, contact, ... the notification is about, if any."""
    delivery_attempts: int | None = None
    """Intercom's count of attempts to deliver it, when given."""
    app_id: str | None = None
    """`app_id`: the Intercom workspace it came from, when given."""
    created_at: int | None = None
    """`created_at` in Unix seconds, when given as a plausible one (year 1970 to 9999)."""

    @property
    def key(self) -> bytes:
        """The raw record's key: the notification id; a fresh one for a ping (which has none)."""
        return (self.id or f"ping-{uuid.uuid4()}").encode()


def parse_notification(body: bytes | None, *, require_envelope_type: bool) -> Notification:
    """The notification in `body`. The ingest requires `"type": "notification_event"`; the
    worker does not (its input already passed the ingest, or came from a trusted producer).

    Raises `NotJson`, `NotANotification` or `MissingId` (all `NotificationInvalid`).
    """
    if not body:
        raise NotJson("the body is empty")
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise NotJson(f"the body is not JSON: {exc}") from exc
    if not isinstance(envelope, dict):
        raise NotANotification(f"expected a JSON object, got {type(envelope).__name__}")
    if require_envelope_type and envelope.get("type") != ENVELOPE_TYPE:
        raise NotANotification(f"`type` must be {ENVELOPE_TYPE!r}", field="type")
    topic = envelope.get("topic")
    if not isinstance(topic, str) or not topic:
        raise NotANotification("`topic` must be a non-empty string", field="topic")
    notification_id = envelope.get("id")
    if notification_id is None and topic != PING_TOPIC:
        raise MissingId("`id` must be a string (only ping may have a null id)", field="id")
    if notification_id is not None and not (isinstance(notification_id, str) and notification_id):
        raise MissingId("`id` must be a non-empty string", field="id")
    attempts = envelope.get("delivery_attempts")
    app_id = envelope.get("app_id")
    return Notification(
        id=notification_id,
        topic=topic,
        item_id=None if notification_id is None else _item_id(envelope),
        delivery_attempts=attempts if isinstance(attempts, int) else None,
        app_id=app_id if isinstance(app_id, str) and app_id else None,
        created_at=_unix_seconds(envelope.get("created_at")),
    )


_YEAR_10000 = 253_402_300_800  # Unix seconds; RFC 3339 has four-digit years


def _unix_seconds(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value < _YEAR_10000 else None


def _item_id(envelope: dict[str, object]) -> str | None:
    data = envelope.get("data")
    item = data.get("item") if isinstance(data, dict) else None
    item_id = item.get("id") if isinstance(item, dict) else None
    if isinstance(item_id, bool):  # bool is an int; never an id
        return None
    if isinstance(item_id, str) and item_id:
        return item_id
    if isinstance(item_id, int):
        return str(item_id)
    return None
