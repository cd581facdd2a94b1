"""The outbox: records held per source partition until the commit of their events' offsets."""

from __future__ import annotations

import contextvars
import weakref
from dataclasses import dataclass

import pytest
from faust import streams
from faust.types import TP

from hookstream.streams._outbox import Outbox

RAW_0, RAW_1 = TP("raw", 0), TP("raw", 1)


@dataclass
class Message:
    tp: TP
    offset: int


@dataclass
class Event:
    message: Message


def add_during(outbox: Outbox, tp: TP, offset: int, topic: str) -> None:
    """`outbox.add` as the agent calls it: while Faust's current event is at tp/offset."""
    event = Event(Message(tp, offset))

    def add() -> None:
        streams._current_event.set(weakref.ref(event))  # what Faust's stream iterator does
        outbox.add(topic, b"key", b"value", [])

    contextvars.copy_context().run(add)


def test_a_commit_takes_the_records_of_the_events_below_its_offset_in_order() -> None:
    outbox = Outbox()
    for offset, topic in [(5, "a"), (5, "changelog"), (6, "b"), (7, "c")]:
        add_during(outbox, RAW_0, offset, topic)
    add_during(outbox, RAW_1, 5, "other")
    assert [(r.offset, r.topic) for r in outbox.take(RAW_0, 7)] == [
        (5, "a"),
        (5, "changelog"),
        (6, "b"),
    ]
    assert outbox.take(RAW_0, 7) == []
    assert [r.topic for r in outbox.take(RAW_0, 8)] == ["c"]
    assert [r.topic for r in outbox.take(RAW_1, 6)] == ["other"]


def test_records_of_partitions_no_longer_assigned_are_dropped() -> None:
    outbox = Outbox()
    add_during(outbox, RAW_0, 1, "a")
    add_during(outbox, RAW_1, 1, "b")
    add_during(outbox, RAW_1, 2, "c")
    assert outbox.keep_only({RAW_0}) == 2
    assert outbox.take(RAW_1, 10) == []
    assert [r.topic for r in outbox.take(RAW_0, 10)] == ["a"]


def test_a_record_outside_of_an_event_is_refused() -> None:
    def add() -> None:
        streams._current_event.set(None)
        Outbox().add("a", None, b"v", [])

    with pytest.raises(RuntimeError, match="outside of an event"):
        contextvars.copy_context().run(add)


def test_its_length_counts_the_records_not_committed_yet() -> None:
    outbox = Outbox()
    assert len(outbox) == 0
    add_during(outbox, RAW_0, 5, "intercom.a")
    add_during(outbox, RAW_0, 6, "intercom.b")
    add_during(outbox, RAW_1, 3, "intercom.c")
    assert len(outbox) == 3
    outbox.take(RAW_0, before=6)
    assert len(outbox) == 2
    outbox.keep_only([RAW_0])
    assert len(outbox) == 1
