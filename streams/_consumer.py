"""Faust's Kafka consumer, handing the worker's agent whole fetched batches.

Faust hands records to agents one by one: per record a `ConsumerMessage`, a trip through
the conductor into the agent's buffer, an `Event`, a turn of the stream iterator and an
ack, and in the drain loop two tasks and an `asyncio.wait` so that a rebalance can abandon
a hand-over. For the raw topic that machinery was about half of the worker's time. So for
the topics an app names in `batched_topics`, this consumer delivers each partition's
fetched records as one `RecordBatch` message: the agent gets one event per batch and
processes its records in order.

Faust's offset bookkeeping holds because a batch is acked as its last offset, and the
offsets before it in the batch are noted as a gap, which Faust's commit counts as done once
a later offset is acked (as it does for the offsets of transaction markers). The outbox
tags a batch's records with that last offset, so a commit takes a batch whole or not at
all. Other topics (the table changelogs read during recovery) go record by record, as in
Faust.

The hand-over itself is awaited directly when nothing in it can wait (flow active and not
suspended, no resubscription holding the conductor's lock, room in every buffer the
partition feeds); otherwise it is Faust's `wait_first`, so a rebalance can abandon it.

Faust drops the records it fetched while its flow is stopped (a rebalance, a recovery) and
trusts a seek to the committed offsets to fetch them again. aiokafka's `seek_to_committed`
seeks only to offsets above 0, so a partition that nobody has committed yet kept the position
after the dropped records, and those records were never processed. The cluster test lost
the first 30 to 79 webhooks of a raw partition this way: the worker that took the partition
over had fetched them during its recovery. `seek_to_committed` starts such partitions from offset 0
again (aiokafka issue #1003, open: `seek_to_committed` ignores a committed offset of 0 or
none).

`getmany` and `drain_messages` are copies of Faust's `Consumer.getmany` and
`Consumer._drain_messages` (faust/transport/consumer.py) with these changes; Faust's private
names they use are reached through `hookstream.core.compat.faust`, and
`tests/compat/test_upstream_canary.py` fails when the upstream methods change.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from hookstream.core.compat import faust as faust_compat

_YIELD_EVERY = 100
"""Messages handed over between two yields to the event loop (Faust's figure)."""


class RecordBatch(ConsumerMessage):
    """The records of one partition from one fetch, as one message: its value is the
    aiokafka `ConsumerRecord`s, its offset the last one's."""

    __slots__ = ("first_offset",)

    def __init__(self, tp: TP, records: Sequence[Any], generation_id: int) -> None:
        last = records[-1]
        super().__init__(
            tp.topic,
            tp.partition,
            last.offset,
            last.timestamp / 1000.0,
            last.timestamp_type,
            None,
            None,
            records,  # type: ignore[arg-type] # the value of this message kind
            None,
            0,
            0,
            tp,
            generation_id=generation_id,
        )
        self.first_offset: int = records[0].offset

    def drop_before(self, offset: int) -> None:
        """Forget the records before `offset` (read before a seek back to it)."""
        records: Sequence[Any] = self.value  # type: ignore[assignment]
        kept = [record for record in records if record.offset >= offset]
        self.value = kept  # type: ignore[assignment]
        if kept:
            self.first_offset = kept[0].offset


class Consumer(faust_compat.Consumer):
    """The aiokafka consumer of Faust, with batches for the app's `batched_topics`."""

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:  # noqa: ASYNC109 - Faust's
        """Faust's `getmany`, with one `RecordBatch` per partition of a batched topic.

        As in Faust, the consumer's scheduler takes the partitions in turns, round robin
        between the topics and between the partitions of each (`scheduler.iterate`); a
        batch is one turn of its partition, a record of another topic one turn of its."""
        records, active_partitions = await faust_compat.wait_next_records(self, timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            self.log.dev("getmany called while flow not active. Seek back to committed offsets.")
            try:
                await self.perform_seek()
            except Exception as exc:
                self.log.warning(f"exception performing seek when flow not active {exc}")
            return
        batched: frozenset[str] = getattr(self.app, "batched_topics", frozenset())
        if batched:
            records = {
                tp: [RecordBatch(tp, tp_records, generation_id)]
                if tp.topic in batched and tp_records
                else tp_records
                for tp, tp_records in records.items()
            }
        tracked: set[TP] = set()  # end offsets noted once per partition and fetch
        for tp, item in self.scheduler.iterate(records):
            # Faust stops handing over on a rebalance
            if not (self.flow_active and self.app.consumer_generation_id == generation_id):
                return
            if not (
                active_partitions is None
                or tp in active_partitions
                or tp in faust_compat.buffered_partitions(self)
            ):
                continue
            if tp not in tracked:
                tracked.add(tp)
                self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            if isinstance(item, RecordBatch):
                yield tp, item
            else:
                yield tp, faust_compat.to_message(self, tp, item)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Faust's, then the agents' partitions without a committed offset (or with 0, which
        aiokafka does not seek to either) go back to offset 0, where the `earliest` reset
        policy starts them (see the module doc); a seek below the log start is reset to it by
        the same policy."""
        committed = await super().seek_to_committed()
        if self.app.conf.consumer_auto_offset_reset == "earliest":
            for tp, offset in committed.items():
                if not offset and self.app.topics.acks_enabled_for(tp.topic):
                    self.log.info("No committed offset for %s: reading it from offset 0", tp)
                    await self.seek(tp, 0)
        return committed

    def _can_hand_over_now(self, tp: Any) -> bool:
        """Whether handing a message of `tp` to its agents will finish without waiting."""
        conductor: Any = self.app.topics
        if faust_compat.resubscribing(conductor):
            return False
        if not self.app.flow_control.is_active() or self.suspend_flow.is_set():
            return False
        # Faust's producer buffer is not used by the worker (its records wait in the
        # outbox), but the conductor waits for it to ebb: check it as the conductor does.
        producer_buffer: Any = self.app.producer.buffer
        if producer_buffer.size > producer_buffer.max_messages:
            return False
        return not any(channel.queue.full() for channel in faust_compat.channels_of(conductor, tp))

    async def drain_messages(self, fetcher: Any) -> None:
        """Faust's `Consumer._drain_messages`, but for the hand-over (see the module doc)."""
        consumer_should_stop = faust_compat.stopped(self)
        fetcher_should_stop = faust_compat.stopped(fetcher)
        hand_over = self._hand_over
        since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                messages = self.getmany(timeout=1.0)
                await self.sleep(0)
                if self.should_stop:
                    continue
                async for tp, message in messages:
                    since_yield += 1
                    if since_yield > _YIELD_EVERY:
                        await asyncio.sleep(0)
                        since_yield = 0
                    await hand_over(tp, message)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _hand_over(self, tp: Any, message: Any) -> None:
        """Faust's handling of one fetched message: note a gap in the offsets, commit when
        `commit_every` messages were acked, hand the message to the agents."""
        read_offsets = faust_compat.read_offsets(self)
        read_offset = read_offsets[tp]
        if read_offset is not None and message.offset < read_offset:
            return  # read before a seek back: Faust drops it too
        if isinstance(message, RecordBatch):
            if read_offset is not None and message.first_offset < read_offset:
                message.drop_before(read_offset)  # the part read before a seek back
            first = message.first_offset
        else:
            first = message.offset
        if self.app.topics.acks_enabled_for(message.topic):
            # the offsets skipped since the last message (transaction markers), and for a
            # batch those of its records before the last: done once a later offset is acked
            gap_from = read_offset + 1 if read_offset and first - read_offset > 1 else first
            if gap_from < message.offset:
                await faust_compat.add_gap(self, tp, gap_from, message.offset - 1)
        if faust_compat.take_commit_due(self):
            await self.commit()
        if self._can_hand_over_now(tp):
            await self.callback(message)
        else:
            await self.wait_first(self.callback(message), self.suspend_flow.wait())
        read_offsets[tp] = message.offset
