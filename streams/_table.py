"""A Faust table whose changelog records join the transaction of the event that made them.

Faust's tables queue changelog records in the producer's buffer and publish them from a
background task. Under exactly-once that lets a table write miss the transaction of the
event that made it (the buffer may still hold it when the offsets commit), so a crash
could forget an id the worker already routed. This table puts its changelog records in the
app's outbox (`streams._outbox`) with the event's other records, so the commit of the
event's offset produces them in its transaction (compare faust-streaming issue
#177, records produced outside the transaction). `send_changelog` replaces Faust's
`Collection.send_changelog` (faust/tables/base.py).

A set goes straight to the outbox (`on_key_set` replaces Faust's `Table.on_key_set`,
faust/tables/table.py): Faust makes each changelog record a `FutureMessage` through the
topic's serializers, then keeps a windowed table's key expiry and tells the sensors. This
table's keys and values are bytes with raw serializers (written as they are), it has no
window, and the worker's monitor ignores table sets, so what is left is the record: a set
took 10.8 us Faust's way and 3.0 us this way (a memory store, the same record in the outbox).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import faust
from aiokafka.structs import RecordMetadata
from faust.stores.base import SerializedStore

from hookstream.core.compat import faust as faust_compat
from hookstream.streams._outbox import Outbox


class EagerChangelogTable(faust.Table[bytes, bytes]):
    """A `faust.Table` whose changelog records go through an `Outbox`."""

    def __init__(self, *args: Any, outbox: Outbox, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outbox = outbox
        if (self.key_serializer, self.value_serializer) != ("raw", "raw"):
            raise ValueError(
                f"table {self.name}: keys and values go to the changelog as they are, so both"
                f" serializers must be raw (not {self.key_serializer}, {self.value_serializer})"
            )
        if self.window is not None:
            raise ValueError(f"table {self.name}: a windowed table would need Faust's key expiry")

    def on_key_set(self, key: bytes, value: bytes) -> None:
        """Put the changelog record of `key` = `value` in the outbox, in the partition of
        the current event (Faust's `partition_for_key`)."""
        self.outbox.add(
            self.changelog_topic_name,
            key,
            value,
            [],
            partition=self.partition_for_key(key),
            on_delivered=self._changelog_written,
        )

    def get(self, key: Any, default: Any = None) -> Any:
        """The value of `key`, else `default`, in one store lookup. Faust's `get` read the
        store twice for a present key (`in`, then the value) and raised and caught a
        `KeyError` for a missing one (most ids: they are new), with a sensor call each time."""
        store = self.data
        if not isinstance(store, SerializedStore):  # the memory store keeps values as given
            return store.data.get(key, default)
        return faust_compat.store_get(store, key, default)

    def send_changelog(
        self,
        partition: int | None,
        key: Any,
        value: Any,
        key_serializer: Any = None,
        value_serializer: Any = None,
    ) -> Any:
        """Put the changelog record of a change in the outbox."""
        future = self.changelog_topic.as_future_message(
            key=key,
            value=value,
            partition=partition,
            key_serializer=key_serializer or self.key_serializer,
            value_serializer=value_serializer or self.value_serializer,
            callback=faust_compat.changelog_sent_callback(self),
            eager_partitioning=True,
        )
        message = future.message
        headers = message.headers  # Faust's: a mapping, a list of pairs or None
        self.outbox.add(
            self.changelog_topic.get_topic_name(),
            message.key,
            message.value,
            list(headers.items()) if isinstance(headers, Mapping) else list(headers or ()),
            partition=message.partition,
            on_delivered=partial(self._changelog_delivered, future),
        )
        return future

    def _changelog_delivered(self, future: Any, metadata: RecordMetadata) -> None:
        future.set_result(metadata)
        self._changelog_written(metadata)

    def _changelog_written(self, metadata: RecordMetadata) -> None:
        # Faust notes the offset to persist at the commit
        faust_compat.changelog_sent_callback(self)(_Written(metadata))


class _Written:
    """A delivered changelog record as Faust's callback reads it (a done future)."""

    __slots__ = ("metadata",)

    def __init__(self, metadata: RecordMetadata) -> None:
        self.metadata = metadata

    def result(self) -> RecordMetadata:
        """The record's metadata."""
        return self.metadata
