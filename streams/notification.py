"""What the worker needs from a raw notification: its id, its topic and the item it is about.

The value is parsed once with orjson and never re-serialised: routed records carry the
original bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from hookstream.core.contract import PING_TOPIC
from hookstream.streams.errors import MissingId, NotANotification, NotJson


@dataclass(frozen=True, slots=True)
class Notification:
    """The routing facts of one Intercom notification."""

    id: str | None
    """The notification id (`notif_...`); None only for `ping`, which Intercom sends without."""
    topic: str
    """The Intercom topic, e.g. `conversation.user.created`."""
    item_id: str | None
    """`data.item.id`: the conversation, contact, ... the notification is about, if any."""


def parse_notification(value: bytes | None) -> Notification:
    """The notification in a raw record's value.

    Raises `NotJson`, `NotANotification` or `MissingId` (all `RejectedRecord`).
    """
    if not value:
        raise NotJson("empty value")
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise NotJson(str(exc)) from exc
    if not isinstance(document, dict):
        raise NotANotification(f"expected a JSON object, got {type(document).__name__}")
    topic = document.get("topic")
    if not isinstance(topic, str) or not topic:
        raise NotANotification("no string `topic`")
    notification_id = document.get("id")
    if notification_id is None and topic == PING_TOPIC:
        return Notification(id=None, topic=topic, item_id=None)
    if not isinstance(notification_id, str) or not notification_id:
        raise MissingId(f"`id` is {notification_id!r}")
    return Notification(id=notification_id, topic=topic, item_id=_item_id(document))


def _item_id(document: dict[str, object]) -> str | None:
    data = document.get("data")
    item = data.get("item") if isinstance(data, dict) else None
    item_id = item.get("id") if isinstance(item, dict) else None
    if isinstance(item_id, bool):  # bool is an int; never an id
        return None
    if isinstance(item_id, str) and item_id:
        return item_id
    if isinstance(item_id, int):
        return str(item_id)
    return None
