"""In-order acknowledgement: a record is handed back to Faust (acked, so its offset may be
committed) only once it and every record before it in its partition are final.

Records finish out of order (another contact's event waits out a retry while later ones
are accepted), but an offset commit says "everything before this is done". Faust commits
the highest run of consecutive acked offsets, and its check for a gap before that run
misses a gap right after the committed offset, so acking out of order could commit past a
record still in flight. Acking each partition's records strictly in offset order keeps
Faust's acked list a single run that starts at the committed offset.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field


@dataclass(slots=True)
class _Entry:
    offset: int
    ack: Callable[[], Awaitable[object]]
    final: bool = False


@dataclass(slots=True)
class _Partition:
    entries: deque[_Entry] = field(default_factory=deque)
    by_offset: dict[int, _Entry] = field(default_factory=dict)
    acked_through: int | None = None


class InOrderAcks:
    """Tracks the records taken per partition and acks each one's prefix of finals."""

    def __init__(self) -> None:
        self._partitions: dict[Hashable, _Partition] = {}
        self._pending = 0

    @property
    def pending(self) -> int:
        """Records taken and not yet acked (in flight, or final behind one in flight)."""
        return self._pending

    def acked_through(self, partition: Hashable) -> int | None:
        """The highest offset acked in `partition`, if any."""
        state = self._partitions.get(partition)
        return state.acked_through if state else None

    def next_to_finish(self, partition: Hashable) -> int | None:
        """The lowest offset of `partition` not yet acked, if known."""
        state = self._partitions.get(partition)
        if state is None:
            return None
        if state.entries:
            return state.entries[0].offset
        return None if state.acked_through is None else state.acked_through + 1

    def add(self, partition: Hashable, offset: int, ack: Callable[[], Awaitable[object]]) -> None:
        """A record was taken; records of a partition are added in offset order."""
        state = self._partitions.setdefault(partition, _Partition())
        if offset in state.by_offset:
            raise ValueError(f"offset {offset} of {partition!r} is taken already")
        if state.entries and offset <= state.entries[-1].offset:
            raise ValueError(f"offset {offset} of {partition!r} is out of order")
        entry = _Entry(offset, ack)
        state.entries.append(entry)
        state.by_offset[offset] = entry
        self._pending += 1

    async def finish(self, partition: Hashable, offset: int) -> int:
        """The record is final; ack it and the final records after it if nothing before it
        is still in flight. Returns how many records were acked."""
        state = self._partitions.get(partition)
        if state is None or offset not in state.by_offset:
            return 0  # released (the partition moved to another replica)
        state.by_offset[offset].final = True
        acked = 0
        entries = state.entries
        while entries and entries[0].final:
            entry = entries.popleft()
            del state.by_offset[entry.offset]
            self._pending -= 1
            state.acked_through = entry.offset
            await entry.ack()
            acked += 1
        return acked

    def forget(self, partition: Hashable) -> int:
        """Drop a partition's records without acking them (the partition went to another
        replica, which reads them again from the committed offset). Returns how many."""
        state = self._partitions.pop(partition, None)
        if state is None:
            return 0
        self._pending -= len(state.entries)
        return len(state.entries)
