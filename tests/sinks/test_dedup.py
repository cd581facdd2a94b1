"""What the sink remembers to skip repeats: for the window, within a bound."""

from __future__ import annotations

import tracemalloc

from hookstream.sinks.dedup import RecentlySent


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def identity(n: int) -> tuple[str, str, str, int]:
    return ("user_id", f"user-{n}", "signed-up", 1_700_000_000 + n)


def test_an_accepted_event_is_seen_until_the_window_ends() -> None:
    clock = Clock()
    recent = RecentlySent(window_seconds=3200, max_entries=100, clock=clock)
    assert not recent.seen(identity(1))
    recent.remember(identity(1))
    assert recent.seen(identity(1))
    assert not recent.seen(identity(2))
    clock.now += 3199
    assert recent.seen(identity(1))
    clock.now += 100 + 1  # the window plus at most one bucket (3200 / 32)
    assert not recent.seen(identity(1))
    assert len(recent) == 0


def test_the_same_event_in_different_fields_or_times_is_a_different_event() -> None:
    recent = RecentlySent(window_seconds=60, max_entries=100)
    recent.remember(("user_id", "ann", "signed-up", 1))
    assert not recent.seen(("email", "ann", "signed-up", 1))
    assert not recent.seen(("user_id", "ann", "signed-up", 2))
    assert not recent.seen(("user_id", "ann", "signed-in", 1))


def test_past_the_bound_the_oldest_are_forgotten_first() -> None:
    clock = Clock()
    recent = RecentlySent(window_seconds=3200, max_entries=20, clock=clock)
    for n in range(40):
        recent.remember(identity(n))
        clock.now += 100  # one bucket each
    assert len(recent) <= 20
    assert recent.seen(identity(39))
    assert not recent.seen(identity(0))


def test_a_zero_window_turns_it_off() -> None:
    recent = RecentlySent(window_seconds=0, max_entries=10)
    recent.remember(identity(1))
    assert not recent.seen(identity(1))
    assert len(recent) == 0


def test_an_entry_costs_under_100_bytes() -> None:
    tracemalloc.start()
    try:
        recent = RecentlySent(window_seconds=86400, max_entries=10**6)
        before = tracemalloc.get_traced_memory()[0]
        for n in range(50_000):
            recent.remember(identity(n))
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(recent) == 50_000
    assert used / 50_000 < 100
