"""POST /events: bearer-protected, validated all-or-nothing, queued on the data-events topic."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from hookstream.core.settings import Settings
from tests.support.ingest import ingest_client, ingest_settings
from tests.support.kafka import read_topic, unique_name

pytestmark = pytest.mark.integration
TOKEN = "events-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _event(user: str = "u-1", name: str = "updated-plan", **extra: object) -> dict[str, object]:
    return {"event_name": name, "created_at": 1_750_000_000, "user_id": user, **extra}


def _settings(bootstrap: str, tmp_path: Path) -> Settings:
    return ingest_settings(
        bootstrap,
        tmp_path,
        hookstream_api_token=TOKEN,
        hookstream_data_events_topic=unique_name("it.events"),
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
    assert response.json() == {"status": "accepted", "events": 2}
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
