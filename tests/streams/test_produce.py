"""Producing a commit's records in batches, against the real broker: the same partitions as
aiokafka's `send`, the order kept per partition, full batches split, offsets reported."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from hookstream.streams._outbox import Pending
from hookstream.streams._produce import produce_in_batches
from tests.support.kafka import create_topics, read_topic, unique_name

PARTITIONS = 6


def pending(topic: str, n: int, *, size: int = 10, on_delivered: object = None) -> Pending:
    return Pending(
        offset=n,
        topic=topic,
        key=f"conv-{n % 17}".encode(),
        value=f"{n:06d}".encode().ljust(size, b"."),
        partition=None,
        headers=[("n", str(n).encode())],
        on_delivered=on_delivered,  # type: ignore[arg-type]
    )


async def test_records_land_where_send_puts_them_in_their_order(kafka_bootstrap: str) -> None:
    batched, sent = unique_name("produce.batched"), unique_name("produce.sent")
    await create_topics(kafka_bootstrap, [batched, sent], partitions=PARTITIONS)
    # records of about 1 KiB and 16 KiB batches: each partition's records need several
    records = [pending(batched, n, size=1000) for n in range(300)]
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        transactional_id=unique_name("produce.txn"),
        max_batch_size=16 * 1024,
    )
    await producer.start()
    try:
        async with producer.transaction():
            await produce_in_batches(producer, records)
        async with producer.transaction():
            for record in records:
                await producer.send(sent, record.value, key=record.key)
    finally:
        await producer.stop()

    got = await read_topic(kafka_bootstrap, batched, expect=len(records))
    reference = await read_topic(kafka_bootstrap, sent, expect=len(records))
    assert len(got) == len(records)
    partition_by_send = {r.value: r.partition for r in reference}
    assert {r.value: r.partition for r in got} == partition_by_send
    assert len(set(partition_by_send.values())) == PARTITIONS
    for partition in range(PARTITIONS):
        in_partition = sorted((r for r in got if r.partition == partition), key=lambda r: r.offset)
        numbers = [int(r.value[:6]) for r in in_partition]
        assert numbers == sorted(numbers)
        assert [r.headers for r in in_partition] == [(("n", str(n).encode()),) for n in numbers]


async def test_each_callback_gets_its_own_record_offset(kafka_bootstrap: str) -> None:
    topic = unique_name("produce.offsets")
    await create_topics(kafka_bootstrap, [topic], partitions=1)
    delivered: dict[int, RecordMetadata] = {}

    def remember(n: int) -> object:
        return lambda metadata: delivered.__setitem__(n, metadata)

    records = [pending(topic, n, on_delivered=remember(n) if n % 2 else None) for n in range(20)]
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=unique_name("produce.txn")
    )
    await producer.start()
    try:
        async with producer.transaction():
            await produce_in_batches(producer, records)
    finally:
        await producer.stop()

    got = await read_topic(kafka_bootstrap, topic, expect=len(records))
    offset_of = {int(r.value[:6]): r.offset for r in got}
    assert sorted(delivered) == list(range(1, 20, 2))
    assert {n: m.offset for n, m in delivered.items()} == {n: offset_of[n] for n in delivered}
    assert all(m.topic == topic and m.partition == 0 for m in delivered.values())
