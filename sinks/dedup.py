"""Events sent recently, so the sink does not pay a call for an event Intercom already has.

Intercom deduplicates events by (contact, event name, created_at) and answers a duplicate
with 202 but charges it to the rate limit. The sink remembers what Intercom accepted for
`window_seconds` (default 24 h) and skips a repeat.

A bounded in-process structure, not a faust table, on purpose:
- Records are keyed by the identifier, so a contact's events, repeats included, reach the
  same partition and therefore the same replica: a local memory sees them.
- Forgetting is harmless: Intercom deduplicates anyway, a forgotten repeat costs one call.
  A changelogged table would write to Kafka once per event (doubling the sink's writes) and
  replay on every restart and rebalance, to save calls that only restarts make.
- It is bounded: at most `max_entries` 16-byte digests (about 110 bytes each with the
  dict's overhead: 1,000,000 entries ≈ 110 MB). The oldest are forgotten first, so at a
  sustained high rate the effective window is `max_entries / rate` (at Intercom's full
  10,000 calls a minute, 100 minutes for a million entries), which still covers the repeats
  that matter: producer retries and the re-sends after a crash, minutes apart.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable

from hookstream.dataevents import Identity

Clock = Callable[[], float]


def _digest(identity: Identity) -> bytes:
    field, identifier, name, created_at = identity
    raw = f"{field}\x00{identifier}\x00{name}\x00{created_at}".encode()
    return hashlib.blake2b(raw, digest_size=16).digest()


class RecentlySent:
    """What Intercom accepted within the last `window_seconds` (0 turns it off)."""

    def __init__(
        self, window_seconds: float, max_entries: int, clock: Clock = time.monotonic
    ) -> None:
        self.window_seconds = window_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._expiry: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(self, identity: Identity) -> bool:
        """Whether Intercom accepted this event within the window."""
        if not self.window_seconds:
            return False
        self._expire()
        return _digest(identity) in self._expiry

    def remember(self, identity: Identity) -> None:
        """Intercom accepted this event now."""
        if not self.window_seconds:
            return
        key = _digest(identity)
        self._expiry[key] = self._clock() + self.window_seconds
        self._expiry.move_to_end(key)
        while len(self._expiry) > self.max_entries:
            self._expiry.popitem(last=False)

    def _expire(self) -> None:
        now = self._clock()
        expiry = self._expiry
        while expiry:
            key, deadline = next(iter(expiry.items()))
            if deadline > now:
                break
            del expiry[key]
