"""The sink's rate budget: a local budget per window, and above it Intercom's own headers.

Intercom counts calls in fixed 10-second windows and answers every call with
`X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix seconds at which
the window ends). `RateBudget.acquire()` is awaited before every call and
`RateBudget.observe()` after it:

- Local budget: at most `calls_per_window` calls per window from this replica (the app's
  limit split across replicas), so replicas that start together cannot overrun the app.
- Headers: once an answer has told us the window, the budget follows Intercom's windows and
  Intercom's count. Intercom's remaining only falls within a window, so the lowest
  `X-RateLimit-Remaining` seen is its freshest count; less every call of ours still in flight
  (each may or may not have been counted yet), it errs low, and it recovers as soon as those
  calls are answered (a low guess is never kept for the rest of the window). A small reserve
  is kept for what the correction cannot see (another replica's calls): 1% of the limit, at
  least one call.
- Pacing: the calls still allowed are spread evenly over the time left in the window (less
  a 5% slack, to absorb a pause of the process), so the sink arrives at the reset with calls
  left rather than drawing a 429 and waiting out the rest of the window. Each call is due one
  spacing after the previous call was *due*, not after it was made: a late wake-up (timers
  fire a millisecond or more late, the loop is busy) is made up at once instead of pushing
  the window's calls towards its end. Idle time is not lost either: when calls have been
  scarce the spacing shrinks (the made-up time is capped, so a pause is no burst).
- Clock skew: no call is made in the first `skew_seconds` after a reset (0.25 s for 10-s
  windows), since a call that Intercom counts in the old window would overrun it. A 429
  after the reset Intercom announced means its clock is behind ours: the wait grows.
- 429: every caller pauses until the reset (no busy retries), then resumes.

Callers are served one at a time in arrival order (an asyncio lock), which keeps the pacing
exact and hands out calls first come, first served.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from hookstream.core.logs import get_logger

log = get_logger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# A reset within this many seconds of the one we know is the same window (Intercom's reset is
# whole seconds; ours may be computed).
_SAME_WINDOW_TOLERANCE = 0.5
# Pacing aims to spend the window's calls by this share of the window before its end, so a
# pause of the process (GC, a busy neighbour) late in the window does not waste budget.
_SLACK_SHARE = 0.05
# How much the wait after a reset grows when Intercom answers 429 after its reset.
_SKEW_STEP = 0.25
# Pacing makes up at most this share of the window when calls were made late (a late
# wake-up, a busy loop): enough for timer jitter, too little for a burst after a pause.
_CATCH_UP_SHARE = 0.01


@dataclass(frozen=True, slots=True)
class RateHeaders:
    """Intercom's `X-RateLimit-*` headers of one answer (None where absent or unreadable)."""

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> RateHeaders:
        """Read the three headers from an answer's (case-insensitive) headers."""
        return cls(
            limit=_int(headers.get("x-ratelimit-limit")),
            remaining=_int(headers.get("x-ratelimit-remaining")),
            reset=_float(headers.get("x-ratelimit-reset")),
        )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class Ticket:
    """One call the budget let through: its sequence number, handed back to `observe`."""

    seq: int


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    """The budget as the metrics show it."""

    allowed: int
    calls_per_window: int
    server_limit: int | None
    server_remaining: int | None
    window_end: float | None
    paused_until: float
    in_flight: int


