"""Which offsets of one dead-letter partition a replay group has settled, so that a replay run
twice moves nothing twice, while records a filter left behind stay for a later replay.

It lives where Kafka keeps a consumer group's progress: the committed offset is the *floor*
(every offset below it is settled) and the commit's metadata string lists the settled ranges
above it, half-open, as `hsr1:120-135,200-201`. An offset is settled when its record was
moved, or when it holds no record a consumer sees (a transaction marker, an aborted record).
A record a filter skipped is a hole: the floor stops below it until a replay moves it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

PREFIX = "hsr1:"
MAX_METADATA_CHARS = 3000
"""Brokers refuse commit metadata over `offset.metadata.max.bytes` (default 4096)."""
_RANGE_CHARS = 2 * 19 + 2  # two 63-bit offsets, a dash, a comma


@dataclass(slots=True)
class Ledger:
    """The settled offsets of one partition: all below `floor`, plus `ranges` above it
    (sorted, disjoint, not touching, each above the floor)."""

    floor: int = 0
    ranges: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def decode(cls, offset: int, metadata: str | None) -> Ledger:
        """The ledger of a committed offset and its metadata (-1: nothing committed). Metadata
        it did not write is ignored: then only the committed offset counts."""
        ledger = cls(max(offset, 0))
        if metadata and metadata.startswith(PREFIX):
            try:
                spans = [part.split("-") for part in metadata[len(PREFIX) :].split(",") if part]
                for start, end in spans:
                    ledger.settle(int(start), int(end))
            except ValueError:
                ledger.ranges = []
        return ledger

    def encode(self) -> str:
        """The commit metadata for this ledger."""
        return PREFIX + ",".join(f"{start}-{end}" for start, end in self.ranges)

    def has_room(self, more_ranges: int = 1) -> bool:
        """Whether `more_ranges` ranges can still be added within the metadata limit."""
        return len(self.encode()) + more_ranges * _RANGE_CHARS <= MAX_METADATA_CHARS

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
        merged: list[tuple[int, int]] = []
        for low, high in self.ranges:
            if high < start or low > end:  # apart: keep
                merged.append((low, high))
            else:  # overlapping or touching: absorb
                start, end = min(start, low), max(end, high)
        bisect.insort(merged, (start, end))
        self.ranges = merged
        self._absorb()

    def raise_floor(self, offset: int) -> None:
        """Settle everything below `offset` (the log start: older records are gone)."""
        if offset > self.floor:
            self.floor = offset
            self.ranges = [(max(low, offset), high) for low, high in self.ranges if high > offset]
            self._absorb()

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

    def hole(self, offset: int) -> None:
        """The record at `offset` stays in the dead-letter topic."""
        self.cursor = offset + 1

    def reached(self, offset: int) -> None:
        """Every record below `offset` was seen. The gap since the last record is settled when
        that touches settled offsets (else it would only add a range)."""
        if offset > self.cursor and self.ledger.is_settled(self.cursor - 1):
            self.ledger.settle(self.cursor, offset)
        self.cursor = max(self.cursor, offset)
