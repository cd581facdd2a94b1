"""`hookstream topics` and `ensure_topics` against the real broker."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from hookstream.core.settings import load_settings
from hookstream.core.topics import ensure_topics
from tests.ops.support import OpsEnv, Out, produce
from tests.support.kafka import create_topics

pytestmark = pytest.mark.integration


async def _partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(None)
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described if t["topic"] in names}


async def test_create_is_idempotent_and_gives_the_configured_partitions(
    kafka_bootstrap: str,
) -> None:
    env = OpsEnv(kafka_bootstrap, partitions=3)
    names = [env.raw_topic, env.dlq_topic, env.data_events_topic, env.data_events_dlq_topic]

    first = await env.cli("topics", "create", "--json")
    second = await env.cli("topics", "create", "--json")

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    actions = [
        {t["name"]: t["action"] for t in json.loads(r.stdout)["topics"]} for r in (first, second)
    ]
    assert actions[0] == dict.fromkeys(names, "created")
    assert actions[1] == dict.fromkeys(names, "exists")
    assert await _partition_counts(kafka_bootstrap, names) == dict.fromkeys(names, 3)


async def test_describe_shows_partitions_configs_offsets_and_routed_topics(
    kafka_bootstrap: str,
) -> None:
    env = OpsEnv(kafka_bootstrap, partitions=3)
    assert (await env.cli("topics", "create")).exit_code == 0
    routed = f"{env.route_prefix}conversation.user.created"
    await create_topics(kafka_bootstrap, [routed], partitions=2)
    await produce(kafka_bootstrap, env.raw_topic, [Out(b"k", b"v", partition=1)] * 4)

    text = await env.cli("topics")
    as_json = await env.cli("topics", "describe", "--json")

    assert text.exit_code == 0, text.output
    assert f"{env.raw_topic}  (raw)  3 partitions, replication 1" in text.stdout
    assert "retention.ms=604800000*" in text.stdout
    assert "retention.ms=2592000000*" in text.stdout  # the dead-letter topics keep 30 days
    assert "max.message.bytes=2097152*" in text.stdout
    assert "0:0..0  1:0..4  2:0..0  (span 4)" in text.stdout
    assert f"{routed}  (routed)  2 partitions, replication 1" in text.stdout
    topics = {t["name"]: t for t in json.loads(as_json.stdout)["topics"]}
    assert topics[env.raw_topic]["partitions"] == 3
    assert topics[env.raw_topic]["configs"]["cleanup.policy"] == "delete"
    assert "retention.ms" in topics[env.raw_topic]["overrides"]
    assert [o["end"] for o in topics[env.raw_topic]["offsets"]] == [0, 4, 0]
    assert topics[routed]["role"] == "routed"
    assert topics[routed]["partitions"] == 2


async def test_describe_names_missing_topics_and_a_partition_mismatch(kafka_bootstrap: str) -> None:
    env = OpsEnv(kafka_bootstrap, partitions=3)
    await create_topics(kafka_bootstrap, [env.raw_topic], partitions=1)

    result = await env.cli("topics")

    assert result.exit_code == 0, result.output
    assert (
        f"{env.raw_topic}  (raw)  1 partitions, replication 1  (settings: 3 partitions"
        in result.stdout
    )
    assert f"{env.dlq_topic}  (dead-letter)  missing" in result.stdout


async def test_concurrent_ensure_topics_create_each_topic_once(kafka_bootstrap: str) -> None:
    env = OpsEnv(kafka_bootstrap, partitions=2)
    settings = load_settings(**{k.lower(): v for k, v in env.environ().items()})

    runs = await asyncio.gather(ensure_topics(settings), ensure_topics(settings))

    created = [item.spec.name for run in runs for item in run if item.created]
    assert sorted(created) == sorted(
        [env.raw_topic, env.dlq_topic, env.data_events_topic, env.data_events_dlq_topic]
    )
    counts = await _partition_counts(kafka_bootstrap, created)
    assert set(counts.values()) == {2}


@pytest.mark.parametrize(
    ("bootstrap", "args"),
    [
        ("127.0.0.1:1", ("topics",)),  # nothing listens on port 1: refused at once
        ("127.0.0.1:1", ("topics", "create")),
        ("127.0.0.1:1", ("tail", "anything")),
        ("127.0.0.1:1", ("replay", "anything.dlq")),
    ],
    ids=["describe", "create", "tail", "replay"],
)
async def test_an_unreachable_broker_is_a_clear_error_within_the_bounded_wait(
    bootstrap: str, args: tuple[str, ...]
) -> None:
    env = OpsEnv(bootstrap)
    started = time.monotonic()

    result = await env.cli(*args, "--connect-timeout", "3")

    assert result.exit_code == 1
    assert f"Error: cannot reach Kafka at {bootstrap}: " in result.stderr
    assert "Traceback" not in result.output
    assert time.monotonic() - started < 6


async def test_a_broker_that_never_answers_is_given_up_on_after_the_connect_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept, read, never answer
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        env = OpsEnv(f"127.0.0.1:{port}")
        started = time.monotonic()
        result = await env.cli("topics", "--connect-timeout", "2")
        elapsed = time.monotonic() - started
    finally:
        server.close()
        await server.wait_closed()

    assert result.exit_code == 1
    assert f"Error: cannot reach Kafka at 127.0.0.1:{port}: no answer in 2 s" in result.stderr
    assert 1.5 < elapsed < 5
