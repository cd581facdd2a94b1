"""Intercom's rate limit: fixed windows aligned on the epoch, a call budget per window.

Intercom counts calls in 10-second windows (its docs' example: resets at ...510, ...520)
and reports the window on every answer: `X-RateLimit-Limit` (the window's budget),
`X-RateLimit-Remaining` (what is left of it) and `X-RateLimit-Reset` (Unix seconds at which
the window ends). A call over the budget is refused with 429 and not counted.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]

# What the headers say when the sandbox runs without a limit: a budget no client exhausts.
UNLIMITED_BUDGET = 1_000_000_000
# Per-window counts kept for `/sandbox/stats` (an hour of 10-second windows).
KEPT_WINDOWS = 360


@dataclass
class WindowCounts:
    """What happened in one window."""

    start: float
    limit: int | None
    admitted: int = 0
    rejected: int = 0

    def as_dict(self) -> dict[str, float | int | None]:
        """The window as JSON."""
        return {
            "start": self.start,
            "limit": self.limit,
            "admitted": self.admitted,
            "rejected": self.rejected,
        }


@dataclass(frozen=True)
class Decision:
    """The limiter's answer to one call, with the headers it carries."""

    allowed: bool
    limit: int
    remaining: int
    reset: int

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """The same headers, encoded for an ASGI answer."""
        return [
            (b"x-ratelimit-limit", b"%d" % self.limit),
            (b"x-ratelimit-remaining", b"%d" % self.remaining),
            (b"x-ratelimit-reset", b"%d" % self.reset),
        ]


class FixedWindowLimiter:
    """Counts calls per fixed window; the clock is injectable so tests need not sleep."""

    def __init__(self, limit: int | None, window_seconds: int, clock: Clock) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._windows: OrderedDict[float, WindowCounts] = OrderedDict()

    def _current(self) -> WindowCounts:
        start = math.floor(self._clock() / self.window_seconds) * self.window_seconds
        window = self._windows.get(start)
        if window is None:
            window = WindowCounts(start=start, limit=self.limit)
            self._windows[start] = window
            while len(self._windows) > KEPT_WINDOWS:
                self._windows.popitem(last=False)
        return window

    def _decision(self, window: WindowCounts, *, allowed: bool) -> Decision:
        reset = math.ceil(window.start + self.window_seconds)
        budget = UNLIMITED_BUDGET if self.limit is None else self.limit
        return Decision(allowed, budget, max(budget - window.admitted, 0), reset)

    def acquire(self) -> Decision:
        """Count a call against the current window, or refuse it when the budget is spent."""
        window = self._current()
        if self.limit is not None and window.admitted >= self.limit:
            window.rejected += 1
            return self._decision(window, allowed=False)
        window.admitted += 1
        return self._decision(window, allowed=True)

    def peek(self) -> Decision:
        """The current window's state, without counting a call."""
        window = self._current()
        allowed = self.limit is None or window.admitted < self.limit
        return self._decision(window, allowed=allowed)

    def reconfigure(self, limit: int | None, window_seconds: int) -> None:
        """Change the budget (from now on) and the window length (restarts the count)."""
        if window_seconds != self.window_seconds:
            self._windows.clear()
        self.limit = limit
        self.window_seconds = window_seconds
        current = self._current()
        current.limit = limit

    def reset(self) -> None:
        """Forget every window."""
        self._windows.clear()

    def windows(self) -> list[WindowCounts]:
        """The kept windows, oldest first."""
        return list(self._windows.values())
