"""Events sent recently, so the sink does not pay a call for an event Intercom already has.

Intercom deduplicates events by (contact, event name, created_at) and answers a duplicate
with 202 but charges it to the rate limit. The sink remembers what Intercom accepted for
`window_seconds` (default 24 h) and skips a repeat.

A bounded in-process structure, not a faust table, on purpose:
- Records are keyed by the identifier, so a contact's events, repeats included, reach the
  same partition and therefore the same replica: a local memory sees them.
- Forgetting is harmless: Intercom deduplicates anyway, a forgotten repeat costs one call.
  A changelogged table would write to Kafka once per event (doubling the sink's writes) and
  be restored on every restart and rebalance, to save calls that only restarts make.
- It is bounded: at most about `max_entries` 16-byte digests, about 90 bytes each with the
  set's overhead (1,000,000 ≈ 90 MB). The oldest are forgotten first, so at a sustained high
  rate the effective window is `max_entries / rate` (at Intercom's full 10,000 calls a
  minute, 100 minutes for a million entries): still the repeats that matter, producer
  retries and re-sends after a crash, which come minutes apart.

Digests are kept in time buckets (`BUCKETS` per window): expiring and evicting drop whole
buckets, so an event is remembered for at least the window and at most one bucket longer,
and the count may pass `max_entries` by the newest bucket until it closes.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hookstream.core.dataevents import Identity

Clock = Callable[[], float]
BUCKETS = 32


def _digest(identity: Identity) -> bytes:
    kind, identifier, name, created_at = identity
    raw = f"{kind}\x00{identifier}\x00{name}\x00{created_at}".encode()
    return hashlib.blake2b(raw, digest_size=16).digest()


@dataclass(slots=True)
class _Bucket:
    start: float
    digests: set[bytes] = field(default_factory=set)


class RecentlySent:
    """What Intercom accepted within the last `window_seconds` (0 turns it off)."""

    def __init__(
        self, window_seconds: float, max_entries: int, clock: Clock = time.monotonic
    ) -> None:
        self.window_seconds = window_seconds
        self.max_entries = max_entries
        self._bucket_seconds = window_seconds / BUCKETS
        self._clock = clock
        self._buckets: deque[_Bucket] = deque()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def seen(self, identity: Identity) -> bool:
        """Whether Intercom accepted this event within the window."""
        if not self.window_seconds:
            return False
        self._expire(self._clock())
        digest = _digest(identity)
        return any(digest in bucket.digests for bucket in self._buckets)

    def remember(self, identity: Identity) -> None:
        """Intercom accepted this event now."""
        if not self.window_seconds:
            return
        now = self._clock()
        self._expire(now)
        if not self._buckets or now >= self._buckets[-1].start + self._bucket_seconds:
            self._buckets.append(_Bucket(now))
        digests = self._buckets[-1].digests
        digest = _digest(identity)
        if digest not in digests:
            digests.add(digest)
            self._count += 1
        while self._count > self.max_entries and len(self._buckets) > 1:
            self._count -= len(self._buckets.popleft().digests)

    def _expire(self, now: float) -> None:
        buckets = self._buckets
        horizon = self.window_seconds + self._bucket_seconds
        while buckets and now - buckets[0].start >= horizon:
            self._count -= len(buckets.popleft().digests)
