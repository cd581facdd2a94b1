from __future__ import annotations

from hookstream.core.contract import decode_headers
from hookstream.core.notification import Notification
from hookstream.streams.records import RawRecord, dead_letter, routed_record


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
    }


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
