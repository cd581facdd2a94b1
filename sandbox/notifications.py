"""Realistic Intercom webhook notifications for any topic Intercom publishes.

Built from the real samples in `sandbox/samples/` (captures and doc examples, provenance in
`samples/SOURCES.md`) with a fresh `notif_<uuid>` id, a fresh `data.item.id` and current
timestamps. A topic without a sample of its own borrows the sample of its resource
(`conversation.admin.closed` from a conversation capture); `*.deleted` topics carry only the
item's identifying fields, as Intercom sends them; the rest get a minimal item of their
resource type. `ping` keeps `"id": null`, as Intercom sends it.
"""

from __future__ import annotations

import copy
import secrets
import time
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from hookstream.sandbox.errors import UnknownTopic

SAMPLES_DIR = Path(__file__).parent / "samples"

# The sample each resource borrows when its topic has no sample of its own.
_RESOURCE_SAMPLES = {
    "conversation": "conversation.admin.open.assigned.json",
    "contact": "contact.user.created.json",
    "company": "company.created.docs-example.json",
    "user": "user.created.docs-signed-example.json",
    "event": "event.created.json",
    "data_connector": "data_connector.execution.completed.docs-example.json",
}
# Resources whose ids Intercom writes as long decimal strings (the others are 24 hex digits).
_NUMERIC_ID_RESOURCES = frozenset({"conversation", "ticket", "conversation_part"})
_TIME_KEYS = ("created_at", "updated_at")


@cache
def topics() -> tuple[str, ...]:
    """Every webhook topic Intercom documents (`samples/topics.txt`)."""
    lines = (SAMPLES_DIR / "topics.txt").read_text().splitlines()
    return tuple(line.split("\t", 1)[0] for line in lines if line and not line.startswith("#"))


@cache
def _samples() -> dict[str, dict[str, Any]]:
    """Each sample file's notification, by topic and by file name."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(SAMPLES_DIR.glob("*.json")):
        notification = orjson.loads(path.read_bytes())
        found[path.name] = notification
        found.setdefault(notification["topic"], notification)
    return found


def _resource(topic: str) -> str:
    return topic.split(".", 1)[0]


def _fresh_id(resource: str) -> str:
    if resource in _NUMERIC_ID_RESOURCES:
        return str(secrets.randbelow(9 * 10**14) + 10**14)
    return secrets.token_hex(12)


def _iso(now: float) -> str:
    millis = int(now * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{millis:03d}+00:00"


def _item(topic: str, now: float) -> dict[str, Any]:
    resource = _resource(topic)
    samples = _samples()
    sample = samples.get(topic) or samples.get(_RESOURCE_SAMPLES.get(resource, ""))
    if topic == "ping":
        return copy.deepcopy(sample["data"]["item"]) if sample else {"type": "ping"}
    if topic.endswith(".deleted") or sample is None:
        item: dict[str, Any] = {"type": resource, "id": _fresh_id(resource)}
        if not topic.endswith(".deleted"):
            item["created_at"] = int(now)
        return item
    item = copy.deepcopy(sample["data"]["item"])
    item["id"] = _fresh_id(resource)
    for key in _TIME_KEYS:
        if isinstance(item.get(key), int):
            item[key] = int(now)
        elif isinstance(item.get(key), str):
            item[key] = _iso(now)
    if resource == "contact" and "role" in item:
        item["role"] = "lead" if ".lead." in topic or topic == "visitor.signed_up" else "user"
    return item


def build_notification(
    topic: str,
    *,
    app_id: str = "sandbox1",
    now: float | None = None,
    item: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A fresh notification for `topic`, as Intercom delivers it on the first attempt.

    `item` replaces the generated `data.item`. Raises `UnknownTopic` for a topic Intercom
    does not publish.
    """
    if topic not in topics():
        raise UnknownTopic(f"{topic!r} is not an Intercom webhook topic")
    sent_at = time.time() if now is None else now
    return {
        "type": "notification_event",
        "app_id": app_id,
        "data": {
            "type": "notification_event_data",
            "item": item if item is not None else _item(topic, sent_at),
        },
        "links": {},
        "id": None if topic == "ping" else f"notif_{uuid.uuid4()}",
        "topic": topic,
        "delivery_status": None if topic == "ping" else "pending",
        "delivery_attempts": 1,
        "delivered_at": 0,
        "first_sent_at": int(sent_at),
        "created_at": int(sent_at),
        "self": None,
    }


def redelivery(notification: dict[str, Any]) -> dict[str, Any]:
    """The same notification as Intercom re-sends it: same id, `delivery_attempts` + 1."""
    attempts = notification.get("delivery_attempts")
    return {**notification, "delivery_attempts": (attempts if isinstance(attempts, int) else 0) + 1}


def encode(notification: dict[str, Any]) -> bytes:
    """The body bytes of a notification (compact JSON; the signature covers these bytes)."""
    return orjson.dumps(notification)
