"""From taken records to final ones: validate, keep each contact's order, skip repeats,
send within the rate budget with retries, dead-letter what cannot be sent, then ack in
offset order.

`Pipeline.submit(records)` is called by the agent with each batch. It starts one task per
record and returns once at most `max_pending` records are in flight, so the agent takes
the next batch while this one is still being sent (a stuck record does not stall the
others) and the records between the committed offset and the newest one taken stay few:
at most `max_pending` plus one batch. That bound is the re-send window of a crash.

A record ends in exactly one final state: accepted by Intercom, skipped as a repeat of one
Intercom accepted, or written to the dead-letter topic (and acknowledged by Kafka). Only
then is it handed to `InOrderAcks`. A 401 or 403 is no final state: the record stays in
flight, the pipeline stops taking batches and sending, and `not_ready_reason` says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_before_delay
from tenacity.wait import wait_random_exponential

from hookstream.core.dataevents import DataEvent, DataEventInvalid, parse_event
from hookstream.core.logs import get_logger
from hookstream.core.tracing import TRACING_OFF, Tracing
from hookstream.sinks.client import Accepted
from hookstream.sinks.deadletter import DeadLetter, DeadLetterWriter, Reason, SourceRecord
from hookstream.sinks.dedup import RecentlySent
from hookstream.sinks.errors import AccessDenied, EventRejected, RateLimited, Retriable, SendFailed
from hookstream.sinks.metrics import SinkMetrics
from hookstream.sinks.offsets import InOrderAcks
from hookstream.sinks.ratelimit import RateBudget, Ticket

log = get_logger(__name__)


class Sender(Protocol):
    """What sends one event's body to Intercom (`sinks.client.IntercomClient`)."""

    async def send(self, body: bytes) -> Accepted:
        """POST the body; raise a `sinks.errors.SendFailed` unless Intercom answers 2xx."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter between `initial` and `maximum` seconds, until
    the next try would start after `deadline` seconds from the first."""

    deadline: float
    initial: float = 0.2
    maximum: float = 30.0


