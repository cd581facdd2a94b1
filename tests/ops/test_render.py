"""How tail and replay show a record: readable text, or one JSON object per line."""

from __future__ import annotations

import json

from aiokafka import ConsumerRecord

from hookstream.ops.render import classify_value, format_record, json_line

RECEIVED_AT = 1714564800123  # 2024-05-01T12:00:00.123Z


def _record(value: bytes | None, key: bytes | None = b"conv-1") -> ConsumerRecord[bytes, bytes]:
    headers = [
        ("intercom-topic", b"conversation.user.created"),
        ("hookstream-received-at", b"1714564800123"),
    ]
    return ConsumerRecord(
        topic="intercom.conversation.user.created",
        partition=2,
        offset=17,
        timestamp=RECEIVED_AT,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value or b""),
        headers=headers,
    )


def test_text_shows_position_key_decoded_headers_and_pretty_json() -> None:
    text = format_record(_record(b'{"type":"notification_event","id":"n1"}'), max_chars=2000)
    assert "intercom.conversation.user.created [2] @17  2024-05-01T12:00:00.123Z" in text
    assert "key:     conv-1" in text
    assert "intercom-topic          conversation.user.created" in text
    assert "hookstream-received-at  1714564800123 (2024-05-01T12:00:00.123Z)" in text
    assert '  "type": "notification_event",\n  "id": "n1"' in text


def test_long_values_are_cut_unless_full() -> None:
    value = json.dumps({"body": "x" * 5000}).encode()
    cut = format_record(_record(value), max_chars=100)
    assert "more characters; --full shows all" in cut
    assert len(cut) < 600
    full = format_record(_record(value), max_chars=None)
    assert "x" * 5000 in full


def test_values_that_are_not_json_or_not_utf8_are_shown_as_such() -> None:
    assert classify_value(b"plain words").kind == "text"
    assert classify_value(b"\xff\xfe").kind == "base64"
    assert classify_value(None).kind == "null"
    assert "value:   (null)" in format_record(_record(None, key=None), max_chars=10)
    assert "key:     (none)" in format_record(_record(None, key=None), max_chars=10)


def test_json_line_embeds_a_json_value_and_the_headers() -> None:
    line = json_line(_record(b'{"id":"n1"}'))
    assert "\n" not in line
    data = json.loads(line)
    assert data["value"] == {"id": "n1"}
    assert data["value_format"] == "json"
    assert data["key"] == "conv-1"
    assert data["headers"]["intercom-topic"] == "conversation.user.created"
    assert (data["partition"], data["offset"], data["timestamp"]) == (2, 17, RECEIVED_AT)
