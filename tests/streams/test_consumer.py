"""A partition's fetched records as one message: offsets, and records read before a seek."""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord
from faust.types import TP

from hookstream.streams._consumer import RecordBatch

RAW_2 = TP("raw", 2)


def records(offsets: list[int]) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(
            topic="raw",
            partition=2,
            offset=offset,
            timestamp=1_700_000_000_000 + offset,
            timestamp_type=0,
            key=f"k{offset}".encode(),
            value=f"v{offset}".encode(),
            checksum=None,
            serialized_key_size=2,
            serialized_value_size=2,
            headers=[],
        )
        for offset in offsets
    ]


def test_a_batch_is_its_partition_with_its_first_and_last_offsets() -> None:
    batch = RecordBatch(RAW_2, records([10, 11, 13]), generation_id=4)

    assert (batch.tp, batch.topic, batch.partition) == (RAW_2, "raw", 2)
    assert (batch.first_offset, batch.offset) == (10, 13)
    assert batch.timestamp == 1_700_000_000.013
    assert batch.generation_id == 4
    assert [r.offset for r in batch.value] == [10, 11, 13]  # type: ignore[union-attr]


def test_records_read_before_a_seek_back_are_dropped_and_the_rest_kept_in_order() -> None:
    batch = RecordBatch(RAW_2, records([10, 11, 12, 13]), generation_id=1)

    batch.drop_before(12)

    assert [r.offset for r in batch.value] == [12, 13]  # type: ignore[union-attr]
    assert (batch.first_offset, batch.offset) == (12, 13)
