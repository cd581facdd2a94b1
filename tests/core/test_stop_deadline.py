"""A stop that cannot finish (Kafka unreachable) ends in a hard exit, once the deadline armed
by SIGTERM or a crash has passed: a process that serves nothing and never exits is restarted
by nothing."""

from __future__ import annotations

import threading

import structlog

from hookstream.core.stop_deadline import StopDeadline


class Exits:
    def __init__(self) -> None:
        self.codes: list[int] = []
        self.happened = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.happened.set()


def test_an_armed_deadline_exits_with_status_1_and_says_why() -> None:
    exits = Exits()
    deadline = StopDeadline(0.05, "sink_stop_timed_out", exit_process=exits)
    with structlog.testing.capture_logs() as logs:
        deadline.arm()
        assert exits.happened.wait(5)
    assert exits.codes == [1]
    assert {"event": "sink_stop_timed_out", "seconds": 0.05, "log_level": "error"} in logs


def test_a_deadline_not_armed_never_exits() -> None:
    exits = Exits()
    StopDeadline(0.01, "sink_stop_timed_out", exit_process=exits)
    assert not exits.happened.wait(0.2)


def test_arming_again_keeps_the_first_countdown() -> None:
    exits = Exits()
    deadline = StopDeadline(0.2, "worker.stop_timed_out", exit_process=exits)
    deadline.arm()
    deadline.arm()
    assert exits.happened.wait(5)
    threading.Event().wait(0.5)  # a second countdown would have ended by now
    assert exits.codes == [1]
