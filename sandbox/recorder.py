"""What the sandbox saw: every accepted event in arrival order, and counts of every answer.

Duplicates (same contact, event name and created_at, as Intercom identifies an event) are
still accepted with 202 and recorded with `duplicate: true`, as Intercom answers them
normally and counts them against the rate limit.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from hookstream.sandbox.validation import DataEvent


@dataclass(frozen=True)
class AcceptedEvent:
    """One accepted event."""

    seq: int
    received_at: float
    request_id: str
    duplicate: bool
    intercom_version: str
    event: dict[str, Any]
    ignored_metadata_keys: tuple[str, ...]
    workspace: str = "default"

    def as_dict(self) -> dict[str, Any]:
        """The entry as JSON."""
        return {
            "seq": self.seq,
            "received_at": self.received_at,
            "request_id": self.request_id,
            "duplicate": self.duplicate,
            "intercom_version": self.intercom_version,
            "event": self.event,
            "ignored_metadata_keys": list(self.ignored_metadata_keys),
            "workspace": self.workspace,
        }


@dataclass
class Recorder:
    """The accepted log (bounded by `max_recorded`) and the answer counters."""

    max_recorded: int
    accepted: deque[AcceptedEvent] = field(init=False)
    _seen: OrderedDict[tuple[str, str, str, str, int], None] = field(init=False)
    by_status: Counter[int] = field(init=False)
    calls: int = 0
    duplicates: int = 0
    dropped: int = 0
    injected_errors: int = 0
    injected_timeouts: int = 0
    _seq: int = 0

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything."""
        self.accepted = deque()
        self._seen = OrderedDict()
        self.by_status = Counter()
        self.calls = self.duplicates = self.dropped = 0
        self.injected_errors = self.injected_timeouts = self._seq = 0

    def answered(self, status: int) -> None:
        """Count one answer of the API."""
        self.calls += 1
        self.by_status[status] += 1

    def accept(
        self,
        event: DataEvent,
        *,
        received_at: float,
        request_id: str,
        version: str,
        workspace: str = "default",
    ) -> AcceptedEvent:
        """Record an accepted event; say whether Intercom would count it as a duplicate."""
        key = (workspace, *event.dedup_key)  # Intercom deduplicates within a workspace
        duplicate = key in self._seen
        if duplicate:
            self.duplicates += 1
        else:
            self._seen[key] = None
            if len(self._seen) > self.max_recorded:
                self._seen.popitem(last=False)
        self._seq += 1
        entry = AcceptedEvent(
            seq=self._seq,
            received_at=received_at,
            request_id=request_id,
            duplicate=duplicate,
            intercom_version=version,
            event=event.body,
            ignored_metadata_keys=event.ignored_metadata_keys,
            workspace=workspace,
        )
        self.accepted.append(entry)
        if len(self.accepted) > self.max_recorded:
            self.accepted.popleft()
            self.dropped += 1
        return entry

    def since(self, seq: int, limit: int | None = None) -> list[AcceptedEvent]:
        """Accepted events with a sequence number above `seq`, oldest first."""
        if not self.accepted or self.accepted[-1].seq <= seq:
            return []
        start = max(seq - self.accepted[0].seq + 1, 0)
        stop = None if limit is None else start + limit
        return list(islice(self.accepted, start, stop))

    def unique_events(self) -> list[AcceptedEvent]:
        """Accepted events that were not duplicates, oldest first."""
        return [entry for entry in self.accepted if not entry.duplicate]

    def stats(self) -> dict[str, Any]:
        """Counters as JSON."""
        accepted_total = self.by_status.get(202, 0)
        return {
            "calls": self.calls,
            "accepted": accepted_total,
            "unique_accepted": accepted_total - self.duplicates,
            "duplicates": self.duplicates,
            "rate_limited": self.by_status.get(429, 0),
            "errors": self.calls - accepted_total,
            "injected_errors": self.injected_errors,
            "injected_timeouts": self.injected_timeouts,
            "by_status": {str(status): count for status, count in sorted(self.by_status.items())},
            "recorded": len(self.accepted),
            "dropped_from_log": self.dropped,
        }
