"""Faust's exactly-once transaction manager, fixed for a worker that routes to many topics.

faust-streaming 0.15 picks the transactional producer of a record from the partition the
record goes *to* (`<app>-<group>-<destination partition>`). For a record bound for another
topic that is wrong twice over: the destination topic has no topic group (KeyError), and its
partition number names the transaction of an unrelated source partition, one that may
belong to another worker. Kafka's exactly-once needs each output in the transaction of the
input partition that caused it: the worker's records wait in the app's outbox
(`streams._outbox`), and `commit` produces those of the events it commits into the
transaction of their source partition, then commits it (faust-streaming issue #440 is the
KeyError). Any failure there crashes the worker: a transaction that cannot commit must not
be followed by more work.

`Producer.commit_transactions` and `maybe_begin_transaction` are copies of Faust's
(faust/transport/drivers/aiokafka.py) with the changes their docstrings give; private names
of Faust and aiokafka are reached through `hookstream.core.compat`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Protocol, cast

from faust.exceptions import ProducerSendError
from faust.transport.consumer import TransactionManager
from faust.transport.drivers import aiokafka as aiokafka_driver

from hookstream.core.compat import aiokafka as aiokafka_compat
from hookstream.core.compat import faust as faust_compat
from hookstream.streams._consumer import Consumer
from hookstream.streams._outbox import Pending
from hookstream.streams._produce import produce_in_batches


class SourcePartitionTransactionManager(TransactionManager):
    """Commits each source partition's transaction with the outbox records of its events."""

    async def on_rebalance(self, assigned: Any, revoked: Any, newly_assigned: Any) -> None:
        # Faust stops the producers of the partitions in `revoked`, which has come out empty
        # when another worker took partitions over: the old producers lived on, were fenced
        # by the new owner's, and the next commit crashed (faust-streaming issue #323).
        # Keep exactly those of `assigned`.
        keep = faust_compat.transactional_ids_of(self, assigned)
        producers = faust_compat.transaction_producers(self.producer)
        if stale := sorted(set(producers) - keep):
            self.log.info("Stopping transactional producers no longer ours: %s", stale)
            await faust_compat.stop_transactions(self, stale)
        if dropped := cast(Any, self.app).outbox.keep_only(assigned):
            self.log.warning("Dropped %d uncommitted records of partitions no longer ours", dropped)
        await super().on_rebalance(assigned, revoked, newly_assigned)

    async def commit(self, offsets: Mapping[Any, int], start_new_transaction: bool = True) -> bool:
        app = cast(Any, self.app)  # streams.app.WorkerApp
        produced: list[Pending] = []
        try:
            for source, offset in offsets.items():
                produced += await self._produce_outbox(source, offset)
            committed: bool = await super().commit(
                offsets, start_new_transaction=start_new_transaction
            )
        except Exception as exc:  # any failure here must stop the worker
            await self.app.crash(exc)
            return False
        if committed:
            app.cadence.committed()
            app.metrics.receive_to_commit.observe_since(
                (r.received_at_ms for r in produced if r.received_at_ms is not None), time.time()
            )
        return committed

    async def _produce_outbox(self, source: Any, before: int) -> list[Pending]:
        """Produce the outbox records of `source`'s events below offset `before` into the
        transaction of `source` (not waiting for acks: `commit_with_offsets` waits for them);
        return them."""
        records: list[Pending] = cast(Any, self.app).outbox.take(source, before)
        if not records:
            return records
        group = self.app.assignor.group_for_topic(source.topic)
        transactional_id = f"{self.app.conf.id}-{group}-{source.partition}"
        producer = faust_compat.transaction_producers(self.producer).get(transactional_id)
        if producer is None:
            raise ProducerSendError(f"no transactional producer for {transactional_id}")
        await produce_in_batches(producer, records)
        return records


class Producer(aiokafka_driver.Producer):
    """Faust's producer with its transactional producers per instance, not per class, and
    the transactions of a commit committed concurrently (Faust commits one partition's
    after the other, and the worker waits for the commit: with six partitions, a commit
    took longer than the 0.2 s interval and starved the agent)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        faust_compat.separate_transaction_state(self)

    async def maybe_begin_transaction(self, transactional_id: str) -> None:
        """Begin a transaction unless the producer is in one already (a partition kept
        through a rebalance: Faust begins again and logs the refusal as a warning)."""
        producer = faust_compat.transaction_producers(self).get(transactional_id)
        if producer is not None and aiokafka_compat.in_transaction(producer):
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
        async with faust_compat.transaction_locks(self)[transactional_id]:
            producer = faust_compat.transaction_producers(self).get(transactional_id)
            if producer is None:  # its start failed: these offsets cannot be committed
                raise ProducerSendError(f"no transactional producer for {transactional_id}")
            try:
                await commit_with_offsets(
                    producer, offsets, group_id, begin_next=start_new_transaction
                )
            except Exception:
                self.log.exception("Commit of transaction %s failed", transactional_id)
                raise


class TransactionalProducer(Protocol):
    """What `commit_with_offsets` needs of an aiokafka transactional producer."""

    async def flush(self) -> None: ...

    async def send_offsets_to_transaction(
        self, offsets: Mapping[Any, int], group_id: str
    ) -> None: ...

    async def commit_transaction(self) -> None: ...

    async def begin_transaction(self) -> None: ...


async def commit_with_offsets(
    producer: TransactionalProducer,
    offsets: Mapping[Any, int],
    group_id: str,
    *,
    begin_next: bool,
) -> None:
    """Commit `producer`'s transaction with the consumer `offsets` of `group_id`, its records
    acknowledged first; then begin the next one if `begin_next`.

    With the records still in flight, Kafka 4.1 answered the TxnOffsetCommit
    COORDINATOR_NOT_AVAILABLE in 1 to 3% of the worker's transactions (it verifies a
    transaction's first produce to a partition and its offset commit with the transaction
    coordinator; the two in flight together are the likely cause), and aiokafka then looks
    the coordinator up again and sleeps its 100 ms retry backoff: a tenth of the commits (of
    six transactions each) took over 100 ms. With the records acknowledged first, none of
    1,201 offset commits was refused (README "Warm, beside the floor").
    """
    await producer.flush()
    await producer.send_offsets_to_transaction(offsets, group_id)
    await producer.commit_transaction()
    if begin_next:
        await producer.begin_transaction()


class Transport(aiokafka_driver.Transport):
    """The aiokafka transport with the fixes above and the worker's consumer."""

    Consumer = Consumer
    Producer = Producer
    TransactionManager = SourcePartitionTransactionManager
