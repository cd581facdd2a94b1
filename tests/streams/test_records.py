from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event

from hookstream.core.contract import decode_headers
from hookstream.core.notification import Notification, parse_notification
from hookstream.streams.records import OutRecord, RawRecord, dead_letter, routed_record
from tests.streams.support import PAYLOADS


def raw(**overrides: object) -> RawRecord:
    fields: dict[str, object] = {
        "topic": "intercom.notifications",
        "partition": 2,
        "offset": 41,
        "key": b"notif_1",
        "value": b'{"id": "notif_1"}',
        "headers": [
            ("intercom-topic", b"conversation.user.created"),
            ("hookstream-received-at", b"1700000000123"),
        ],
        "timestamp_ms": 1700000000999,
    }
    fields.update(overrides)
    return RawRecord(**fields)  # type: ignore[arg-type]


def test_routed_record_is_keyed_by_item_id_with_the_original_value_and_contract_headers() -> None:
    record = routed_record(
        raw(), Notification("notif_1", "conversation.user.created", "conv-9"), "out"
    )
    assert (record.topic, record.key, record.value) == ("out", b"conv-9", b'{"id": "notif_1"}')
    assert decode_headers(record.headers) == {
        "intercom-notification-id": "notif_1",
        "intercom-topic": "conversation.user.created",
        "hookstream-received-at": "1700000000123",
        "ce_specversion": "1.0",
        "ce_id": "notif_1",
        "ce_source": "intercom://hookstream",  # no app_id in the notification
        "ce_type": "com.intercom.conversation.user.created",
        "content-type": "application/json",  # and no ce_time: no created_at either
    }


def _as_cloudevent(record: OutRecord) -> BaseCloudEvent:
    """What a consumer with the CloudEvents SDK reads from a routed record."""
    headers = dict(record.headers)
    assert len(headers) == len(record.headers)  # no header twice
    assert record.value is not None
    return from_binary_event(KafkaMessage(headers=headers, key=record.key, value=record.value))


@pytest.mark.parametrize("path", sorted(PAYLOADS.glob("*.json")), ids=lambda p: p.stem)
def test_a_routed_record_reads_as_a_cloudevent_with_the_sdks_kafka_binding(path: Path) -> None:
    body = path.read_bytes()
    envelope = orjson.loads(body)
    notification = parse_notification(body, require_envelope_type=False)
    record = routed_record(raw(key=b"ping-abc", value=body), notification, "out")
    event = _as_cloudevent(record)
    assert event.get_specversion() == "1.0"
    assert event.get_id() == (envelope["id"] or "ping-abc")
    assert event.get_source() == f"intercom://app/{envelope['app_id']}"
    assert event.get_type() == f"com.intercom.{envelope['topic']}"
    assert event.get_time() == datetime.fromtimestamp(envelope["created_at"], UTC)
    assert event.get_datacontenttype() == "application/json"
    assert event.get_data() == envelope


def test_routed_record_without_item_id_is_keyed_by_notification_id() -> None:
    record = routed_record(raw(), Notification("notif_1", "company.created", None), "out")
    assert record.key == b"notif_1"


def test_routed_ping_keeps_the_ingest_key_and_has_no_notification_id_header() -> None:
    record = routed_record(raw(key=b"ping-abc", headers=[]), Notification(None, "ping", None), "p")
    assert record.key == b"ping-abc"
    headers = decode_headers(record.headers)
    assert "intercom-notification-id" not in headers
    assert (
        headers["hookstream-received-at"] == "1700000000999"
    )  # the record time, lacking the header
    assert headers["ce_id"] == "ping-abc"


def test_a_ping_keyed_by_bytes_that_are_no_text_gets_them_as_text_for_its_cloudevent_id() -> None:
    record = routed_record(raw(key=b"ping-\xff"), Notification(None, "ping", None), "p")
    assert record.key == b"ping-\xff"
    assert dict(record.headers)["ce_id"] == "ping-\ufffd".encode()


def test_a_keyless_ping_gets_its_raw_position_as_cloudevent_id() -> None:
    record = routed_record(raw(key=None), Notification(None, "ping", None), "p")
    assert decode_headers(record.headers)["ce_id"] == "intercom.notifications/2/41"


def test_an_app_id_that_is_no_uri_segment_is_percent_encoded_in_the_source() -> None:
    notification = Notification("notif_1", "company.created", app_id="a b/ç")
    record = routed_record(raw(), notification, "out")
    assert _as_cloudevent(record).get_source() == "intercom://app/a%20b%2F%C3%A7"


def test_dead_letter_keeps_key_value_and_headers_and_says_why_and_whence() -> None:
    source = raw(headers=[("intercom-topic", b"x"), ("hookstream-dlq-reason", b"stale")])
    letter = dead_letter(source, "dlq", "not-json")
    assert (letter.topic, letter.key, letter.value) == ("dlq", source.key, source.value)
    assert decode_headers(letter.headers) == {
        "intercom-topic": "x",
        "hookstream-dlq-reason": "not-json",
        "hookstream-dlq-source-topic": "intercom.notifications",
        "hookstream-dlq-source-partition": "2",
        "hookstream-dlq-source-offset": "41",
    }
    assert [name for name, _ in letter.headers].count("hookstream-dlq-reason") == 1


def test_received_at_is_the_last_received_at_header() -> None:
    headers = [("hookstream-received-at", b"1700000000001"), ("x", b"y")]
    headers.append(("hookstream-received-at", b"1700000000002"))
    assert raw(headers=headers).received_at_ms == 1700000000002


def test_received_at_falls_back_to_the_record_time_without_a_numeric_header() -> None:
    assert raw(headers=[]).received_at_ms == 1700000000999
    assert raw(headers=[("hookstream-received-at", b"soon")]).received_at_ms == 1700000000999
    assert raw(headers=[("hookstream-received-at", "²".encode())]).received_at_ms == 1700000000999
