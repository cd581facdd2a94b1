"""When the worker commits: at the latest every commit interval, sooner while little waits.

A routed record becomes visible to read_committed consumers at the commit of its event's
transaction, and Faust commits every `HOOKSTREAM_WORKER_COMMIT_INTERVAL_SECONDS` (0.5 s):
at 1,000 webhooks/s that wait was most of the end-to-end latency (p50 376 ms, p99 805 ms).
A commit costs a few round trips per source partition whatever it carries, so committing
more often costs little while few records wait, and under a backlog would spend the
worker's time on commits instead of events.

So besides Faust's timer (which keeps the interval the longest one between commits),
`EarlyCommits` commits as soon as the last commit is
`HOOKSTREAM_WORKER_COMMIT_EARLY_AFTER_SECONDS` old, when the outbox holds records and the
worker is at most `HOOKSTREAM_WORKER_COMMIT_EARLY_MAX_RECORDS` raw records behind (its
consumer lag: the records of its partitions not committed yet; 0 turns early commits off).
A worker keeping up is behind by about its rate times the time since the last commit (some
250 records at 2,500/s); one working through a backlog is thousands behind, and commits at
the interval's pace (the outbox alone would not tell them apart: a backlog fills it only
about twice as fast). The commit is Faust's `Consumer.commit` (one at a time: a call during
a running commit waits for it), so the commit protocol stays the one method of
`streams._transactions`.
"""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic
from typing import Any, Protocol

from mode import Service


class CommitCadence:
    """Decides when an early commit is due, from the time of the last commit, the records
    waiting for one and how far behind its input the worker is."""

    def __init__(
        self,
        *,
        early_after: float,
        early_max_records: int,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self.early_after = early_after
        self.early_max_records = early_max_records
        self._clock = clock
        self._last_commit = clock()

    def committed(self) -> None:
        """Note a commit (of any kind) now."""
        self._last_commit = self._clock()

    def early_commit_due(self, *, waiting: int, behind: int) -> bool:
        """Whether to commit now, with `waiting` records held for the next commit and the
        worker `behind` records of its input not committed yet."""
        return (
            waiting > 0
            and behind <= self.early_max_records
            and self.early_max_records > 0
            and self._clock() - self._last_commit >= self.early_after
        )

    def next_check_in(self) -> float:
        """Seconds until an early commit can next be due (a quarter of the early interval at
        least, so an idle worker does not spin)."""
        until_due = self._last_commit + self.early_after - self._clock()
        return max(until_due, self.early_after / 4)


class _Committer(Protocol):
    """What `EarlyCommits` needs of the app (`streams.app.WorkerApp`)."""

    @property
    def consumer(self) -> Any: ...

    def is_ready(self) -> bool: ...


class EarlyCommits(Service):
    """Commits through the app's consumer whenever the app routes (tables recovered, not
    rebalancing, not crashed) and the cadence says an early commit is due, given the
    records `waiting` for a commit and the input records the worker is `behind`."""

    def __init__(
        self,
        app: _Committer,
        cadence: CommitCadence,
        *,
        waiting: Callable[[], int],
        behind: Callable[[], int],
        **kwargs: Any,
    ) -> None:
        self.app = app
        self.cadence = cadence
        self.waiting = waiting
        self.behind = behind
        super().__init__(**kwargs)

    @Service.task
    async def _commit_early(self) -> None:
        if self.cadence.early_max_records == 0:
            return
        while not self.should_stop:
            await self.sleep(self.cadence.next_check_in())
            if not self.app.is_ready():
                continue
            if self.cadence.early_commit_due(waiting=self.waiting(), behind=self.behind()):
                await self.app.consumer.commit()
