"""The sink when Intercom fails: bursts of 5xx and timeouts are retried, a permanent failure
ends in the dead-letter topic, a refused token stops the sink."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from hookstream.core.contract import decode_headers
from hookstream.core.settings import Settings
from hookstream.sinks.app import Sink
from tests.sinks.support import (
    SandboxControl,
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


async def accepted_at_least(control: SandboxControl, count: int) -> bool:
    return int((await control.stats())["accepted"]) >= count


async def test_bursts_of_5xx_and_timeouts_are_retried_until_every_event_is_accepted(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    count = 120
    async with sandbox(
        tmp_path,
        window_limit=None,
        fail_next=25,
        error_status=503,
        timeout_rate=0.1,
        hang_seconds=3.0,
    ) as control:
        settings = sink_settings(
            kafka_bootstrap, tmp_path, control.base_url, hookstream_sink_request_timeout_seconds=0.5
        )
        await create_sink_topics(settings)
        await produce(
            kafka_bootstrap,
            settings.topics.data_events,
            [(f"u{n % 30}".encode(), event(f"u{n % 30}", n)) for n in range(count)],
        )
        sink = Sink(settings)
        async with sink.running():
            await eventually(
                lambda: accepted_at_least(control, count), within=90, what=f"{count} events"
            )
            registry = sink.metrics.registry
            retried_5xx = registry.get_sample_value(
                "hookstream_sink_retried_total", {"reason": "server_error"}
            )
            retried_net = registry.get_sample_value(
                "hookstream_sink_retried_total", {"reason": "network"}
            )
        stats = await control.stats()
        entries = await control.accepted()

    assert stats["injected_errors"] == 25
    assert stats["injected_timeouts"] >= 1
    assert retried_5xx is not None
    assert retried_5xx >= 25
    assert retried_net is not None
    assert retried_net >= stats["injected_timeouts"]
    assert stats["accepted"] == count
    assert stats["duplicates"] == 0
    by_user: dict[str, list[int]] = {}
    for entry in entries:
        by_user.setdefault(entry["event"]["user_id"], []).append(entry["event"]["created_at"])
    assert all(times == sorted(times) for times in by_user.values())  # order survived retries
    assert await read_topic(kafka_bootstrap, settings.topics.data_events_dlq) == []


async def test_a_refused_event_is_dead_lettered_at_once_and_a_failing_one_after_the_deadline(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with sandbox(tmp_path, window_limit=None, error_rate=1.0, error_status=404) as control:
        settings = sink_settings(
            kafka_bootstrap, tmp_path, control.base_url, hookstream_sink_retry_deadline_seconds=1.5
        )
        await create_sink_topics(settings)
        dlq = settings.topics.data_events_dlq
        async with Sink(settings).running():
            await produce(
                kafka_bootstrap, settings.topics.data_events, [(b"ghost", event("ghost", 1))]
            )
            refused = await read_topic(kafka_bootstrap, dlq, expect=1)
            calls_for_refused = (await control.stats())["calls"]
            await control.configure(error_status=500)
            await produce(kafka_bootstrap, settings.topics.data_events, [(b"ann", event("ann", 2))])
            letters = await read_topic(kafka_bootstrap, dlq, expect=2)
        stats = await control.stats()

    assert calls_for_refused == 1  # no retry of a 404
    assert len(letters) == 2
    first, second = (decode_headers(letter.headers) for letter in letters)
    assert refused[0].value == orjson.dumps(event("ghost", 1))
    assert first["hookstream-dlq-reason"] == "rejected"
    assert first["hookstream-dlq-intercom-status"] == "404"
    assert orjson.loads(first["hookstream-dlq-intercom-error"])["type"] == "error.list"
    assert second["hookstream-dlq-reason"] == "retries_exhausted"
    assert second["hookstream-dlq-intercom-status"] == "500"
    assert letters[1].key == b"ann"
    assert stats["calls"] - calls_for_refused >= 3  # retried before giving up
    assert stats["accepted"] == 0


async def test_a_refused_token_stops_the_sink_and_readyz_says_why_without_dead_letters(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with sandbox(tmp_path, window_limit=None, access_token="another-token") as control:
        settings = sink_settings(kafka_bootstrap, tmp_path, control.base_url)
        await create_sink_topics(settings)
        await produce(
            kafka_bootstrap,
            settings.topics.data_events,
            [(f"u{n}".encode(), event(f"u{n}", n)) for n in range(50)],
        )
        sink = Sink(settings)
        async with sink.running(), web(sink.web_port) as client:

            async def refused() -> bool:
                try:
                    return (await client.get("/readyz")).status_code == 503
                except httpx.TransportError:  # the web server is still starting
                    return False

            await eventually(refused, within=30, what="/readyz to answer 503")
            readyz = (await client.get("/readyz")).json()
            calls = (await control.stats())["calls"]
            await asyncio.sleep(1.0)
            calls_later = (await control.stats())["calls"]
            healthz = await client.get("/healthz")
            metrics = (await client.get("/metrics")).text
        committed = await committed_offsets(kafka_bootstrap, settings.sink.id, settings)

    assert readyz["ready"] is False
    assert "401" in readyz["reason"]
    assert "INTERCOM_ACCESS_TOKEN" in readyz["reason"]
    assert healthz.status_code == 200  # alive: a restart would not fix a token
    assert calls <= settings.sink.concurrency  # the calls already on their way, no more
    assert calls_later == calls
    assert "hookstream_sink_ready 0.0" in metrics
    assert await read_topic(kafka_bootstrap, settings.topics.data_events_dlq) == []
    assert sum(committed.values()) == 0  # the backlog stays for a fixed token


async def committed_offsets(bootstrap: str, group: str, settings: Settings) -> dict[int, int]:
    """The group's committed offsets of the data-events topic (0 where none)."""
    topic = settings.topics.data_events
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        offsets = {}
        for partition in range(settings.topics.partitions):
            offsets[partition] = await consumer.committed(TopicPartition(topic, partition)) or 0
        return offsets
    finally:
        await consumer.stop()
