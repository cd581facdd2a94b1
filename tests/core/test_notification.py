"""The one envelope parser (`hookstream.core.notification`), as the worker and the ingest
use it."""

from __future__ import annotations

import orjson
import pytest

from hookstream.core.errors import MissingId, NotANotification, NotificationInvalid, NotJson
from hookstream.core.notification import parse_notification
from tests.streams.support import PAYLOADS, payload


@pytest.mark.parametrize("path", sorted(PAYLOADS.glob("*.json")), ids=lambda p: p.stem)
def test_real_intercom_payloads_parse(path: object) -> None:
    body = payload(path.stem)  # type: ignore[attr-defined]
    parsed = parse_notification(orjson.dumps(body), require_envelope_type=True)
    assert parsed.topic == body["topic"]
    assert parsed.id == body["id"]


def test_item_id_comes_from_data_item_id_and_numbers_become_strings() -> None:
    body = payload("conversation.user.created")
    assert (
        parse_notification(orjson.dumps(body), require_envelope_type=True).item_id == "21321941764"
    )
    body["data"]["item"]["id"] = 42
    assert parse_notification(orjson.dumps(body), require_envelope_type=True).item_id == "42"
    del body["data"]["item"]["id"]
    assert parse_notification(orjson.dumps(body), require_envelope_type=True).item_id is None


def test_ping_has_no_id_and_is_accepted() -> None:
    parsed = parse_notification((PAYLOADS / "ping.json").read_bytes(), require_envelope_type=True)
    assert (parsed.id, parsed.topic, parsed.item_id) == (None, "ping", None)


@pytest.mark.parametrize(
    ("value", "error", "reason"),
    [
        (None, NotJson, "not-json"),
        (b"", NotJson, "not-json"),
        (b"{not json", NotJson, "not-json"),
        (b"[1, 2]", NotANotification, "not-a-notification"),
        (b'{"id": "notif_1"}', NotANotification, "not-a-notification"),
        (b'{"id": "notif_1", "topic": 7}', NotANotification, "not-a-notification"),
        (b'{"topic": "conversation.user.created"}', MissingId, "missing-id"),
        (b'{"id": null, "topic": "conversation.user.created"}', MissingId, "missing-id"),
        (b'{"id": 12, "topic": "conversation.user.created"}', MissingId, "missing-id"),
    ],
)
def test_records_that_are_no_notification_are_rejected_with_a_reason(
    value: bytes | None, error: type[NotificationInvalid], reason: str
) -> None:
    with pytest.raises(error) as caught:
        parse_notification(value, require_envelope_type=False)
    assert caught.value.reason == reason


def test_the_ingest_requires_the_envelope_type_and_the_worker_does_not() -> None:
    body = payload("conversation.user.created")
    del body["type"]
    lenient = parse_notification(orjson.dumps(body), require_envelope_type=False)
    assert lenient.id == body["id"]
    with pytest.raises(NotANotification) as caught:
        parse_notification(orjson.dumps(body), require_envelope_type=True)
    assert caught.value.field == "type"


def test_the_record_key_is_the_id_and_a_ping_gets_a_fresh_one() -> None:
    body = payload("conversation.user.created")
    assert parse_notification(orjson.dumps(body), require_envelope_type=True).key == (
        body["id"].encode()
    )
    ping = (PAYLOADS / "ping.json").read_bytes()
    first = parse_notification(ping, require_envelope_type=True).key
    second = parse_notification(ping, require_envelope_type=True).key
    assert first.startswith(b"ping-")
    assert first != second
