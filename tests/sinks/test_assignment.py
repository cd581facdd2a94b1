"""Which events of a batch the sink's agent hands to the pipeline: those of a partition it
holds now, fetched in the current group generation. A batch that spans a rebalance holds
events fetched before it; the partition's records are read again from the committed offset,
and the stale ones once handed the pipeline a partition's offsets out of order (the sink
crashed in a CI run of the fault suite)."""

from __future__ import annotations

from dataclasses import dataclass

from hookstream.sinks.app import of_current_assignment


@dataclass(frozen=True)
class Message:
    tp: tuple[str, int]
    offset: int
    generation_id: int


@dataclass(frozen=True)
class Event:
    message: Message


def events(*specs: tuple[int, int, int]) -> list[Event]:
    """(partition, offset, generation) each."""
    return [Event(Message(("data-events", p), offset, g)) for p, offset, g in specs]


def test_a_partition_taken_back_keeps_only_what_was_fetched_after_the_rebalance() -> None:
    # partition 0 went away and came back in generation 4: its events of generation 3 are
    # read again from the committed offset, so only 62 onwards is taken, in order
    batch = events((0, 100, 3), (0, 101, 3), (1, 40, 3), (0, 62, 4), (0, 63, 4))
    taken = of_current_assignment(batch, {("data-events", 0)}, generation_id=4)
    assert [e.message.offset for e in taken] == [62, 63]


def test_a_partition_no_longer_assigned_is_left_to_its_new_owner() -> None:
    batch = events((0, 7, 5), (1, 8, 5), (2, 9, 5))
    taken = of_current_assignment(batch, {("data-events", 0), ("data-events", 2)}, 5)
    assert [(e.message.tp[1], e.message.offset) for e in taken] == [(0, 7), (2, 9)]
