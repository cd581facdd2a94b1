"""`hookstream tail` against the real broker."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaProducer

from tests.ops.support import OpsEnv, Out, produce
from tests.support.kafka import create_topics, unique_name

pytestmark = pytest.mark.integration

HEADERS = [
    ("intercom-topic", b"conversation.user.created"),
    ("intercom-notification-id", b"notif_1"),
    ("hookstream-received-at", b"1714564800123"),
]


def _notification(n: int) -> bytes:
    return json.dumps({"type": "notification_event", "id": f"notif_{n}", "n": n}).encode()


@asynccontextmanager
async def _tail_process(env: OpsEnv, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`hookstream tail ARGS` as a process with piped output, killed if still running after."""
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "hookstream.cli", "tail", *args],
        env={**os.environ, **env.environ()},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _topic_with(env: OpsEnv, records: list[Out]) -> str:
    topic = unique_name(f"{env.prefix}.routed")
    await create_topics(env.bootstrap, [topic], partitions=1)
    await produce(env.bootstrap, topic, records)
    return topic


async def test_tail_prints_key_headers_and_json_value_and_stops_at_max(
    kafka_bootstrap: str,
) -> None:
    env = OpsEnv(kafka_bootstrap)
    topic = await _topic_with(
        env, [Out(f"conv-{n}".encode(), _notification(n), HEADERS) for n in range(5)]
    )

    result = await env.cli("tail", topic, "--from-beginning", "--max", "3")

    assert result.exit_code == 0, result.output
    assert result.stdout.count(f"── {topic} [0] @") == 3
    assert "key:     conv-0" in result.stdout
    assert "key:     conv-2" in result.stdout
    assert "conv-3" not in result.stdout
    assert "intercom-notification-id  notif_1" in result.stdout
    assert "hookstream-received-at    1714564800123 (2024-05-01T12:00:00.123Z)" in result.stdout
    assert '"type": "notification_event",' in result.stdout  # pretty-printed
    assert "stopped (--max reached) after 3 record(s)" in result.stderr


async def test_tail_stops_after_the_idle_timeout_with_what_there_was(kafka_bootstrap: str) -> None:
    env = OpsEnv(kafka_bootstrap)
    topic = await _topic_with(env, [Out(b"a", b"plain text"), Out(b"gone", None)])
    started = time.monotonic()

    result = await env.cli("tail", topic, "--from-beginning", "--timeout", "1.5", "--json")

    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["key"], r["value_format"], r["value"]) for r in lines] == [
        ("a", "text", "plain text"),
        ("gone", "null", None),
    ]
    assert "stopped (--timeout: idle) after 2 record(s)" in result.stderr
    assert time.monotonic() - started < 10


async def test_tail_json_gives_one_object_per_line_with_the_json_value(
    kafka_bootstrap: str,
) -> None:
    env = OpsEnv(kafka_bootstrap)
    big = json.dumps({"body": "x" * 5000}).encode()
    topic = await _topic_with(env, [Out(b"k1", _notification(1), HEADERS), Out(b"k2", big)])

    result = await env.cli("tail", topic, "--from-beginning", "--max", "2", "--json")
    text = await env.cli("tail", topic, "--from-beginning", "--max", "2")

    lines = result.stdout.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["value"] == {"type": "notification_event", "id": "notif_1", "n": 1}
    assert first["headers"]["intercom-topic"] == "conversation.user.created"
    assert (first["partition"], first["offset"]) == (0, 0)
    assert second["value"] == {"body": "x" * 5000}  # JSON output is never cut
    assert "more characters; --full shows all" in text.stdout  # the readable one is


async def test_tail_reads_committed_records_only_unless_told_otherwise(
    kafka_bootstrap: str,
) -> None:
    env = OpsEnv(kafka_bootstrap)
    topic = unique_name(f"{env.prefix}.routed")
    await create_topics(kafka_bootstrap, [topic], partitions=1)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=unique_name("ops-tail-tx")
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b'"committed"', key=b"yes")
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b'"aborted"', key=b"no")
        await producer.abort_transaction()
    finally:
        await producer.stop()

    committed = await env.cli("tail", topic, "--from-beginning", "--timeout", "1", "--json")
    everything = await env.cli(
        "tail", topic, "--from-beginning", "--timeout", "1", "--json", "--read-uncommitted"
    )

    assert [json.loads(x)["key"] for x in committed.stdout.splitlines()] == ["yes"]
    assert [json.loads(x)["key"] for x in everything.stdout.splitlines()] == ["yes", "no"]


async def test_tail_follows_new_records_from_the_end(kafka_bootstrap: str) -> None:
    env = OpsEnv(kafka_bootstrap)
    topic = await _topic_with(env, [Out(b"old", b'"before"')])
    async with _tail_process(env, topic, "--max", "1", "--timeout", "30") as process:
        assert process.stderr is not None
        ready = await asyncio.wait_for(process.stderr.readline(), 30)
        assert ready.decode().startswith(f"following {topic} (partitions 0) from the end")
        await produce(kafka_bootstrap, topic, [Out(b"new", b'{"after": true}')])
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr
    assert "key:     new" in stdout.decode()
    assert '"after": true' in stdout.decode()
    assert "old" not in stdout.decode()


async def test_tail_of_a_missing_topic_says_so_at_once(kafka_bootstrap: str) -> None:
    env = OpsEnv(kafka_bootstrap)
    started = time.monotonic()

    result = await env.cli("tail", f"{env.prefix}.nothing", "--timeout", "30")

    assert result.exit_code == 1
    assert f"Error: topic '{env.prefix}.nothing' does not exist\n" in result.stderr
    assert "waiting" not in result.stderr
    assert time.monotonic() - started < 25, "not a routed topic: not waited for"


async def test_tail_of_a_routed_topic_not_yet_created_waits_up_to_the_timeout(
    kafka_bootstrap: str,
) -> None:
    env = OpsEnv(kafka_bootstrap)
    topic = f"{env.route_prefix}contact.user.created"

    result = await env.cli("tail", topic, "--timeout", "1.5")

    assert result.exit_code == 1
    assert f"waiting for {topic}: the worker creates it when it routes" in result.stderr
    assert f"Error: topic '{topic}' does not exist (waited 2 s for it)" in result.stderr


async def test_tail_of_a_routed_topic_prints_its_records_once_the_worker_created_it(
    kafka_bootstrap: str,
) -> None:
    env = OpsEnv(kafka_bootstrap)
    topic = f"{env.route_prefix}contact.user.created"
    tail_args = ("--from-beginning", "--max", "1", "--timeout", "60", "--json")
    async with _tail_process(env, topic, *tail_args) as process:
        assert process.stderr is not None
        waiting = await asyncio.wait_for(process.stderr.readline(), 30)
        assert waiting.decode().startswith(f"waiting for {topic}:")
        await create_topics(kafka_bootstrap, [topic], partitions=2)
        await produce(kafka_bootstrap, topic, [Out(b"first", b'{"routed": true}', HEADERS)])
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr
    [record] = [json.loads(line) for line in stdout.decode().splitlines()]
    assert (record["key"], record["value"]) == ("first", {"routed": True})
    assert f"following {topic} (partitions 0-1) from the beginning" in stderr.decode()
