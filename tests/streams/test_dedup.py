from __future__ import annotations

from hookstream.streams.dedup import Deduplicator, id_key, position_key


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_a_duplicate_within_the_ttl_and_passes_again_after_it() -> None:
    table: dict[bytes, bytes] = {}
    clock = Clock()
    dedup = Deduplicator(table, ttl_seconds=60, clock=clock)
    key = id_key("notif_1")
    assert not dedup.is_duplicate(key)
    dedup.remember(key)
    clock.now += 59.9
    assert dedup.is_duplicate(key)
    clock.now += 0.1
    assert not dedup.is_duplicate(key)


def test_a_duplicate_does_not_extend_the_first_seen_time() -> None:
    table: dict[bytes, bytes] = {}
    clock = Clock()
    dedup = Deduplicator(table, ttl_seconds=10, clock=clock)
    dedup.remember(b"k")
    clock.now += 9
    assert dedup.is_duplicate(b"k")  # the worker drops it without remembering again
    clock.now += 2
    assert not dedup.is_duplicate(b"k")


def test_remember_writes_first_seen_ms() -> None:
    table: dict[bytes, bytes] = {}
    clock = Clock()
    Deduplicator(table, ttl_seconds=1, clock=clock).remember(b"k")
    assert table == {b"k": b"1000000"}


def test_a_value_not_written_by_the_deduplicator_counts_as_unseen() -> None:
    table = {b"k": b"garbage"}
    assert not Deduplicator(table, ttl_seconds=60).is_duplicate(b"k")


def test_id_and_position_keys_cannot_collide() -> None:
    assert id_key("p/raw/0/1") != position_key("raw", 0, 1)
    assert position_key("raw", 2, 15) == b"p/raw/2/15"
