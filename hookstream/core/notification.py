"""The Intercom notification envelope, parsed once for the ingest (a webhook's body) and the
worker (a raw record's value): its id, topic, delivery attempts and the item it is about.

Checked no more strictly than Intercom's real payloads allow (`data.type` may be missing, item
times may be ISO strings): only the envelope is read. The value is parsed with orjson and
never re-serialised: records carry the original bytes.

What is checked is one JSON Schema (draft 2020-12), `NOTIFICATION_SCHEMA`, the envelope as the
ingest accepts it (`hookstream contract schemas` publishes it): the parser validates the
envelope's `type`, `topic` and `id` with it (the worker with `type` optional) and reads the
rest leniently, as before.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import jsonschema_rs
import orjson

from hookstream.core.contract import PING_TOPIC
from hookstream.core.errors import MissingId, NotANotification, NotificationInvalid, NotJson
from hookstream.core.schemas import Schema, compile_schema

ENVELOPE_TYPE = "notification_event"

NOTIFICATION_SCHEMA: Schema = {
    "description": "An Intercom webhook notification as hookstream's ingest accepts it. Only "
    "the envelope is checked; `data.item` is whatever the topic's object is.",
    "type": "object",
    "properties": {
        "type": {"const": ENVELOPE_TYPE},
        "topic": {"type": "string", "minLength": 1, "description": "The Intercom topic."},
        "id": {
            "type": ["string", "null"],
            "minLength": 1,
            "description": "The notification id (`notif_...`); null only for `ping`.",
        },
        "app_id": {"description": "The workspace; kept when a non-empty string."},
        "created_at": {"description": "Unix seconds; kept when a plausible integer."},
        "delivery_attempts": {"description": "Intercom's count; kept when an integer."},
        "data": {"description": "`{item: ...}`: `data.item.id` keys the routed record."},
    },
    "required": ["type", "topic"],
    "if": {"properties": {"topic": {"const": PING_TOPIC}}},
    "else": {"required": ["id"], "properties": {"id": {"type": "string"}}},
}
"""The envelope as the ingest accepts it (the worker does not require `type`)."""

_ENVELOPE_FIELDS = ("type", "topic", "id")
_INGEST = compile_schema(NOTIFICATION_SCHEMA)
WORKER_NOTIFICATION_SCHEMA: Schema = {
    **NOTIFICATION_SCHEMA,
    "description": "An Intercom notification as hookstream's worker accepts it from the raw "
    "topic: the ingest's envelope, `type` optional (the routed topics carry these).",
    "properties": {k: v for k, v in NOTIFICATION_SCHEMA["properties"].items() if k != "type"},
    "required": ["topic"],
}
_WORKER = compile_schema(WORKER_NOTIFICATION_SCHEMA)


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
    _check_envelope(envelope, _INGEST if require_envelope_type else _WORKER)
    topic: str = envelope["topic"]
    notification_id: str | None = envelope.get("id")
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


def _check_envelope(envelope: dict[str, object], validator: jsonschema_rs.Validator) -> None:
    """Raise the first of the envelope's problems, in the order type, topic, id."""
    head = {name: envelope[name] for name in _ENVELOPE_FIELDS if name in envelope}
    if validator.is_valid(head):
        return
    wrong = {
        str(error.instance_path[0]) if error.instance_path else _required(error)
        for error in validator.iter_errors(head)
    }
    raise _problem(next((name for name in _ENVELOPE_FIELDS if name in wrong), "topic"), envelope)


def _required(error: jsonschema_rs.ValidationError) -> str:
    kind = error.kind
    return (
        str(kind.property) if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required) else ""
    )


def _problem(name: str, envelope: dict[str, object]) -> NotificationInvalid:
    if name == "type":
        return NotANotification(f"`type` must be {ENVELOPE_TYPE!r}", field="type")
    if name == "topic":
        return NotANotification("`topic` must be a non-empty string", field="topic")
    if envelope.get("id") is None:
        return MissingId("`id` must be a string (only ping may have a null id)", field="id")
    return MissingId("`id` must be a non-empty string", field="id")


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
