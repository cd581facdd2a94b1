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


@pytest.mark.parametrize(
    ("app_id", "created_at", "expected"),
    [
        ("i6wc9ipe", 1553288147, ("i6wc9ipe", 1553288147)),
        ("", 0, (None, 0)),
        (7, True, (None, None)),
        (None, 1553288147.5, (None, None)),
        ("a", -1, ("a", None)),
        ("a", 253_402_300_800, ("a", None)),  # year 10000: no RFC 3339 time
    ],
)
def test_app_id_and_created_at_are_kept_only_when_usable(
    app_id: object, created_at: object, expected: tuple[str | None, int | None]
) -> None:
    body = payload("conversation.user.created")
    body.update(app_id=app_id, created_at=created_at)
    parsed = parse_notification(orjson.dumps(body), require_envelope_type=True)
    assert (parsed.app_id, parsed.created_at) == expected


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
