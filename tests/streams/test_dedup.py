from __future__ import annotations

from streams.dedup import Deduplicator, id_key, position_key


class DictTable(dict[bytes, bytes]):
    """A dedup table in memory; counts changelog flushes."""

    flushes = 0

    async def flush_changelog(self) -> None:
        self.flushes += 1


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_key_is_a_duplicate_within_the_ttl_and_passes_again_after_it() -> None:
    table, clock = DictTable(), Clock()
    dedup = Deduplicator(table, ttl_seconds=60, clock=clock)
    key = id_key("notif_1")
    assert not dedup.is_duplicate(key)
    await dedup.remember(key)
    clock.now += 59.9
    assert dedup.is_duplicate(key)
    clock.now += 0.1
    assert not dedup.is_duplicate(key)


async def test_a_duplicate_does_not_extend_the_first_seen_time() -> None:
    table, clock = DictTable(), Clock()
    dedup = Deduplicator(table, ttl_seconds=10, clock=clock)
    await dedup.remember(b"k")
    clock.now += 9
    assert dedup.is_duplicate(b"k")  # the worker drops it without remembering again
    clock.now += 2
    assert not dedup.is_duplicate(b"k")


async def test_remember_writes_first_seen_ms_and_flushes_the_changelog() -> None:
    table, clock = DictTable(), Clock()
    await Deduplicator(table, ttl_seconds=1, clock=clock).remember(b"k")
    assert table == {b"k": b"1000000"}
    assert table.flushes == 1


def test_a_value_not_written_by_the_deduplicator_counts_as_unseen() -> None:
    table = DictTable({b"k": b"garbage"})
    assert not Deduplicator(table, ttl_seconds=60).is_duplicate(b"k")


def test_id_and_position_keys_cannot_collide() -> None:
    assert id_key("p/raw/0/1") != position_key("raw", 0, 1)
    assert position_key("raw", 2, 15) == b"p/raw/2/15"
