"""A deadline on a service's stop: past it, the process exits hard (status 1).

A Faust app's stop waits for in-flight work and a last commit, which never come while Kafka
is unreachable. A stop that never ends leaves a process that serves nothing and that nothing
restarts: Compose restarts a container when it exits, Kubernetes only once the liveness
probe has failed long enough. Exiting hard is safe for hookstream's services: what they did
not commit is read again by the next owner (the worker's open transactions abort, and
without its clean-stop marker its next start rebuilds the local tables).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from hookstream.core.compat import faust as faust_compat
from hookstream.core.logs import get_logger

log = get_logger(__name__)


class StopDeadline:
    """Exits the process `seconds` after `arm`, logging `event` first, unless it has ended
    by then."""

    def __init__(
        self, seconds: float, event: str, *, exit_process: Callable[[int], Any] = os._exit
    ) -> None:
        self.seconds = seconds
        self.event = event
        self._exit = exit_process
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        """Start the countdown; later calls keep the first one's."""
        if self._timer is None:
            self._timer = threading.Timer(self.seconds, self._give_up)
            self._timer.daemon = True
            self._timer.start()

    def _give_up(self) -> None:
        log.error(self.event, seconds=self.seconds)
        self._exit(1)


class BoundedWorker(faust_compat.Worker):
    """Faust's worker, whose stop on SIGTERM or SIGINT ends by `deadline`."""

    def __init__(self, *args: Any, deadline: StopDeadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = deadline

    def on_stop_signal(self) -> None:
        """Arm the deadline of the stop that SIGTERM or SIGINT begins."""
        self.deadline.arm()
