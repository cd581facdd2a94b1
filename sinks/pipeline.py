"""From taken records to final ones: validate, keep each contact's order, skip repeats,
send within each workspace's rate budget with retries, dead-letter what cannot be sent, then
ack in offset order.

Workspaces. Each record belongs to a workspace (its `intercom-app-id` header; without a
tokens file, or without the header, INTERCOM_ACCESS_TOKEN's workspace: `sinks._scheduler`).
Every workspace has its own rate budget (fed by its own token's `X-RateLimit-*` headers),
its own calls in flight (at most `concurrency`, waiting for its budget without holding a
connection slot: a workspace over its budget or paused by a 429 waits alone) and its own
records in flight: at most `max_pending` records of a workspace have a task (in its
contact lanes or its budget); the rest wait in the workspace's queue, started in offset order
as its records finish. A record of a workspace with no token is dead-lettered
(`no_token_for_workspace`); the others flow.

Intake. `Pipeline.submit(records)` is called by the agent with each batch. It starts (or
queues) every record and returns at once unless (a) a workspace holds more than `max_queued`
records in its queue, (b) more than `max_held` records are taken and not yet acked, or (c)
every workspace is parked. So a hot workspace (offered more than its budget) fills its own
queue while the others' records keep flowing; only once its queue is full does intake pause
for all (Kafka's offsets are per partition, not per workspace: reading further would hold an
unbounded backlog in memory). Fair turns: each workspace has its own budget and at most
`concurrency` calls waiting for it, and the connection slots are handed out first come,
first served once a budget allows a call, so a workspace with a backlog takes no turn from
another.

What bounds memory and the re-send window. Offsets are acked in order per partition
(`InOrderAcks`), so a record final behind one still in flight (a hot or parked workspace's,
on the same partition) stays unacked, and so does every record queued. The records taken
and not acked are at most `max_held` plus one batch: that is the re-send window of a crash
(Intercom deduplicates re-sends, at the cost of a call of the budget each) and, with each
held record's body (about 1.5 KB a record in all), the memory bound. With a tokens file the
sink uses HOOKSTREAM_SINK_MAX_HELD_RECORDS (50,000) and HOOKSTREAM_SINK_WORKSPACE_MAX_QUEUED
(20,000); with one workspace there is nothing to read ahead for, so `max_queued` is 0 and
`max_held` the batch size: `max_pending` in flight plus one batch, as before workspaces. A
workspace offered more than its budget for long (or parked while its events keep coming)
fills its queue and then pauses the intake for all: these bounds say how long the others
flow (at 166 events/s, 50,000 held records are five minutes).

A record ends in exactly one final state: accepted by Intercom, skipped as a repeat of one
Intercom accepted, or written to the dead-letter topic (and acknowledged by Kafka). Only
then is it handed to `InOrderAcks`. A 401 or 403 is no final state: it parks the workspace
(its records stay held, unacked, and are neither sent nor dead-lettered: Kafka keeps them
across a restart) until its token changes in the tokens file; one call per token change, no
retry loop. The pipeline stops taking batches, and `not_ready_reason` says why, only when
every workspace is parked. Held rather than moved to a parking topic: nothing to feed back
and no second consumer, each contact's order is kept without care, and a restart finds the
records where they were; the cost is the bound above (a parked workspace whose events keep
coming fills its queue, then pauses the intake: remove it from the tokens file to
dead-letter its events instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_before_delay
from tenacity.wait import wait_random_exponential

from hookstream.core.contract import HEADER_APP_ID
from hookstream.core.dataevents import DataEvent, DataEventInvalid, parse_event
from hookstream.core.logs import get_logger
from hookstream.core.tracing import TRACING_OFF, Tracing
from hookstream.sinks._scheduler import Workspaces, WorkspaceState
from hookstream.sinks.client import Accepted
from hookstream.sinks.deadletter import DeadLetter, DeadLetterWriter, Reason, SourceRecord
from hookstream.sinks.dedup import RecentlySent
from hookstream.sinks.errors import (
    AccessDenied,
    EventRejected,
    RateLimited,
    Retriable,
    SendFailed,
    ServerError,
)
from hookstream.sinks.metrics import SinkMetrics
from hookstream.sinks.offsets import InOrderAcks
from hookstream.sinks.ratelimit import RateBudget, Ticket
from hookstream.sinks.workspaces import Workspace

log = get_logger(__name__)


class Sender(Protocol):
    """What sends one event's body to Intercom (`sinks.client.IntercomClient`)."""

    async def send(self, body: bytes, workspace: Workspace | None = None) -> Accepted:
        """POST the body as `workspace` (None: the default token); raise a
        `sinks.errors.SendFailed` unless Intercom answers 2xx."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter between `initial` and `maximum` seconds, until
    the next try would start after `deadline` seconds from the first."""

    deadline: float
    initial: float = 0.2
    maximum: float = 30.0


