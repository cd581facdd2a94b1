"""The premise of the worker's `seek_to_committed` (`streams._consumer`), on a real broker.

Faust drops the records it fetched while its flow is stopped and seeks to the committed
offsets to fetch them again. aiokafka's `seek_to_committed` does not move a partition that
has no committed offset, so without the worker's fix those records are never fetched again.
When this test fails, aiokafka seeks such partitions itself (aiokafka issue #1003) and the
fix can go.
"""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.support.kafka import create_topics, unique_name

pytestmark = pytest.mark.integration


async def test_aiokafka_leaves_a_partition_nobody_committed_after_the_records_it_fetched(
    kafka_bootstrap: str,
) -> None:
    topic = unique_name("seek")
    await create_topics(kafka_bootstrap, [topic], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for n in range(3):
            await producer.send_and_wait(topic, f"record {n}".encode(), partition=0)
    finally:
        await producer.stop()
    partition = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=unique_name("group"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign([partition])
        fetched = []
        while len(fetched) < 3:
            batch = await consumer.getmany(partition, timeout_ms=5000)
            assert batch, "the three records were not fetched"
            fetched += batch[partition]

        committed = await consumer.seek_to_committed(partition)

        assert committed == {partition: None}
        assert await consumer.position(partition) == 3  # not fetched again
    finally:
        await consumer.stop()
