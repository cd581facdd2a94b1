"""The records of processed events, held until the commit that includes their offsets.

Under exactly-once an event's outputs (routed records, a dead letter, the changelog record of
its dedup-table write) must be in the transaction that commits its offset. Handing each record
to the producer while the event was processed did that, but the agent then had to wait out
every commit (an event's records must not straddle two transactions), and each new
destination partition cost the transaction a round trip of its own (about 13
AddPartitionsToTxn requests per transaction, a fifth of the worker's time).

Here processing only appends, tagged with the event's source partition and offset. The
commit takes the records of the events below the offsets it commits and produces them into
the transaction of their source partition, all at once, just before it sends the offsets:
the outputs and the offsets of the same events, nothing more. Events processed while a
commit runs stay here for the next one, and the agent never waits.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka.structs import RecordMetadata
from faust import current_event

from hookstream.core.contract import Headers

Delivered = Callable[[RecordMetadata], None]
"""Called with a record's metadata (its offset) once Kafka acknowledged it."""


@dataclass(frozen=True, slots=True)
class Pending:
    """A record waiting for the commit of the event that produced it."""

    offset: int
    """The source offset of the event."""
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None
    headers: Headers
    on_delivered: Delivered | None
    received_at_ms: int | None = None
    """When the ingest received the notification of a routed record (Unix ms), else None:
    the commit observes the delay from then (`hookstream_worker_receive_to_commit_seconds`)."""


class Outbox:
    """Records by source partition, in the order their events were processed."""

    def __init__(self) -> None:
        self._pending: defaultdict[Any, deque[Pending]] = defaultdict(deque)

    def add(  # noqa: PLR0917 - a record's fields
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        partition: int | None = None,
        on_delivered: Delivered | None = None,
        received_at_ms: int | None = None,
    ) -> None:
        """Hold a record of the event being processed (Faust's current event)."""
        event = current_event()
        if event is None:
            raise RuntimeError(f"a record for {topic} produced outside of an event")
        message = event.message
        self._pending[message.tp].append(
            Pending(
                message.offset, topic, key, value, partition, headers, on_delivered, received_at_ms
            )
        )

    def __len__(self) -> int:
        """Records of processed events whose offsets are not committed yet."""
        return sum(len(pending) for pending in self._pending.values())

    def take(self, source: Any, before: int) -> list[Pending]:
        """Remove and return the records of `source`'s events at offsets below `before`."""
        pending = self._pending.get(source)
        taken: list[Pending] = []
        while pending and pending[0].offset < before:
            taken.append(pending.popleft())
        return taken

    def keep_only(self, sources: Iterable[Any]) -> int:
        """Forget the records of every source partition not in `sources` (no longer ours:
        their events are processed again by the new owner); return how many went."""
        keep = set(sources)
        dropped = 0
        for source in [tp for tp in self._pending if tp not in keep]:
            dropped += len(self._pending.pop(source))
        return dropped