class _Lanes:
    """One queue per contact (of a workspace): an event is sent only after the contact's
    earlier ones are final, so Intercom sees each contact's events in the order of the topic."""

    def __init__(self) -> None:
        self._tails: dict[tuple[str, str, str], asyncio.Event] = {}

    @contextlib.asynccontextmanager
    async def turn(self, key: tuple[str, str, str]) -> AsyncIterator[None]:
        previous = self._tails.get(key)
        done = asyncio.Event()
        self._tails[key] = done
        try:
            if previous is not None:
                await previous.wait()
            yield
        finally:
            done.set()
            if self._tails.get(key) is done:
                del self._tails[key]


class Pipeline:
    """Sends taken records to Intercom and acks them once final (see the module doc)."""

    def __init__(
        self,
        *,
        sender: Sender,
        budget: RateBudget,
        dead_letters: DeadLetterWriter,
        metrics: SinkMetrics,
        dedup: RecentlySent,
        concurrency: int,
        retry: RetryPolicy,
        max_pending: int,
        max_queued: int = 0,
        max_held: int | None = None,
        workspaces: Workspaces | None = None,
        on_crash: Callable[[BaseException], Awaitable[None]] | None = None,
        tracing: Tracing = TRACING_OFF,
        group: str = "",
    ) -> None:
        self._sender = sender
        self._budget = budget
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._dedup = dedup
        self._slots = asyncio.Semaphore(concurrency)
        self._retry = retry
        self._max_pending = max_pending
        self._max_queued = max_queued
        self._max_held = max_held if max_held is not None else max_pending + max_queued
        self._workspaces = workspaces or Workspaces(
            default=True,
            named=None,
            default_budget=budget,
            new_budget=lambda: budget,
            concurrency=concurrency,
        )
        self._over_queued: set[WorkspaceState] = set()
        self._on_crash = on_crash
        self._tracing = tracing
        self._group = group
        self._acks = InOrderAcks()
        self._lanes = _Lanes()
        self._tasks: set[asyncio.Task[None]] = set()
        self._by_partition: dict[tuple[str, int], set[asyncio.Task[None]]] = {}
        self._room = asyncio.Event()
        self._halted = asyncio.Event()  # never set: what a stopped pipeline waits on
        self._closed = False
        self._failure: BaseException | None = None
        metrics.ready.set(1)
        self._export_budget_per_window()

    # -- state ----------------------------------------------------------------------------

    @property
    def acks(self) -> InOrderAcks:
        """The per-partition ack tracker (for the lag metric)."""
        return self._acks

    @property
    def not_ready_reason(self) -> str | None:
        """Why the pipeline does not send, or None while it does."""
        if self._failure is not None:
            return f"crashed: {self._failure!r}"
        denied = self._all_denied()
        if denied:
            return denied
        if self._closed:
            return "shutting down"
        return None

    @property
    def workspaces(self) -> Workspaces:
        """The workspaces and their states."""
        return self._workspaces

    def parked(self) -> list[str]:
        """The labels of the workspaces whose token Intercom refused."""
        return [state.label for state in self._workspaces.parked()]

    def _all_denied(self) -> str | None:
        parked = self._workspaces.parked()
        if not parked or len(parked) < self._workspaces.known():
            return None
        if len(parked) == 1:
            return parked[0].denied
        return f"Intercom refused the token of every workspace ({len(parked)})"

    @property
    def pending(self) -> int:
        """Records taken and not yet acked."""
        return self._acks.pending

    # -- intake ---------------------------------------------------------------------------

    async def submit(self, records: Sequence[SourceRecord]) -> None:
        """Start sending `records` (in offset order per partition); return once there is
        room for the next batch. Blocks while every workspace is parked."""
        if self._failure is not None:
            raise self._failure
        if self._closed:
            await self._halted.wait()
        for record in records:
            partition = (record.topic, record.partition)
            self._acks.add(partition, record.offset, _ack_of(record))
            state = self._workspaces.state_for(_app_id(record))
            if state is None or len(state.tasks) < self._max_pending:
                self._start(record, state)
            else:
                state.queue.append(record)
                if len(state.queue) > self._max_queued:
                    self._over_queued.add(state)
        self._metrics.in_flight.set(self._acks.pending)
        while self._intake_full():
            self._room.clear()
            await self._room.wait()
            if self._failure is not None:
                raise self._failure

    def _intake_full(self) -> bool:
        if self._failure is not None:
            return False
        return (
            self._acks.pending > self._max_held
            or bool(self._over_queued)
            or self._all_denied() is not None
        )

    def _start(self, record: SourceRecord, state: WorkspaceState | None) -> None:
        task = asyncio.create_task(self._handle(record, state), name=f"sink-{record.offset}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if state is not None:
            state.tasks.add(task)
            task.add_done_callback(state.tasks.discard)
        by_partition = self._by_partition.setdefault((record.topic, record.partition), set())
        by_partition.add(task)
        task.add_done_callback(by_partition.discard)
        # A callback, not the task's `finally`: a task cancelled before its first step (a
        # rebalance in the turn that took its batch) runs no line of its coroutine.
        task.add_done_callback(functools.partial(self._finished, state))

    def update_workspaces(self, named: Mapping[str, Workspace]) -> None:
        """The tokens file changed: use the new tokens; resume the parked workspaces whose
        token changed (or which left the file: their records are then dead-lettered)."""
        for state in self._workspaces.update(named):
            log.info("workspace_resumed", workspace=state.label, has_token=state.has_token)
            state.denied = None
            state.denied_fingerprint = None
            state.resumed.set()
            state.resumed = asyncio.Event()
        self._metrics.workspaces_parked.set(len(self._workspaces.parked()))
        self._export_budget_per_window()
        if self._all_denied() is None and not self._closed:
            self._metrics.ready.set(1)
        self._room.set()

    def _export_budget_per_window(self) -> None:
        known = max(self._workspaces.known(), 1)
        self._metrics.budget_per_window.set(self._budget.calls_per_window * known)

    async def drain(self, within: float) -> bool:
        """Stop taking batches and wait up to `within` seconds for the records in flight to
        become final. True when none is left."""
        self._closed = True
        self._metrics.ready.set(0)
        # A parked workspace's records wait for a new token: they are not waited for (not
        # acked, Kafka keeps them for the next start); queued records are not started.
        waiting = set(self._tasks)
        for state in self._workspaces.parked():
            waiting -= state.tasks
        if waiting:
            _done, left = await asyncio.wait(waiting, timeout=within)
            if left:
                return False
        return not self._tasks

    async def release(self, partitions: Iterable[tuple[str, int]]) -> int:
        """The partitions went to another replica, which reads them again from the committed
        offset: stop their records (not acked, not dead-lettered). Returns how many."""
        released = 0
        for partition in partitions:
            for state in self._workspaces:  # first, so no cancelled task starts one of them
                kept = [r for r in state.queue if (r.topic, r.partition) != partition]
                state.queue = deque(kept)
                if len(kept) <= self._max_queued:
                    self._over_queued.discard(state)
            tasks = self._by_partition.pop(partition, set())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            released += self._acks.forget(partition)
        self._metrics.in_flight.set(self._acks.pending)
        self._room.set()
        return released

    async def close(self) -> None:
        """Cancel whatever is still in flight (it was not acked, so it is read again)."""
        self._closed = True
        self._metrics.ready.set(0)
        for state in self._workspaces:
            state.queue.clear()
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- one record -----------------------------------------------------------------------

    async def _handle(self, record: SourceRecord, state: WorkspaceState | None) -> None:
        try:
            with self._tracing.consumer(
                record.topic,
                record.key,
                record.headers,
                partition=record.partition,
                offset=record.offset,
                group=self._group,
            ):
                await self._process(record, state)
            await self._acks.finish((record.topic, record.partition), record.offset)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or a failed DLQ write: the record is not final
            await self._crash(exc, record)

    def _finished(self, state: WorkspaceState | None, _task: asyncio.Task[None]) -> None:
        """A record's task ended (final, failed or cancelled): free its turn."""
        if state is not None:
            self._next_of(state)
        self._metrics.in_flight.set(self._acks.pending)
        if not self._intake_full():
            self._room.set()

    def _next_of(self, state: WorkspaceState) -> None:
        """A record of `state` ended (its task is out of `state.tasks`): start its next
        queued ones."""
        if self._closed:
            return
        while state.queue and len(state.tasks) < self._max_pending:
            self._start(state.queue.popleft(), state)
        if len(state.queue) <= self._max_queued:
            self._over_queued.discard(state)

    async def _process(self, record: SourceRecord, state: WorkspaceState | None) -> None:
        try:
            event = parse_event(record.value)
        except DataEventInvalid as exc:
            detail = orjson.dumps(exc.as_dicts()).decode()
            await self._dead_letter(record, DeadLetter("invalid_event", detail))
            return
        if state is None or not state.has_token:
            await self._no_token(record)
            return
        async with self._lanes.turn((state.key, event.identifier_field, event.identifier)):
            if self._dedup.seen(event.identity):
                self._metrics.deduplicated.inc()
                return
            while True:
                try:
                    await self._deliver(event, state)
                except AccessDenied:
                    # Not final: never acked, never dead-lettered; wait for a new token.
                    await state.resumed.wait()
                    if not state.has_token:
                        await self._no_token(record)
                        return
                    continue
                except EventRejected as exc:
                    await self._dead_letter(record, _letter("rejected", exc))
                except Retriable as exc:
                    await self._dead_letter(record, _letter("retries_exhausted", exc))
                else:
                    self._accepted(event, record, state)
                return

    def _accepted(self, event: DataEvent, record: SourceRecord, state: WorkspaceState) -> None:
        self._dedup.remember(event.identity)
        self._metrics.accepted.inc()
        self._metrics.by_workspace.count(state.label, "accepted")
        if record.timestamp is not None:  # a producer's clock may run ahead
            delay = max(0.0, time.time() - record.timestamp)
            self._metrics.arrival_to_accepted.observe(delay)

    async def _no_token(self, record: SourceRecord) -> None:
        workspace = _app_id(record) or "default"
        self._metrics.by_workspace.count(workspace, "no_token")
        detail = f"no access token for workspace {workspace}"
        await self._dead_letter(record, DeadLetter("no_token_for_workspace", detail))

    async def _deliver(self, event: DataEvent, state: WorkspaceState) -> None:
        body = event.body()
        started = time.monotonic()
        try:  # the first try needs none of the retry machinery (it costs ~80 µs a call)
            await self._attempt(body, state)
            return
        except Retriable as exc:
            first_failure: list[Retriable] = [exc]
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, Retriable)),
            stop=stop_before_delay(self._retry.deadline - (time.monotonic() - started)),
            wait=self._backoff,
            before_sleep=self._count_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if first_failure:  # tenacity's first attempt replays the first try's failure
                    raise first_failure.pop()
                await self._attempt(body, state)

    async def _attempt(self, body: bytes, state: WorkspaceState) -> Accepted:
        if state.denied:
            raise AccessDenied(state.denied)
        budget = state.budget
        # The workspace's own calls wait for its budget; a connection slot is taken only
        # once the budget allows the call, so a workspace held by its budget holds no slot.
        async with state.calls:
            ticket = await budget.acquire()
            if state.denied:  # refused while this call waited for the budget
                budget.release(ticket)
                raise AccessDenied(state.denied)
            async with self._slots:
                self._metrics.sent.inc()
                started = time.perf_counter()
                sent_as = state.workspace
                try:
                    accepted = await self._sender.send(body, sent_as)
                except SendFailed as exc:
                    self._metrics.latency.observe(time.perf_counter() - started)
                    self._after_failure(ticket, exc, state)
                    if isinstance(exc, AccessDenied) and not state.denied:
                        if state.workspace is not sent_as:  # refused an old token: try anew
                            raise ServerError(exc.message, status=exc.status) from exc
                        self._park(state, exc)
                    raise
            self._metrics.latency.observe(time.perf_counter() - started)
            budget.observe(ticket, accepted.rate)
            self._metrics.answers.labels(str(accepted.status)).inc()
            return accepted

    def _after_failure(self, ticket: Ticket, exc: SendFailed, state: WorkspaceState) -> None:
        budget = state.budget
        if exc.status is None:
            budget.release(ticket)
            self._metrics.answers.labels(exc.reason).inc()
            return
        limited = isinstance(exc, RateLimited)
        budget.observe(ticket, exc.rate, limited=limited, retry_after=exc.retry_after)
        self._metrics.answers.labels(str(exc.status)).inc()
        if limited:
            self._metrics.rate_limited.inc()
            self._metrics.by_workspace.count(state.label, "rate_limited")
            log.warning(
                "intercom_rate_limited",
                workspace=state.label,
                reset=exc.rate.reset,
                limit=exc.rate.limit,
                paused_for=round(max(budget.snapshot().paused_until - time.time(), 0), 3),
            )

    def _park(self, state: WorkspaceState, exc: AccessDenied) -> None:
        if state.workspace is None:
            state.denied = (
                f"Intercom refused the access token ({exc.status}): stopped consuming; "
                f"fix INTERCOM_ACCESS_TOKEN and restart. {exc.message}"
            )
        else:
            state.denied = (
                f"Intercom refused the token of workspace {state.label} ({exc.status}): its "
                f"events wait on Kafka; change its token in the tokens file. {exc.message}"
            )
            state.denied_fingerprint = state.workspace.fingerprint
        self._metrics.by_workspace.count(state.label, "access_denied")
        self._metrics.workspaces_parked.set(len(self._workspaces.parked()))
        if self._all_denied() is not None:
            self._metrics.ready.set(0)
        log.error(
            "intercom_access_denied", workspace=state.label, status=exc.status, reason=exc.message
        )

    def _backoff(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited):
            # The budget holds every call until the reset; only a Retry-After adds to it.
            return exc.retry_after or 0.0
        jitter = wait_random_exponential(multiplier=self._retry.initial, max=self._retry.maximum)
        wait = float(jitter(state))
        if isinstance(exc, SendFailed) and exc.retry_after:
            wait = max(wait, exc.retry_after)
        return wait

    def _count_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = exc.reason if isinstance(exc, SendFailed) else "unknown"
        self._metrics.retried.labels(reason).inc()
        log.debug("intercom_call_retried", reason=reason, attempt=state.attempt_number)

    def export_budget(self) -> None:
        """Set the budget gauges from the budget's current state (on each scrape)."""
        snapshot = self._budget.snapshot()
        self._metrics.budget_allowed.set(snapshot.allowed)
        limit, remaining = snapshot.server_limit, snapshot.server_remaining
        self._metrics.ratelimit_limit.set(-1 if limit is None else limit)
        self._metrics.ratelimit_remaining.set(-1 if remaining is None else max(remaining, 0))
        self._metrics.paused.set(1 if snapshot.paused_until > time.time() else 0)

    async def _dead_letter(self, record: SourceRecord, letter: DeadLetter) -> None:
        await self._dead_letters.write(record, letter)
        self._metrics.dead_lettered.labels(letter.reason).inc()
        log.warning(
            "event_dead_lettered",
            reason=letter.reason,
            detail=letter.detail,
            status=letter.status,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )

    async def _crash(self, exc: Exception, record: SourceRecord) -> None:
        log.error(
            "sink_pipeline_failed",
            error=repr(exc),
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            exc_info=exc,
        )
        if self._failure is None:
            self._failure = exc
            self._metrics.ready.set(0)
            self._room.set()
            if self._on_crash is not None:
                await self._on_crash(exc)


def _app_id(record: SourceRecord) -> str | None:
    """The record's workspace (its `intercom-app-id` header), if any."""
    for name, value in record.headers:
        if name == HEADER_APP_ID:
            return value.decode("utf-8", "replace").strip() or None
    return None


def _letter(reason: Reason, exc: SendFailed) -> DeadLetter:
    return DeadLetter(reason, exc.message, status=exc.status, intercom_error=exc.body)


def _ack_of(record: SourceRecord) -> Callable[[], Awaitable[object]]:
    if record.ack is not None:
        return record.ack

    async def _no_ack() -> None:
        return None

    return _no_ack