class RateBudget:
    """Hands out calls within the local budget and Intercom's headers (see the module doc)."""

    def __init__(
        self,
        *,
        calls_per_window: int,
        window_seconds: float = 10.0,
        reserve_share: float = 0.01,
        skew_seconds: float | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if calls_per_window < 1:
            raise ValueError("calls_per_window must be at least 1")
        self.calls_per_window = calls_per_window
        self.window_seconds = window_seconds
        self.reserve_share = reserve_share
        self.skew_seconds = (
            skew_seconds if skew_seconds is not None else min(0.25, window_seconds * 0.025)
        )
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._window_end: float | None = None
        self._aligned = False  # window_end comes from Intercom's X-RateLimit-Reset
        self._issued = 0
        self._server_limit: int | None = None
        self._lowest_remaining: int | None = None  # Intercom's freshest count in this window
        self._carried: set[int] = set()  # calls from before a jump, counted in this window
        self._paused_until = 0.0
        self._last_due = -math.inf
        self._seq = 0
        self._in_flight: set[int] = set()

    @classmethod
    def for_replica(
        cls, limit_per_minute: int, replicas: int, window_seconds: float = 10.0
    ) -> RateBudget:
        """The budget of one of `replicas` sharing an app's per-minute limit."""
        per_window = limit_per_minute * window_seconds / 60 / replicas
        return cls(calls_per_window=max(1, math.floor(per_window)), window_seconds=window_seconds)

    async def acquire(self) -> Ticket:
        """Wait until a call is allowed, then count it. Give the ticket to `observe`."""
        async with self._lock:
            while True:
                now = self._clock()
                wait = self._wait_before_next(now)
                if wait <= 0:
                    return self._issue(now, due=now + wait)
                await self._sleep(wait)

    def observe(
        self,
        ticket: Ticket,
        rate: RateHeaders,
        *,
        limited: bool = False,
        retry_after: float | None = None,
    ) -> None:
        """Learn from the answer (or the failure) of a call made with `ticket`. `limited`: it
        was a 429; `retry_after`: a Retry-After the answer carried, in seconds."""
        self._in_flight.discard(ticket.seq)
        now = self._clock()
        if rate.limit is not None:
            self._server_limit = rate.limit
        current_window = rate.reset is not None and self._learn_window(ticket, rate.reset)
        if not current_window and ticket.seq in self._carried and rate.reset is not None:
            self._issued -= 1  # counted in the window before: not one of this window's calls
        self._carried.discard(ticket.seq)
        if current_window and rate.remaining is not None:
            lowest = self._lowest_remaining
            self._lowest_remaining = (
                rate.remaining if lowest is None else min(lowest, rate.remaining)
            )
        if limited:
            self._after_429(now, rate.reset, retry_after)

    def _after_429(self, now: float, reset: float | None, retry_after: float | None) -> None:
        self._lowest_remaining = 0
        end = self._window_end if self._window_end is not None else now
        if reset is not None and reset <= now:
            # Intercom still counts a window its own header says is over: its clock, or its
            # rounding of the reset, is behind ours. Wait that much longer after every reset.
            self.skew_seconds = min(
                self.window_seconds / 2, max(self.skew_seconds, now - reset + _SKEW_STEP)
            )
            until = reset + self.skew_seconds
            log.warning("intercom_window_late", skew_seconds=round(self.skew_seconds, 3))
        elif end > now:
            until = end + self.skew_seconds
        else:
            until = now + self.window_seconds
        if retry_after is not None:
            until = max(until, now + retry_after)
        self._paused_until = max(self._paused_until, until)

    def release(self, ticket: Ticket) -> None:
        """The call of `ticket` ended without an answer (a network error or a timeout)."""
        self._in_flight.discard(ticket.seq)
        self._carried.discard(ticket.seq)

    def snapshot(self) -> BudgetSnapshot:
        """The current state, for metrics."""
        return BudgetSnapshot(
            allowed=max(self._allowed(), 0),
            calls_per_window=self.calls_per_window,
            server_limit=self._server_limit,
            server_remaining=self._server_remaining(),
            window_end=self._window_end,
            paused_until=self._paused_until,
            in_flight=len(self._in_flight),
        )

    # -- internals ------------------------------------------------------------------------

    def _server_remaining(self) -> int | None:
        """Intercom's freshest remaining, less our calls it may not have counted yet."""
        if self._lowest_remaining is None:
            return None
        return self._lowest_remaining - len(self._in_flight)

    def _allowed(self) -> int:
        allowed = self.calls_per_window - self._issued
        remaining = self._server_remaining()
        if remaining is not None:
            allowed = min(allowed, remaining - self.reserve)
        return allowed

    @property
    def reserve(self) -> int:
        """Calls of Intercom's window left unspent, for what our count cannot see."""
        limit = self._server_limit if self._server_limit is not None else self.calls_per_window
        return max(1, math.ceil(limit * self.reserve_share))

    def _wait_before_next(self, now: float) -> float:
        if now < self._paused_until:
            return self._paused_until - now
        self._roll(now)
        assert self._window_end is not None  # noqa: S101 - _roll always sets it
        if now >= self._window_end:  # within the skew margin after a reset
            return self._window_end + self.skew_seconds - now
        allowed = self._allowed()
        if allowed <= 0:
            return self._window_end + self.skew_seconds - now
        finish_by = self._window_end - self.window_seconds * _SLACK_SHARE
        spacing = max(finish_by - now, 0.0) / allowed
        return self._last_due + spacing - now

    def _roll(self, now: float) -> None:
        end = self._window_end
        if end is None:
            self._start_window(now + self.window_seconds, aligned=False)
        elif now >= end + self.skew_seconds:
            if self._aligned:
                windows = math.floor((now - end) / self.window_seconds) + 1
                self._start_window(end + windows * self.window_seconds, aligned=True)
            else:
                self._start_window(now + self.window_seconds, aligned=False)

    def _start_window(self, end: float, *, aligned: bool) -> None:
        self._window_end = end
        self._aligned = aligned
        self._issued = 0
        self._lowest_remaining = None
        self._carried = set()

    def _issue(self, now: float, *, due: float) -> Ticket:
        # The next call is due one spacing after this one was due; at most
        # `_CATCH_UP_SHARE` of the window is made up when calls fell behind or were scarce,
        # and nothing at the start of a window (its first call is no burst).
        catch_up = self.window_seconds * _CATCH_UP_SHARE if self._issued else 0.0
        self._last_due = max(due, now - catch_up)
        self._seq += 1
        self._issued += 1
        self._in_flight.add(self._seq)
        return Ticket(self._seq)

    def _learn_window(self, ticket: Ticket, reset: float) -> bool:
        """Follow Intercom's window; False when `reset` names a window already over."""
        end = self._window_end
        if end is not None and self._aligned:
            if reset < end - _SAME_WINDOW_TOLERANCE:
                return False
            if reset <= end + _SAME_WINDOW_TOLERANCE:
                return True
        # A window we did not know: Intercom's clock is the truth. Our calls that may count
        # in it are this one and every one still in flight; those an answer later places in
        # the window before are taken off again.
        self._start_window(reset, aligned=True)
        self._carried = set(self._in_flight)
        self._issued = 1 + len(self._carried)
        return True
