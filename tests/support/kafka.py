"""Helpers for tests that talk to the real broker: unique topics, reading a topic back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


def unique_name(prefix: str) -> str:
    """A topic or group name no other test uses."""
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


async def create_topics(
    bootstrap: str,
    names: list[str],
    partitions: int = 1,
    configs: Mapping[str, str] | None = None,
) -> None:
    """Create topics on the broker (replication 1)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    name,
                    num_partitions=partitions,
                    replication_factor=1,
                    topic_configs=dict(configs or {}),
                )
                for name in names
            ]
        )
    finally:
        await admin.close()


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expect: int | None = None,
    wait_seconds: float = 30.0,
    read_committed: bool = True,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic` from the start. Waits until `expect` records arrived (then
    lingers briefly to catch extras) or until the end offsets are reached when `expect` is
    None."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed" if read_committed else "read_uncommitted",
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        partitions = await _partitions(consumer, topic, wait_seconds)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + wait_seconds
        end_offsets = await consumer.end_offsets(partitions)
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for part_records in batch.values():
                records.extend(part_records)
            if expect is None:
                positions = {tp: await consumer.position(tp) for tp in partitions}
                if all(positions[tp] >= end_offsets[tp] for tp in partitions):
                    break
            elif len(records) >= expect and not batch:
                break
        return records
    finally:
        await consumer.stop()


async def _partitions(
    consumer: AIOKafkaConsumer, topic: str, wait_seconds: float
) -> list[TopicPartition]:
    deadline = time.monotonic() + wait_seconds
    while True:
        found = consumer.partitions_for_topic(topic)
        if found is None:
            await consumer._client.force_metadata_update()  # no public refresh
            found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} has no partitions")
        await asyncio.sleep(0.2)
