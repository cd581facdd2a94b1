"""The worker's copy of Faust's `getmany` keeps Faust's fair scheduling of partitions.

Faust's `getmany` hands over a fetch's records round robin between topics and between the
partitions of each (`consumer.scheduler.iterate`), so a big fetch of one partition does not
hold back the others; the copy does too, with a raw partition's batch as one turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from faust.transport.utils import DefaultSchedulingStrategy
from faust.types import TP

from hookstream.streams._consumer import Consumer, RecordBatch

RAW_0, RAW_1 = TP("raw", 0), TP("raw", 1)
LOG_0, LOG_1 = TP("changelog", 0), TP("changelog", 1)


class _Record:
    def __init__(self, tp: TP, offset: int) -> None:
        self.topic, self.partition, self.offset = tp.topic, tp.partition, offset
        self.timestamp, self.timestamp_type = 1_700_000_000_000 + offset, 0


class _Monitor:
    def track_tp_end_offset(self, tp: TP, offset: int | None) -> None:
        pass


class _App:
    consumer_generation_id = 3
    batched_topics = frozenset({"raw"})
    monitor = _Monitor()


class _FetchedConsumer:
    """What `getmany` reads of its consumer, with one fetch's records."""

    def __init__(self, records: Mapping[TP, list[_Record]]) -> None:
        self.records = records
        self.app = _App()
        self.scheduler = DefaultSchedulingStrategy()
        self.flow_active = True
        self.should_stop = False
        self._buffered_partitions: set[TP] = set()

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:  # noqa: ASYNC109
        return self.records, None

    def _to_message(self, tp: TP, record: _Record) -> tuple[TP, int]:
        return tp, record.offset

    def highwater(self, tp: TP) -> int:
        return 100


async def _handed_over(records: Mapping[TP, list[_Record]]) -> list[tuple[TP, object]]:
    consumer = _FetchedConsumer(records)
    getmany = cast(Any, Consumer).getmany
    handed = []
    async for tp, message in getmany(consumer, timeout=1.0):
        if isinstance(message, RecordBatch):
            handed.append((tp, ("batch", [r.offset for r in message.value])))
        else:
            handed.append((tp, message))
    return handed


async def test_partitions_and_topics_take_turns_with_a_raw_batch_as_one_turn() -> None:
    records = {
        LOG_0: [_Record(LOG_0, offset) for offset in (10, 11, 12)],
        LOG_1: [_Record(LOG_1, offset) for offset in (20, 21)],
        RAW_0: [_Record(RAW_0, offset) for offset in (5, 6)],
        RAW_1: [_Record(RAW_1, 7)],
    }

    handed = await _handed_over(records)

    assert handed == [
        (LOG_0, (LOG_0, 10)),
        (RAW_0, ("batch", [5, 6])),
        (LOG_1, (LOG_1, 20)),
        (RAW_1, ("batch", [7])),
        (LOG_0, (LOG_0, 11)),
        (LOG_1, (LOG_1, 21)),
        (LOG_0, (LOG_0, 12)),
    ]


async def test_a_fetch_of_one_topic_alone_is_handed_over_partition_by_partition_in_turns() -> None:
    records = {LOG_0: [_Record(LOG_0, 1), _Record(LOG_0, 2)], LOG_1: [_Record(LOG_1, 9)]}

    handed = await _handed_over(records)

    assert handed == [(LOG_0, (LOG_0, 1)), (LOG_1, (LOG_1, 9)), (LOG_0, (LOG_0, 2))]
