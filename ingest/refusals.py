"""Refused requests, counted and logged so that a flood of them cannot flood the logs.

Every refusal counts in `hookstream_ingest_requests_total{endpoint, outcome=<reason>}` and is
logged at debug (`request_refused`). At info, each reason gets at most one line
(`requests_refused`) per HOOKSTREAM_REFUSED_LOG_INTERVAL_SECONDS, whose `count` is the
refusals of that reason since the previous line (the first refusal of a reason is logged at
once), so an operator sees that a flood happens and how large it is, in a bounded number of
lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from hookstream.core.logs import get_logger
from hookstream.ingest import metrics
from hookstream.ingest.errors import IngestError

log = get_logger(__name__)


@dataclass
class _Reason:
    logged_at: float
    count: int = 0


class RefusalLog:
    """Counts and logs the refusals of one ingest process (one instance per app)."""

    def __init__(
        self, interval_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval_seconds
        self._clock = clock
        self._reasons: dict[str, _Reason] = {}

    def refused(self, endpoint: str, error: IngestError) -> None:
        """Count and log one refused request to `endpoint` (never its body or headers)."""
        reason = error.code
        metrics.REQUESTS.labels(endpoint, reason).inc()
        log.debug("request_refused", endpoint=endpoint, code=reason, reason=error.message)
        now = self._clock()
        state = self._reasons.get(reason)
        if state is None:
            state = self._reasons[reason] = _Reason(logged_at=now - self._interval)
        state.count += 1
        if now - state.logged_at >= self._interval:
            log.info(
                "requests_refused",
                code=reason,
                count=state.count,
                interval_seconds=self._interval,
                last_endpoint=endpoint,
                last_reason=error.message,
            )
            state.logged_at, state.count = now, 0
