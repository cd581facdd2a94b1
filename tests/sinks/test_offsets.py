"""In-order acks: a record is acked only once every earlier record of its partition is final."""

from __future__ import annotations

import pytest

from hookstream.sinks.offsets import InOrderAcks


class Recorded:
    """An InOrderAcks whose acks append to `acked`."""

    def __init__(self) -> None:
        self.acks = InOrderAcks()
        self.acked: list[tuple[str, int]] = []

    def take(self, partition: str, *offsets: int) -> None:
        for offset in offsets:

            async def ack(offset: int = offset) -> None:
                self.acked.append((partition, offset))

            self.acks.add(partition, offset, ack)


async def test_a_record_final_before_an_earlier_one_waits_for_it() -> None:
    r = Recorded()
    r.take("p0", 10, 11, 12)
    assert await r.acks.finish("p0", 12) == 0
    assert await r.acks.finish("p0", 11) == 0
    assert r.acked == []
    assert r.acks.next_to_finish("p0") == 10
    assert await r.acks.finish("p0", 10) == 3
    assert r.acked == [("p0", 10), ("p0", 11), ("p0", 12)]
    assert r.acks.pending == 0
    assert r.acks.acked_through("p0") == 12
    assert r.acks.next_to_finish("p0") == 13


async def test_partitions_do_not_wait_for_each_other() -> None:
    r = Recorded()
    r.take("p0", 5)
    r.take("p1", 7)
    await r.acks.finish("p1", 7)
    assert r.acked == [("p1", 7)]
    assert r.acks.pending == 1


async def test_a_released_partition_is_dropped_unacked_and_late_finishes_are_ignored() -> None:
    r = Recorded()
    r.take("p0", 1, 2)
    assert r.acks.forget("p0") == 2
    assert r.acks.pending == 0
    assert await r.acks.finish("p0", 1) == 0
    assert r.acked == []
    assert r.acks.next_to_finish("p0") is None


def test_offsets_must_come_in_order_and_once() -> None:
    r = Recorded()
    r.take("p0", 3)
    with pytest.raises(ValueError, match="taken already"):
        r.take("p0", 3)
    with pytest.raises(ValueError, match="out of order"):
        r.take("p0", 2)
