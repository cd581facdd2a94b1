"""The dedup table: a set puts its changelog record in the outbox (the event's transaction),
in the event's partition, and its delivery notes the offset Faust persists at the commit."""

from __future__ import annotations

import contextvars
import weakref
from dataclasses import dataclass
from typing import Any

import faust
import pytest
from aiokafka.structs import RecordMetadata, TopicPartition
from faust import streams
from faust.types import TP

from hookstream.streams._outbox import Outbox
from hookstream.streams._table import EagerChangelogTable

RAW_3 = TP("raw", 3)


@dataclass
class Message:
    tp: TP
    offset: int

    @property
    def topic(self) -> str:
        return self.tp.topic

    @property
    def partition(self) -> int:
        return self.tp.partition


@dataclass
class Event:
    message: Message


class Consumer:
    """What a table asks of the app's consumer: partitions per topic (the raw topic's and
    the changelog's must match). Faust's own would start a thread and an event loop."""

    def topic_partitions(self, topic: str) -> int:
        return 6


def _table(outbox: Outbox, value_type: type = bytes) -> EagerChangelogTable:
    app = faust.App("table-test", broker="kafka://localhost:1", store="memory://")
    app.consumer = Consumer()
    table = EagerChangelogTable(
        app, name="seen", key_type=bytes, value_type=value_type, partitions=6, outbox=outbox
    )
    app.tables.add(table)
    return table


def _set_during(table: EagerChangelogTable, offset: int, key: bytes, value: bytes) -> None:
    """`table[key] = value` as the agent does it: while Faust's current event is raw/3."""
    event = Event(Message(RAW_3, offset))

    def set_key() -> None:
        streams._current_event.set(weakref.ref(event))  # what Faust's stream iterator does
        table[key] = value

    contextvars.copy_context().run(set_key)


def test_a_set_holds_its_changelog_record_for_the_events_commit() -> None:
    outbox = Outbox()
    table = _table(outbox)

    _set_during(table, 41, b"n/notif_1", b"1764950000000")

    assert table.get(b"n/notif_1") == b"1764950000000"
    (record,) = outbox.take(RAW_3, 42)
    assert (record.topic, record.key, record.value, record.partition, record.headers) == (
        "table-test-seen-changelog",
        b"n/notif_1",
        b"1764950000000",
        3,
        [],
    )


def test_a_delivered_changelog_record_is_the_offset_to_persist_at_the_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outbox = Outbox()
    table = _table(outbox)
    persisted: list[tuple[Any, TopicPartition, int]] = []
    monkeypatch.setattr(table.app, "in_transaction", True)
    monkeypatch.setattr(
        table.app.tables,
        "persist_offset_on_commit",
        lambda store, tp, offset: persisted.append((store, tp, offset)),
    )
    _set_during(table, 7, b"n/notif_2", b"1")
    (record,) = outbox.take(RAW_3, 8)
    changelog = TopicPartition("table-test-seen-changelog", 3)
    assert record.on_delivered is not None

    record.on_delivered(RecordMetadata(changelog.topic, 3, changelog, 120, -1, -1, -1))

    assert persisted == [(table.data, changelog, 120)]


def test_a_table_that_would_encode_its_values_is_refused() -> None:
    with pytest.raises(ValueError, match="serializers must be raw"):
        _table(Outbox(), value_type=int)  # Faust's serializer of an int is json
