"""The sink end to end: data events through a real broker into the sandbox, in-process."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from hookstream.core.contract import decode_headers
from hookstream.sinks.app import Sink
from tests.sinks.support import (
    create_sink_topics,
    event,
    eventually,
    produce,
    sandbox,
    sink_settings,
    web,
)
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration

INVALID: list[object] = [
    {"event_name": "x", "created_at": "yesterday", "user_id": "bad-1"},
    {"event_name": "x", "created_at": 1, "user_id": "bad-2", "email": "b@example.com"},
    {"event_name": "x", "created_at": 1, "user_id": "bad-3", "metadata": {"k": {"nested": 1}}},
    {
        "event_name": "x",
        "created_at": 1,
        "user_id": "bad-4",
        "metadata": {f"k{i}": i for i in range(11)},
    },
    b"not json at all",
]


async def test_5000_events_arrive_as_sent_in_order_per_contact_and_invalid_ones_are_dead_lettered(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    users = [f"user-{i}" for i in range(250)]
    valid: list[dict[str, Any]] = []
    for n in range(5000):
        extra = (
            {
                "metadata": {
                    "plan": "pro",
                    "seats": n % 9,
                    "price": {"amount": 100 + n, "currency": "eur"},
                }
            }
            if n % 3 == 0
            else {}
        )
        valid.append(event(users[n % len(users)], n, **extra))
    records: list[tuple[bytes, object]] = [(e["user_id"].encode(), e) for e in valid]
    for i, bad in enumerate(INVALID):  # spread through the stream
        records.insert(1000 * i + 7, (f"bad-{i}".encode(), bad))

    async with sandbox(tmp_path, window_limit=None) as control:
        settings = sink_settings(kafka_bootstrap, tmp_path, control.base_url)
        await create_sink_topics(settings)
        await produce(kafka_bootstrap, settings.topics.data_events, records)
        sink = Sink(settings)
        async with sink.running():

            async def all_accepted() -> bool:
                return (await control.stats())["accepted"] >= len(valid)

            await eventually(all_accepted, within=120, what="5,000 accepted events")
            async with web(sink.web_port) as client:
                ready = await client.get("/readyz")
                metrics = (await client.get("/metrics")).text
        accepted = await control.accepted()
        stats = await control.stats()

    assert ready.status_code == 200, ready.text
    assert ready.json() == {"ready": True, "reason": None}
    assert stats["duplicates"] == 0
    assert stats["errors"] == 0
    sent = [entry["event"] for entry in accepted]
    assert len(sent) == len(valid)
    assert sorted(orjson.dumps(e, option=orjson.OPT_SORT_KEYS) for e in sent) == sorted(
        orjson.dumps(e, option=orjson.OPT_SORT_KEYS) for e in valid
    )
    by_user_sent: dict[str, list[int]] = defaultdict(list)
    by_user_produced: dict[str, list[int]] = defaultdict(list)
    for e in sent:
        by_user_sent[e["user_id"]].append(e["created_at"])
    for e in valid:
        by_user_produced[e["user_id"]].append(e["created_at"])
    assert by_user_sent == by_user_produced  # each contact's events in the topic's order
    assert not any(entry["event"]["user_id"].startswith("bad-") for entry in accepted)

    letters = await read_topic(
        kafka_bootstrap, settings.topics.data_events_dlq, expect=len(INVALID)
    )
    assert len(letters) == len(INVALID)
    reasons = [decode_headers(letter.headers) for letter in letters]
    assert {h["hookstream-dlq-reason"] for h in reasons} == {"invalid_event"}
    assert {h["hookstream-dlq-source-topic"] for h in reasons} == {settings.topics.data_events}
    fields = sorted(orjson.loads(h["hookstream-dlq-detail"])[0]["field"] for h in reasons)
    assert fields == ["", "created_at", "email", "metadata", "metadata.k"]
    assert {letter.value for letter in letters} == {
        bad if isinstance(bad, bytes) else orjson.dumps(bad) for bad in INVALID
    }
    assert "hookstream_sink_accepted_total 5000.0" in metrics
    # each accepted event timed from its record's Kafka timestamp to the 202
    assert "hookstream_sink_arrival_to_accepted_seconds_count 5000.0" in metrics
    assert 'hookstream_sink_dead_lettered_total{reason="invalid_event"} 5.0' in metrics
    assert "hookstream_sink_input_lag_records" in metrics
