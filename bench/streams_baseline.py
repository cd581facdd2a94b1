"""The baselines of the streams benchmarks: plain aiokafka consume-and-produce loops.

Each does what the worker does minus the state: parse the notification, key by the item id,
produce to `<prefix><topic>` with the contract's headers. No dedup table, no Faust. How it
commits is `--transactions`:

- `none` (bench.streams' throughput baseline): commit the batch's offsets after the
  producer acknowledged it, at least once.
- `one`: each fetched batch is one Kafka transaction with its offsets (read_committed),
  begun as soon as the last one committed: the barest exactly-once router aiokafka allows.
  One transaction per worker is the shape of exactly-once v2 (KIP-447), which aiokafka
  cannot make safe across rebalances (it sends TxnOffsetCommit v0, without the group
  generation).
- `per-partition`: each source partition's share of a fetch is a transaction of its own,
  with a transactional producer per source partition, all committed concurrently: exactly-
  once v1, what Faust does and the worker keeps.

bench.e2e_latency runs the transactional two in the worker's place, as the floor its
figures stand beside. They take their assignment once and keep it (no fencing on a
rebalance), so they are baselines, not routers to deploy.

    python -m bench.streams_baseline --bootstrap HOST:PORT --raw-topic T --group G --prefix P
        [--transactions none|one|per-partition] [--start earliest|latest] [--ready-file F]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)

from bench import _security

TRANSACTIONS = ("none", "one", "per-partition")
Batch = Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]]


def _key(document: dict[str, object], record_key: bytes | None) -> bytes | None:
    data = document.get("data")
    item = data.get("item") if isinstance(data, dict) else None
    item_id = item.get("id") if isinstance(item, dict) else None
    if item_id is not None:
        return str(item_id).encode()
    notification_id = document.get("id")
    return str(notification_id).encode() if notification_id is not None else record_key


async def _route(producer: AIOKafkaProducer, batch: Batch, prefix: str) -> list[Any]:
    """Hand each record of `batch` to `producer`, routed; the futures of their acks."""
    pending = []
    for records in batch.values():
        for record in records:
            document = orjson.loads(record.value)
            headers = [
                ("intercom-notification-id", str(document.get("id")).encode()),
                ("intercom-topic", str(document["topic"]).encode()),
                *[(n, v) for n, v in record.headers if n == "hookstream-received-at"],
            ]
            topic = f"{prefix}{document['topic']}"
            key = _key(document, record.key)
            pending.append(await producer.send(topic, record.value, key=key, headers=headers))
    return pending


async def _in_one_transaction(
    producer: AIOKafkaProducer, batch: Batch, prefix: str, group: str
) -> None:
    """Route `batch` and commit its offsets in one transaction of `producer`."""
    async with producer.transaction():
        await _route(producer, batch, prefix)
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        await producer.send_offsets_to_transaction(offsets, group)


class _Producers(contextlib.AsyncExitStack):
    """Producers started on first use (one per transactional id), stopped at the end."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__()
        self._config = _security.connection(bootstrap).client_config("hookstream-bench")
        self._started: dict[str | None, AIOKafkaProducer] = {}

    async def get(self, transactional_id: str | None = None) -> AIOKafkaProducer:
        producer = self._started.get(transactional_id)
        if producer is None:
            producer = AIOKafkaProducer(
                **self._config, acks="all", transactional_id=transactional_id
            )
            await producer.start()
            self.push_async_callback(producer.stop)
            self._started[transactional_id] = producer
        return producer


async def run(  # noqa: PLR0917 - the command line's options, one call site
    bootstrap: str,
    raw_topic: str,
    group: str,
    prefix: str,
    transactions: str,
    start: str,
    ready_file: Path | None,
) -> None:
    """Consume `raw_topic` and route every record until SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    consumer = AIOKafkaConsumer(
        **_security.connection(bootstrap).client_config("hookstream-bench"),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset=start,
        isolation_level="read_uncommitted" if transactions == "none" else "read_committed",
    )
    assigned = _Assigned()
    consumer.subscribe([raw_topic], listener=assigned)
    await consumer.start()
    try:
        async with _Producers(bootstrap) as producers:
            await assigned.wait()
            for partition in consumer.assignment():
                await consumer.position(partition)
            if ready_file is not None:
                await asyncio.to_thread(ready_file.touch)
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=1000)
                if not batch:
                    continue
                if transactions == "none":
                    acks = await _route(await producers.get(), batch, prefix)
                    await asyncio.gather(*acks)
                    await consumer.commit()
                elif transactions == "one":
                    producer = await producers.get(f"{group}-one")
                    await _in_one_transaction(producer, batch, prefix, group)
                else:
                    each_partition = [
                        _in_one_transaction(
                            await producers.get(f"{group}-{tp.partition}"),
                            {tp: records}, prefix, group,
                        )
                        for tp, records in batch.items()
                    ]  # fmt: skip
                    await asyncio.gather(*each_partition)
    finally:
        await consumer.stop()


class _Assigned(ConsumerRebalanceListener):  # type: ignore[misc] # untyped aiokafka
    """Set once the group has assigned partitions."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    async def on_partitions_revoked(self, revoked: object) -> None:
        """Nothing to do: the loop commits each batch before taking the next."""

    async def on_partitions_assigned(self, assigned: object) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--raw-topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--transactions", choices=TRANSACTIONS, default="none")
    parser.add_argument(
        "--start", choices=("earliest", "latest"), default="earliest",
        help="where a partition without a committed offset starts",
    )  # fmt: skip
    parser.add_argument(
        "--ready-file", type=Path, help="created once the group has assigned the partitions"
    )
    args = parser.parse_args()
    asyncio.run(
        run(
            args.bootstrap, args.raw_topic, args.group, args.prefix,
            args.transactions, args.start, args.ready_file,
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
