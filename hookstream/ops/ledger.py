"""Which offsets of one dead-letter partition a replay group has settled, so that a replay run
twice moves nothing twice, while records a filter left behind stay for a later replay.

It lives where Kafka keeps a consumer group's progress: the committed offset is the *floor*
(every offset below it is settled) and the commit's metadata string lists the settled ranges
above it, each as the gap since the previous range's end (or the floor) and its length, in
hex: floor 120 with `hsr1:2+3,a+1` means 122-124 and 135 are settled too. An offset is settled
when its record was moved, or when it holds no record a consumer sees (a transaction marker,
an aborted record). A record a filter skipped is a hole: the floor stops below it until a
replay moves it.

Brokers refuse commit metadata over `offset.metadata.max.bytes` (default 4096), so a ledger
holds a few hundred ranges: a filtered replay stops (and says so) when the records it leaves
behind are too scattered among those it moves; a broader replay always goes on, since moving
a hole never needs a new range.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

PREFIX = "hsr1:"
MAX_METADATA_CHARS = 3500
"""Below the brokers' default `offset.metadata.max.bytes` (4096)."""
_WORST_RANGE_CHARS = 2 * 16 + 2  # a new range: two 64-bit hex numbers, `+` and `,`


@dataclass(slots=True)
class Ledger:
    """The settled offsets of one partition: all below `floor`, plus `ranges` above it
    (sorted, disjoint, not touching, each above the floor)."""

    floor: int = 0
    ranges: list[tuple[int, int]] = field(default_factory=list)
    _encoded: str | None = field(default=None, repr=False, compare=False)
    _size_bound: int = field(default=len(PREFIX), repr=False, compare=False)
    """At least `len(self.encode())`, known without encoding."""

    def __post_init__(self) -> None:
        if self.ranges:
            self.encode()  # the exact size, for `fits_after_settling`

    @classmethod
    def decode(cls, offset: int, metadata: str | None) -> Ledger:
        """The ledger of a committed offset and its metadata (-1: nothing committed). Metadata
        it did not write is ignored: then only the committed offset counts."""
        ledger = cls(max(offset, 0))
        if metadata and metadata.startswith(PREFIX):
            try:
                position = ledger.floor
                ranges = []
                for part in filter(None, metadata[len(PREFIX) :].split(",")):
                    gap, length = (int(number, 16) for number in part.split("+"))
                    if gap < 1 or length < 1:
                        raise ValueError(part)
                    ranges.append((position + gap, position + gap + length))
                    position += gap + length
            except ValueError:
                ranges = []
            ledger.ranges = ranges
            ledger._encoded = None
            ledger.encode()  # the exact size
        return ledger

    def encode(self) -> str:
        """The commit metadata for this ledger."""
        if self._encoded is not None:
            return self._encoded
        parts = []
        position = self.floor
        for start, end in self.ranges:
            parts.append(f"{start - position:x}+{end - start:x}")
            position = end
        self._encoded = PREFIX + ",".join(parts)
        self._size_bound = len(self._encoded)
        return self._encoded

    def fits_after_settling(self, start: int, end: int) -> bool:
        """Whether the metadata stays within `MAX_METADATA_CHARS` once `start` to `end - 1`
        are settled."""
        if self._size_bound + _WORST_RANGE_CHARS <= MAX_METADATA_CHARS:
            return True
        if len(self.encode()) + _WORST_RANGE_CHARS <= MAX_METADATA_CHARS:
            return True
        trial = Ledger(self.floor, list(self.ranges))
        trial.settle(start, end)
        return len(trial.encode()) <= MAX_METADATA_CHARS

    def is_settled(self, offset: int) -> bool:
        """Whether `offset` is settled."""
        if offset < self.floor:
            return True
        index = bisect.bisect_right(self.ranges, offset, key=lambda span: span[0]) - 1
        return index >= 0 and self.ranges[index][0] <= offset < self.ranges[index][1]

    def settle(self, start: int, end: int) -> None:
        """Mark offsets `start` to `end - 1` settled."""
        start = max(start, self.floor)
        if start >= end:
            return
        ranges = self.ranges
        # The ranges it overlaps or touches: those ending at or after `start` and starting at
        # or before `end` (found by bisection; the list is sorted by both ends).
        first = bisect.bisect_left(ranges, start, key=lambda span: span[1])
        after = bisect.bisect_right(ranges, end, key=lambda span: span[0])
        if first < after:
            start, end = min(start, ranges[first][0]), max(end, ranges[after - 1][1])
        ranges[first:after] = [(start, end)]
        self._absorb()
        self._changed()

    def raise_floor(self, offset: int) -> None:
        """Settle everything below `offset` (the log start: older records are gone)."""
        if offset > self.floor:
            self.floor = offset
            self.ranges = [(max(low, offset), high) for low, high in self.ranges if high > offset]
            self._absorb()
            self._changed()

    def _changed(self) -> None:
        if self._encoded is not None:  # one change adds at most one range
            self._size_bound = len(self._encoded)
        self._size_bound += _WORST_RANGE_CHARS
        self._encoded = None

    def _absorb(self) -> None:
        while self.ranges and self.ranges[0][0] <= self.floor:
            self.floor = max(self.floor, self.ranges.pop(0)[1])


@dataclass(slots=True)
class PartitionPass:
    """One replay run's walk along a partition, in offset order: each record seen is settled
    (moved now or before) or a hole; the offsets between records hold none a consumer sees,
    so a gap is settled with the settled record after it."""

    ledger: Ledger
    cursor: int

    def settled(self, offset: int) -> None:
        """The record at `offset` is moved (acknowledged), or was settled already."""
        self.ledger.settle(self.cursor, offset + 1)
        self.cursor = offset + 1

    def can_settle(self, offset: int) -> bool:
        """Whether the ledger can still remember the record at `offset` as moved."""
        return self.ledger.fits_after_settling(self.cursor, offset + 1)

    def hole(self, offset: int) -> None:
        """The record at `offset` stays in the dead-letter topic."""
        self.cursor = offset + 1

    def reached(self, offset: int) -> None:
        """Every record below `offset` was seen. The gap since the last record is settled when
        that touches settled offsets (else it would only add a range)."""
        if offset > self.cursor and self.ledger.is_settled(self.cursor - 1):
            self.ledger.settle(self.cursor, offset)
        self.cursor = max(self.cursor, offset)
