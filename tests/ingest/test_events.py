"""POST /events: bearer-protected, validated all-or-nothing, queued on the data-events topic."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import orjson
import pytest
from structlog.testing import capture_logs

from hookstream.core.dataevents import (
    MAX_EVENT_BYTES,
    MAX_LINK_CHARS,
    MAX_METADATA_KEYS,
    MAX_TEXT_CHARS,
    validate_event,
)
from hookstream.core.settings import Settings
from hookstream.devtools import localkafka
from hookstream.ingest.spool import read_spool_file
from tests.support.ingest import ingest_client, ingest_settings
from tests.support.kafka import create_topics, read_topic, unique_name

pytestmark = pytest.mark.integration
TOKEN = "events-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588  # the broker's message.max.bytes default


def _event(user: str = "u-1", name: str = "updated-plan", **extra: object) -> dict[str, object]:
    return {"event_name": name, "created_at": 1_750_000_000, "user_id": user, **extra}


def _settings(bootstrap: str, tmp_path: Path, **overrides: object) -> Settings:
    return ingest_settings(
        bootstrap,
        tmp_path,
        hookstream_api_token=TOKEN,
        hookstream_data_events_topic=unique_name("it.events"),
        **overrides,
    )


async def test_a_list_of_valid_events_is_queued_keyed_by_identifier(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, tmp_path)
    events = [
        _event("u-1", metadata={"plan": "pro", "price": {"amount": 3400, "currency": "eur"}}),
        _event("u-2", name="invited-friend"),
    ]
    async with ingest_client(settings) as client:
        response = await client.post("/events", json=events, headers=AUTH)
        single = await client.post("/events", json=_event("u-3"), headers=AUTH)
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "events": 2, "durable_in": "kafka"}
    assert single.status_code == 202
    records = await read_topic(kafka_bootstrap, settings.topics.data_events, expect=3)
    assert [(r.key, orjson.loads(r.value)) for r in records] == [
        (b"u-1", events[0]),
        (b"u-2", events[1]),
        (b"u-3", _event("u-3")),
    ]


async def test_one_invalid_event_refuses_the_whole_list_with_errors_per_item(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, tmp_path)
    too_many_keys = {f"k{i}": i for i in range(11)}
    events = [
        _event("u-1"),
        {"event_name": "x", "created_at": "yesterday", "user_id": "u", "email": "a@b.c"},
        _event("u-3", metadata=too_many_keys),
    ]
    async with ingest_client(settings) as client:
        response = await client.post("/events", json=events, headers=AUTH)
        valid = await client.post("/events", json=[_event("u-9")], headers=AUTH)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_data_events"
    assert [item["index"] for item in error["items"]] == [1, 2]
    fields_of_second = {e["field"] for e in error["items"][0]["errors"]}
    assert "created_at" in fields_of_second
    assert any("metadata" in e["field"] for e in error["items"][1]["errors"])
    assert valid.status_code == 202
    records = await read_topic(kafka_bootstrap, settings.topics.data_events, expect=1)
    assert [r.key for r in records] == [b"u-9"], "nothing of the refused list was queued"


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 401), ({"Authorization": TOKEN}, 401)],
)
async def test_requests_without_the_bearer_token_are_refused(
    kafka_bootstrap: str, tmp_path: Path, headers: dict[str, str], status: int
) -> None:
    settings = _settings(kafka_bootstrap, tmp_path)
    async with ingest_client(settings) as client:
        response = await client.post("/events", json=_event(), headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["code"] == "unauthorized"


async def test_events_are_refused_while_no_token_is_configured(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingest_settings(kafka_bootstrap, tmp_path)
    async with ingest_client(settings) as client:
        response = await client.post("/events", json=_event(), headers=AUTH)
    assert response.status_code == 401
    assert "HOOKSTREAM_API_TOKEN" in response.json()["error"]["message"]


async def test_a_body_that_is_not_json_is_a_400(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = _settings(kafka_bootstrap, tmp_path)
    async with ingest_client(settings) as client:
        response = await client.post("/events", content=b"[{", headers=AUTH)
    assert response.status_code == 400
    assert "not JSON" in response.json()["error"]["message"]


def _padded(user: str, chars: int) -> dict[str, object]:
    """An event whose metadata holds about `chars` characters (within the per-value bounds)."""
    metadata = {f"note{i}": "x" * min(255, chars - 255 * i) for i in range(chars // 255 + 1)}
    return _event(user, metadata={k: v for k, v in metadata.items() if v})


async def test_a_list_is_committed_in_one_transaction_and_says_kafka(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, tmp_path)
    events = [_event(f"u-{i}") for i in range(5)]
    async with ingest_client(settings) as client:
        response = await client.post("/events", json=events, headers=AUTH)
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "events": 5, "durable_in": "kafka"}
    committed = await read_topic(kafka_bootstrap, settings.topics.data_events, expect=5)
    assert sorted(r.key for r in committed) == sorted(f"u-{i}".encode() for i in range(5))


async def test_a_failure_part_way_stores_none_of_the_events_and_answers_an_error(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, tmp_path)
    topic = settings.topics.data_events
    # The topic takes small records only: the third event of the list is refused by Kafka
    # after the first two were written into the transaction.
    await create_topics(kafka_bootstrap, [topic], configs={"max.message.bytes": "1200"})
    events = [_event("u-1"), _event("u-2"), _padded("u-3", 2000)]
    async with ingest_client(settings) as client:
        refused = await client.post("/events", json=events, headers=AUTH)
        after = await client.post("/events", json=[_event("u-4"), _event("u-5")], headers=AUTH)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "records_refused"
    assert "none was stored" in refused.json()["error"]["message"]
    assert after.status_code == 202, after.text
    assert after.json()["durable_in"] == "kafka"
    committed = await read_topic(kafka_bootstrap, topic, expect=2)
    assert sorted(r.key for r in committed) == [b"u-4", b"u-5"], "none of the refused list"


async def test_with_kafka_away_a_list_is_spooled_whole_or_not_at_all(tmp_path: Path) -> None:
    away = f"127.0.0.1:{localkafka.free_port()}"
    event_bytes = len(orjson.dumps(_padded("u-0", 900)))
    settings = _settings(away, tmp_path, hookstream_spool_max_bytes=event_bytes * 9 // 2)
    async with ingest_client(settings) as client:
        spooled = await client.post(
            "/events", json=[_padded(f"u-{i}", 900) for i in range(3)], headers=AUTH
        )
        too_many = await client.post(
            "/events", json=[_padded(f"v-{i}", 900) for i in range(3)], headers=AUTH
        )
    assert spooled.status_code == 202, spooled.text
    assert spooled.json()["durable_in"] == "spool"
    assert too_many.status_code == 503
    assert too_many.json()["error"]["code"] == "spool_full"
    stored = [r.record.key for r in read_spool_file(tmp_path / "spool.0.sqlite3")]
    assert stored == [b"u-0", b"u-1", b"u-2"], "only the whole first list"


async def test_more_events_than_the_setting_allows_are_refused_whole(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, tmp_path, hookstream_events_max_per_request=3)
    async with ingest_client(settings) as client:
        too_many = await client.post(
            "/events", json=[_event(f"u-{i}") for i in range(4)], headers=AUTH
        )
        at_limit = await client.post(
            "/events", json=[_event(f"w-{i}") for i in range(3)], headers=AUTH
        )
    assert too_many.status_code == 422
    [error] = too_many.json()["error"]["errors"]
    assert "4 events; at most 3" in error["message"]
    assert at_limit.status_code == 202, at_limit.text
    records = await read_topic(kafka_bootstrap, settings.topics.data_events, expect=3)
    assert sorted(r.key for r in records) == [b"w-0", b"w-1", b"w-2"]


async def test_the_default_bound_is_a_thousand_events(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = _settings(kafka_bootstrap, tmp_path)
    async with ingest_client(settings) as client:
        response = await client.post(
            "/events", json=[_event(f"u-{i}") for i in range(1001)], headers=AUTH
        )
    assert response.status_code == 422
    assert "1001 events; at most 1000" in response.json()["error"]["errors"][0]["message"]


def _longest(user: str, extra: int = 0) -> dict[str, object]:
    """An event with every string at its bound (plus `extra` characters)."""
    text, link = 255 + extra, 2048 + extra
    url = "https://example.com/" + "p" * (link - len("https://example.com/"))
    return {
        "event_name": "n" * text,
        "created_at": 1_750_000_000,
        "user_id": user + "u" * (text - len(user)),
        "metadata": {
            "k" * text: "v" * text,
            "link": url,
            "rich": {"url": url, "value": "r" * text},
        },
    }


async def test_strings_past_their_bounds_are_refused_with_each_field_named(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, tmp_path)
    async with ingest_client(settings) as client:
        too_long = await client.post(
            "/events", json=[_longest("ok"), _longest("long", extra=1)], headers=AUTH
        )
        at_bounds = await client.post("/events", json=[_longest("ok")], headers=AUTH)
    assert too_long.status_code == 422
    [item] = too_long.json()["error"]["items"]
    assert item["index"] == 1
    assert {e["field"] for e in item["errors"]} == {
        "event_name",
        "user_id",
        f"metadata.{'k' * 256}",
        "metadata.link",
        "metadata.rich.url",
        "metadata.rich.value",
    }
    assert at_bounds.status_code == 202, at_bounds.text


def test_no_valid_event_is_too_large_for_a_topic_with_kafkas_default_limit() -> None:
    worst = "\x01"  # escaped as \u0001: six bytes in JSON
    url = "https://e.com/" + worst * (MAX_LINK_CHARS - len("https://e.com/"))
    metadata: dict[str, object] = {
        f"{i}" + worst * (MAX_TEXT_CHARS - 1): {"url": url, "value": worst * MAX_TEXT_CHARS}
        for i in range(MAX_METADATA_KEYS)
    }
    event = validate_event(
        {
            "event_name": worst * MAX_TEXT_CHARS,
            "created_at": 1_750_000_000,
            "email": "a@" + worst * (MAX_TEXT_CHARS - 2),
            "metadata": metadata,
        }
    )
    assert len(event.body()) <= MAX_EVENT_BYTES < KAFKA_DEFAULT_MAX_MESSAGE_BYTES


async def test_a_restart_reuses_its_transactional_id_and_a_second_process_has_its_own(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_bootstrap, tmp_path)

    async def post(client: httpx.AsyncClient, user: str) -> None:
        response = await client.post("/events", json=[_event(user)], headers=AUTH)
        assert response.json()["durable_in"] == "kafka", response.text

    with capture_logs() as logs:
        async with ingest_client(settings) as first:
            await post(first, "u-1")
            async with ingest_client(settings) as second:  # same volume: the next spool slot
                await post(second, "u-2")
        async with ingest_client(settings) as restarted:  # slot 0 again: fences the first
            await post(restarted, "u-3")
    ids = [e["transactional_id"] for e in logs if e["event"] == "events_producer_started"]
    host = socket.gethostname()
    assert ids == [f"hookstream-ingest-{host}-0", f"hookstream-ingest-{host}-1", ids[0]]
    records = await read_topic(kafka_bootstrap, settings.topics.data_events, expect=3)
    assert sorted(r.key for r in records) == [b"u-1", b"u-2", b"u-3"]
