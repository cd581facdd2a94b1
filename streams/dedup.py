"""Deduplication: a table of key -> first-seen time (Unix ms), with a time to live.

A key seen less than `ttl` ago is a duplicate; an older entry counts as absent (and is
overwritten), so the TTL holds exactly whatever the store still keeps. Keeping the state
bounded is the store's job: RocksDB's TTL compaction drops old entries locally and the
changelog's `compact,delete` retention drops them in Kafka.

Keys:
- `n/<notification id>`: a notification, whichever partition or delivery it came in;
- `p/<topic>/<partition>/<offset>`: a record without an id (ping, a dead letter), so that
  re-processing the same record after a crash does nothing twice. Only the position is
  remembered for a dead letter, never its id: replayed from the dead-letter topic, it
  passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class SeenTable(Protocol):
    """What deduplication needs of a table (a Faust table in the worker, a dict in tests)."""

    def get(self, key: bytes) -> bytes | None:
        """The stored first-seen time of `key`, if any."""

    def __setitem__(self, key: bytes, value: bytes) -> None:
        """Store the first-seen time of `key` (in the worker, its changelog record joins the
        current event's transaction)."""


def id_key(notification_id: str) -> bytes:
    """The table key of a notification id."""
    return b"n/" + notification_id.encode()


def position_key(topic: str, partition: int, offset: int) -> bytes:
    """The table key of a record's position, for records without an id."""
    return f"p/{topic}/{partition}/{offset}".encode()


class Deduplicator:
    """Says whether a key was seen within the TTL, and remembers keys."""

    def __init__(
        self,
        table: SeenTable,
        ttl_seconds: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = table
        self.ttl_ms = int(ttl_seconds * 1000)
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def is_duplicate(self, key: bytes) -> bool:
        """Whether `key` was first seen less than the TTL ago."""
        stored = self.table.get(key)
        if stored is None:
            return False
        try:
            first_seen = int(stored)
        except ValueError:  # not written by this code: treat as unseen, it gets overwritten
            return False
        return self._now_ms() - first_seen < self.ttl_ms

    def remember(self, key: bytes) -> None:
        """Record `key` as seen now."""
        self.table[key] = str(self._now_ms()).encode()
