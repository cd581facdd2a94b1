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
from faust.exceptions import ProducerSendError
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

    async def on_rebalance(self, assigned: Any, revoked: Any, newly_assigned: Any) -> None:
        # Faust stops the producers of the partitions in `revoked`, which has come out empty
        # when another worker took partitions over: the old producers lived on, were fenced
        # by the new owner's, and the next commit crashed. Keep exactly those of `assigned`.
        keep = self._tps_to_transactional_ids(assigned)
        producers = cast(Producer, self.producer)._transaction_producers
        if stale := sorted(set(producers) - keep):
            self.log.info("Stopping transactional producers no longer ours: %s", stale)
            await self._stop_transactions(stale)
        await super().on_rebalance(assigned, revoked, newly_assigned)

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
    """Faust's producer with its transactional producers per instance, not per class, and
    the transactions of a commit committed concurrently (Faust commits one partition's
    after the other, and the worker waits for the commit: with six partitions, a commit
    took longer than the 0.2 s interval and starved the agent)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._transaction_producers = {}
        self._trn_locks = {}

    async def maybe_begin_transaction(self, transactional_id: str) -> None:
        """Begin a transaction unless the producer is in one already (a partition kept
        through a rebalance: Faust begins again and logs the refusal as a warning)."""
        producer = self._transaction_producers.get(transactional_id)
        if producer is not None and producer._txn_manager.is_in_transaction():
            return
        self.log.info(
            "Transaction %s: %s", transactional_id, "begin" if producer else "new producer"
        )
        await self.begin_transaction(transactional_id)

    async def commit_transactions(
        self,
        tid_to_offset_map: Mapping[str, Mapping[Any, int]],
        group_id: str,
        start_new_transaction: bool = True,
    ) -> None:
        await asyncio.gather(
            *(
                self._commit_one(transactional_id, offsets, group_id, start_new_transaction)
                for transactional_id, offsets in tid_to_offset_map.items()
            )
        )

    async def _commit_one(
        self,
        transactional_id: str,
        offsets: Mapping[Any, int],
        group_id: str,
        start_new_transaction: bool,
    ) -> None:
        async with self._trn_locks[transactional_id]:
            producer = self._transaction_producers.get(transactional_id)
            if producer is None:  # its start failed: these offsets cannot be committed
                raise ProducerSendError(f"no transactional producer for {transactional_id}")
            try:
                await producer.send_offsets_to_transaction(offsets, group_id)
                await producer.commit_transaction()
                if start_new_transaction:
                    await producer.begin_transaction()
            except Exception:
                self.log.exception("Commit of transaction %s failed", transactional_id)
                raise


class Transport(aiokafka_driver.Transport):
    """The aiokafka transport with the fixes above."""

    Producer = Producer
    TransactionManager = SourcePartitionTransactionManager
