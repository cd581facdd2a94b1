"""Faust's exactly-once transaction manager, fixed for a worker that routes to many topics.

faust-streaming 0.15 picks the transactional producer of a record from the partition the
record goes *to* (`<app>-<group>-<destination partition>`). For a record bound for another
topic that is wrong twice over: the destination topic has no topic group (KeyError), and its
partition number names the transaction of an unrelated source partition, one that may
belong to another worker. Kafka's exactly-once needs each output in the transaction of the
input partition that caused it, which is what `send` does here: it takes the partition of
the event being processed.

`commit` waits for the event in progress (the app's `commit_gate`) so that an event's
table write and routed records land in one transaction, and turns any failure into a
crash: a transaction that cannot commit must not be followed by more work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

from faust import current_event
from faust.transport.consumer import TransactionManager
from faust.transport.drivers import aiokafka as aiokafka_driver


class SourcePartitionTransactionManager(TransactionManager):
    """Sends each record in the transaction of the source partition of the current event."""

    async def send(  # noqa: PLR0917 - Faust's signature
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Any:
        event = current_event()
        if event is None:  # not from an event: Faust's own rule (its changelogs, by partition)
            return await super().send(topic, key, value, partition, timestamp, headers)
        source = event.message.tp
        group = self.app.assignor.group_for_topic(source.topic)
        return await self.producer.send(
            topic,
            key,
            value,
            partition,
            timestamp,
            headers,
            transactional_id=f"{self.app.conf.id}-{group}-{source.partition}",
        )

    async def commit(self, offsets: Mapping[Any, int], start_new_transaction: bool = True) -> bool:
        gate: asyncio.Lock = cast(Any, self.app).commit_gate  # set by streams.app.WorkerApp
        async with gate:
            try:
                committed: bool = await super().commit(
                    offsets, start_new_transaction=start_new_transaction
                )
            except Exception as exc:  # any failure here must stop the worker
                await self.app.crash(exc)
                return False
        return committed


class Producer(aiokafka_driver.Producer):
    """Faust's producer with its transactional producers per instance, not per class."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._transaction_producers = {}
        self._trn_locks = {}


class Transport(aiokafka_driver.Transport):
    """The aiokafka transport with the fixes above."""

    Producer = Producer
    TransactionManager = SourcePartitionTransactionManager