class _Lanes:
    """One queue per contact: an event is sent only after the contact's earlier ones are
    final, so Intercom sees each contact's events in the order of the topic."""

    def __init__(self) -> None:
        self._tails: dict[tuple[str, str], asyncio.Event] = {}

    @contextlib.asynccontextmanager
    async def turn(self, key: tuple[str, str]) -> AsyncIterator[None]:
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
        self._denied: str | None = None
        self._failure: BaseException | None = None
        metrics.ready.set(1)
        metrics.budget_per_window.set(budget.calls_per_window)

    # -- state ----------------------------------------------------------------------------

    @property
    def acks(self) -> InOrderAcks:
        """The per-partition ack tracker (for the lag metric)."""
        return self._acks

    @property
    def not_ready_reason(self) -> str | None:
        """Why the pipeline does not send, or None while it does."""
        if self._denied:
            return self._denied
        if self._failure is not None:
            return f"crashed: {self._failure!r}"
        if self._closed:
            return "shutting down"
        return None

    @property
    def pending(self) -> int:
        """Records taken and not yet acked."""
        return self._acks.pending

    # -- intake ---------------------------------------------------------------------------

    async def submit(self, records: Sequence[SourceRecord]) -> None:
        """Start sending `records` (in offset order per partition); return once there is
        room for the next batch. Blocks for good once the pipeline stopped sending."""
        if self._failure is not None:
            raise self._failure
        if self._denied or self._closed:
            await self._halted.wait()
        for record in records:
            partition = (record.topic, record.partition)
            self._acks.add(partition, record.offset, _ack_of(record))
            task = asyncio.create_task(self._handle(record), name=f"sink-{record.offset}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            by_partition = self._by_partition.setdefault(partition, set())
            by_partition.add(task)
            task.add_done_callback(by_partition.discard)
        self._metrics.in_flight.set(self._acks.pending)
        while self._acks.pending > self._max_pending:
            self._room.clear()
            await self._room.wait()
            if self._failure is not None:
                raise self._failure

    async def drain(self, within: float) -> bool:
        """Stop taking batches and wait up to `within` seconds for the records in flight to
        become final. True when none is left."""
        self._closed = True
        self._metrics.ready.set(0)
        if self._denied or not self._tasks:
            return not self._tasks
        _done, left = await asyncio.wait(set(self._tasks), timeout=within)
        return not left

    async def release(self, partitions: Iterable[tuple[str, int]]) -> int:
        """The partitions went to another replica, which reads them again from the committed
        offset: stop their records (not acked, not dead-lettered). Returns how many."""
        released = 0
        for partition in partitions:
            tasks = self._by_partition.pop(partition, set())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            released += self._acks.forget(partition)
        self._metrics.in_flight.set(self._acks.pending)
        if self._acks.pending <= self._max_pending:
            self._room.set()
        return released

    async def close(self) -> None:
        """Cancel whatever is still in flight (it was not acked, so it is read again)."""
        self._closed = True
        self._metrics.ready.set(0)
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- one record -----------------------------------------------------------------------

    async def _handle(self, record: SourceRecord) -> None:
        try:
            with self._tracing.consumer(
                record.topic,
                record.key,
                record.headers,
                partition=record.partition,
                offset=record.offset,
                group=self._group,
            ):
                await self._process(record)
            await self._acks.finish((record.topic, record.partition), record.offset)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or a failed DLQ write: the record is not final
            await self._crash(exc, record)
            return
        finally:
            self._metrics.in_flight.set(self._acks.pending)
            if self._acks.pending <= self._max_pending:
                self._room.set()

    async def _process(self, record: SourceRecord) -> None:
        try:
            event = parse_event(record.value)
        except DataEventInvalid as exc:
            detail = orjson.dumps(exc.as_dicts()).decode()
            await self._dead_letter(record, DeadLetter("invalid_event", detail))
            return
        async with self._lanes.turn((event.identifier_field, event.identifier)):
            if self._dedup.seen(event.identity):
                self._metrics.deduplicated.inc()
                return
            try:
                await self._deliver(event)
            except AccessDenied:
                await self._halted.wait()  # not final: never acked, never dead-lettered
            except EventRejected as exc:
                await self._dead_letter(record, _letter("rejected", exc))
            except Retriable as exc:
                await self._dead_letter(record, _letter("retries_exhausted", exc))
            else:
                self._dedup.remember(event.identity)
                self._metrics.accepted.inc()
                if record.timestamp is not None:  # a producer's clock may run ahead
                    delay = max(0.0, time.time() - record.timestamp)
                    self._metrics.arrival_to_accepted.observe(delay)

    async def _deliver(self, event: DataEvent) -> None:
        body = event.body()
        started = time.monotonic()
        try:  # the first try needs none of the retry machinery (it costs ~80 µs a call)
            await self._attempt(body)
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
                await self._attempt(body)

    async def _attempt(self, body: bytes) -> Accepted:
        if self._denied:
            raise AccessDenied(self._denied)
        async with self._slots:
            ticket = await self._budget.acquire()
            if self._denied:  # refused while this call waited for the budget
                self._budget.release(ticket)
                raise AccessDenied(self._denied)
            self._metrics.sent.inc()
            started = time.perf_counter()
            try:
                accepted = await self._sender.send(body)
            except SendFailed as exc:
                self._metrics.latency.observe(time.perf_counter() - started)
                self._after_failure(ticket, exc)
                raise
            self._metrics.latency.observe(time.perf_counter() - started)
            self._budget.observe(ticket, accepted.rate)
            self._metrics.answers.labels(str(accepted.status)).inc()
            return accepted

    def _after_failure(self, ticket: Ticket, exc: SendFailed) -> None:
        if exc.status is None:
            self._budget.release(ticket)
            self._metrics.answers.labels(exc.reason).inc()
            return
        limited = isinstance(exc, RateLimited)
        self._budget.observe(ticket, exc.rate, limited=limited, retry_after=exc.retry_after)
        self._metrics.answers.labels(str(exc.status)).inc()
        if limited:
            self._metrics.rate_limited.inc()
            log.warning(
                "intercom_rate_limited",
                reset=exc.rate.reset,
                limit=exc.rate.limit,
                paused_for=round(max(self._budget.snapshot().paused_until - time.time(), 0), 3),
            )
        if isinstance(exc, AccessDenied) and not self._denied:
            self._denied = (
                f"Intercom refused the access token ({exc.status}): stopped consuming; "
                f"fix INTERCOM_ACCESS_TOKEN and restart. {exc.message}"
            )
            self._metrics.ready.set(0)
            log.error("intercom_access_denied", status=exc.status, reason=exc.message)

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


def _letter(reason: Reason, exc: SendFailed) -> DeadLetter:
    return DeadLetter(reason, exc.message, status=exc.status, intercom_error=exc.body)


def _ack_of(record: SourceRecord) -> Callable[[], Awaitable[object]]:
    if record.ack is not None:
        return record.ack

    async def _no_ack() -> None:
        return None

    return _no_ack
