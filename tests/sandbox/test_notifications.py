"""Realistic notifications for every Intercom topic, and Intercom's signature over them."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest

from hookstream.ingest.signature import verify_signature
from hookstream.sandbox import (
    UnknownTopic,
    build_notification,
    encode,
    redelivery,
    sign,
    topics,
    webhook_headers,
)

ENVELOPE_KEYS = {
    "type",
    "app_id",
    "data",
    "links",
    "id",
    "topic",
    "delivery_status",
    "delivery_attempts",
    "delivered_at",
    "first_sent_at",
    "created_at",
    "self",
}


def test_every_documented_topic_is_known() -> None:
    names = topics()

    assert len(names) == 122
    assert len(set(names)) == len(names)
    assert {"ping", "conversation.user.created", "contact.user.created", "ticket.created"} <= set(
        names
    )


@pytest.mark.parametrize("topic", topics())
def test_every_topic_gets_a_complete_fresh_envelope(topic: str) -> None:
    first = build_notification(topic, app_id="abc123", now=1_750_000_000.5)
    second = build_notification(topic, app_id="abc123", now=1_750_000_000.5)

    assert set(first) == ENVELOPE_KEYS
    assert first["type"] == "notification_event"
    assert (first["topic"], first["app_id"]) == (topic, "abc123")
    assert first["delivery_attempts"] == 1
    assert first["created_at"] == first["first_sent_at"] == 1_750_000_000
    assert first["data"]["type"] == "notification_event_data"
    item = first["data"]["item"]
    assert isinstance(item["type"], str)
    if topic == "ping":
        assert first["id"] is None  # as Intercom sends it
        return
    assert first["id"].startswith("notif_")
    assert first["id"] != second["id"]
    assert item["id"] != second["data"]["item"]["id"]
    assert orjson.loads(encode(first)) == first


def test_a_topic_with_a_captured_sample_keeps_its_shape_with_fresh_values() -> None:
    notification = build_notification("conversation.admin.open.assigned", now=1_750_000_000)

    item = notification["data"]["item"]
    assert item["type"] == "conversation"
    assert item["id"] != "215472621202693"
    assert item["id"].isdigit()
    assert item["created_at"] == item["updated_at"] == 1_750_000_000
    assert item["contacts"]["type"] == "contact.list"  # the capture's body is kept


def test_related_topics_borrow_their_resources_sample() -> None:
    lead = build_notification("contact.lead.created", now=1_750_000_000)["data"]["item"]
    closed = build_notification("conversation.admin.closed")["data"]["item"]

    assert (lead["type"], lead["role"]) == ("contact", "lead")
    assert lead["created_at"] == "2025-06-15T15:06:40.000+00:00"  # ISO, as contacts carry it
    assert closed["type"] == "conversation"
    assert "source" in closed


def test_deleted_topics_carry_only_identifying_fields() -> None:
    item = build_notification("contact.deleted")["data"]["item"]

    assert set(item) == {"type", "id"}
    assert item["type"] == "contact"


def test_an_unknown_topic_is_refused() -> None:
    with pytest.raises(UnknownTopic):
        build_notification("conversation.exploded")


def test_a_redelivery_keeps_the_id_and_counts_the_attempt() -> None:
    first = build_notification("ticket.created")

    again = redelivery(redelivery(first))

    assert again["id"] == first["id"]
    assert again["delivery_attempts"] == 3
    assert again["data"] == first["data"]


def test_signature_is_hmac_sha1_of_the_raw_body_with_the_client_secret() -> None:
    body = encode(build_notification("user.created"))

    expected = "sha1=" + hmac.new(b"s3cret", body, hashlib.sha1).hexdigest()
    assert sign(body, "s3cret") == expected
    assert sign(body, b"s3cret") == expected
    assert sign(body + b" ", "s3cret") != expected  # whitespace is signed too


def test_signed_deliveries_carry_intercoms_headers_and_pass_the_ingest_verifier() -> None:
    body = encode(build_notification("conversation.user.replied"))

    headers = webhook_headers(body, "s3cret")

    assert headers["Content-Type"] == headers["Accept"] == "application/json"
    assert headers["User-Agent"] == "intercom-parrot-service-client/1.0"
    verify_signature(body, headers["X-Hub-Signature"], [b"s3cret"])
