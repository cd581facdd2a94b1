"""Make each record durable before the ingest answers: acknowledged by Kafka (acks=all,
idempotent producer), or, when Kafka is slow or away, committed to the fsync'd spool, which a
background task drains into Kafka in order as soon as Kafka answers again.

A produce that Kafka leaves unacknowledged for the produce timeout, while acknowledging
nothing else either, is spooled; a few in a row, or a connection error, mark Kafka down, and
later records go straight to the spool (so answers stay fast) until the drain gets a batch
through. A late ack while other acks keep coming is the ingest being busy, not Kafka being
slow: that record keeps waiting, because spooling it would add work to an overload. A record
whose produce timed out but later succeeded after all lands twice (the streams worker drops
the double; `hookstream_ingest_late_acks_total` counts them). The drain sends one batch at a
time and waits for every answer before it sends again, so a long outage does not pile copies
into the producer.

A record Kafka refuses for good (too large for the topic's `max.message.bytes`) does not
mark Kafka down: it is spooled, and the drain, finding it refused again when sent on its own,
quarantines it in the spool's file (`Spool.quarantine`) and goes on with the records behind
it. Quarantined records are counted and logged, and retried when the ingest next starts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Literal, Self

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from hookstream.core.contract import Headers
from hookstream.core.errors import KafkaAccessDenied, KafkaAuthFailed
from hookstream.core.kafka import KafkaConnection, access_denied, explain_start_failure
from hookstream.core.logs import get_logger
from hookstream.ingest import metrics
from hookstream.ingest.errors import IngestError, NotDurable, RecordsRefused
from hookstream.ingest.spool import Spool, SpooledRecord
from hookstream.ingest.transactions import TransactionalProducer, transactional_id

log = get_logger(__name__)

Via = Literal["kafka", "spool"]
_STALL_GRACE_SECONDS = 0.02
_DURABLE_IN_KAFKA = metrics.DURABLE.labels("kafka")
_DURABLE_IN_SPOOL = metrics.DURABLE.labels("spool")
# What Kafka answers about a record (or the batch it was in) rather than about Kafka.
_REFUSED_RECORD = (MessageSizeTooLargeError, RecordListTooLargeError)


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """A record for Kafka: where it goes and what it carries."""

    topic: str
    key: bytes
    value: bytes
    headers: Headers


@dataclass(frozen=True, slots=True)
class WriterConfig:
    """How the writer talks to Kafka and drains its spool."""

    connection: KafkaConnection
    topics: tuple[str, ...] = ()  # fetched on connect, so the first produce needs no lookup
    produce_timeout: float = 0.3
    drain_batch: int = 500
    retry_interval: float = 0.5
    shutdown_timeout: float = 10.0
    linger_ms: int = 0
    max_batch_bytes: int = 256 * 1024  # per partition and produce request (aiokafka: 16 KiB)
    max_request_bytes: int = 1024 * 1024  # the largest record, with its key and headers
    timeouts_before_down: int = 3
    request_timeout_ms: int = 10_000
    drain_backoff_max: float = 30.0  # longest pause between restarts of a failing drain
    drain_failure_bound: float = 120.0  # failing this long, the writer is unhealthy
    transactional_id_prefix: str = "hookstream-ingest-"  # then host name and spool slot
    transaction_wait: float = 5.0  # longest wait for a `write_all` transaction to commit
    transaction_timeout_ms: int = 15_000  # the broker aborts a transaction left open this long


class DurableWriter:
    """Owns the Kafka producer and the spool's drain; `write` returns once a record is
    durable and says where it went."""

    def __init__(self, config: WriterConfig, spool: Spool) -> None:
        self._config = config
        self._spool = spool
        self._producer: AIOKafkaProducer | None = None
        self._kafka_up = False
        self._refused: KafkaAuthFailed | KafkaAccessDenied | None = None
        self._timeout_streak = 0
        self._last_ack = 0.0  # event-loop time of the latest acknowledgement
        self._waiting: dict[asyncio.Future[bool], float] = {}  # produce -> start, oldest first
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._drain_failing_since: float | None = None  # event-loop time of the first failure
        self._watchdog: asyncio.Task[None] | None = None
        self._transactions = TransactionalProducer(
            config.connection,
            transactional_id(config.transactional_id_prefix, spool.slot),
            wait_seconds=config.transaction_wait,
            transaction_timeout_ms=config.transaction_timeout_ms,
            max_request_bytes=config.max_request_bytes,
            request_timeout_ms=config.request_timeout_ms,
        )

    async def __aenter__(self) -> Self:
        await self._connect()
        self._task = asyncio.create_task(self._supervise_drain(), name="spool-drain")
        self._watchdog = asyncio.create_task(self._watch_for_silence(), name="kafka-silence")
        self.refresh_gauges()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, self._config.shutdown_timeout)
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        await self._transactions.close()
        await self._close_producer()

    @property
    def kafka_up(self) -> bool:
        """Whether Kafka acknowledged the last produce (and no outage is in progress)."""
        return self._kafka_up

    @property
    def unhealthy(self) -> str | None:
        """Why this writer cannot recover on its own (the process should be restarted; the
        spool file keeps every record), or None: the drain has failed for longer than
        `drain_failure_bound`, or it stopped while it should run."""
        task = self._task
        if task is not None and task.done() and not self._stopping:
            return "the spool drain stopped"
        since = self._drain_failing_since
        if since is None:
            return None
        failing_for = asyncio.get_running_loop().time() - since
        if failing_for > self._config.drain_failure_bound:
            return f"the spool drain has failed for {failing_for:.0f} s"
        return None

    @property
    def refused(self) -> KafkaAuthFailed | KafkaAccessDenied | None:
        """Why Kafka refused the last connection attempt's TLS or SASL set-up (the message
        names the setting to fix) or an operation for want of an ACL (the message names it);
        None when it did not. Records spool meanwhile, loudly."""
        return self._refused

    @property
    def spool(self) -> Spool:
        """The spool this writer falls back to."""
        return self._spool

    async def write(self, record: OutgoingRecord) -> Via:
        """Return once `record` is durable: "kafka" (acknowledged) or "spool" (fsync'd).

        Raises `NotDurable` (or `SpoolFull`) when neither could take it.
        """
        producer = self._producer
        if self._kafka_up and producer is not None and await self._produce(producer, record):
            _DURABLE_IN_KAFKA.inc()
            return "kafka"
        await self._spool.append(record.topic, record.key, record.value, record.headers)
        _DURABLE_IN_SPOOL.inc()
        self.refresh_gauges()
        self._wake.set()
        return "spool"

    async def write_all(self, records: Sequence[OutgoingRecord]) -> Via:
        """Return once every record is durable, all in the same place: "kafka" (committed in
        one Kafka transaction) or "spool" (one SQLite transaction, when Kafka is away or the
        transaction fails). Raises `NotDurable` (or `SpoolFull`) when none could be stored,
        and `RecordsRefused` when Kafka refuses a record for good: then none is stored."""
        if self._kafka_up and await self._commit_all(records):
            _DURABLE_IN_KAFKA.inc(len(records))
            return "kafka"
        rows = [(r.topic, r.key, r.value, r.headers) for r in records]
        await self._spool.append_all(rows)
        _DURABLE_IN_SPOOL.inc(len(records))
        self.refresh_gauges()
        self._wake.set()
        return "spool"

    async def _commit_all(self, records: Sequence[OutgoingRecord]) -> bool:
        """True once Kafka committed `records` in one transaction; False (spool them) when
        it could not, the transaction aborted."""
        try:
            await self._transactions.send_all(records)
        except _REFUSED_RECORD as exc:
            log.warning("transaction_refused", records=len(records), reason=repr(exc))
            raise RecordsRefused(
                f"Kafka refused one of the {len(records)} records for its size; none was stored"
            ) from exc
        except (KafkaError, TimeoutError) as exc:
            denied = access_denied(
                exc,
                self._config.connection,
                operation="Write",
                resource=self._transactions.transactional_id,
            )
            if denied is not None:  # a missing ACL: the records spool, loudly
                metrics.KAFKA_AUTH_FAILURES.inc()
                log.error("kafka_access_denied", reason=str(denied))
                self._refused = denied
            else:  # the drain marks Kafka up again once the spooled records go through
                self._mark_down(exc)
            return False
        return True

    async def _produce(self, producer: AIOKafkaProducer, record: OutgoingRecord) -> bool:
        """Produce and wait for the ack. True once acknowledged; False (spool it) when Kafka
        fails, or when the silence watchdog gives up on it (see `_watch_for_silence`)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcome: asyncio.Future[bool] = loop.create_future()
        handing_over = asyncio.ensure_future(
            producer.send(record.topic, record.value, key=record.key, headers=record.headers)
        )
        handing_over.add_done_callback(partial(self._handed_over, outcome))
        self._waiting[outcome] = started
        try:
            acknowledged = await outcome
        except _REFUSED_RECORD as exc:  # the drain finds out which record it was
            log.warning("record_refused_spooling", topic=record.topic, reason=repr(exc))
            return False
        except KafkaError as exc:
            self._note_denial(exc, record.topic)
            self._mark_down(exc)
            return False
        finally:
            del self._waiting[outcome]
        if not acknowledged:
            self._timeout_streak += 1
            if self._timeout_streak >= self._config.timeouts_before_down:
                self._mark_down(TimeoutError("Kafka acknowledged nothing for the produce timeout"))
            return False
        self._timeout_streak = 0
        metrics.PRODUCE_LATENCY.observe(loop.time() - started)
        return True

    def _handed_over(
        self, outcome: asyncio.Future[bool], handing_over: asyncio.Future[asyncio.Future[object]]
    ) -> None:
        if handing_over.cancelled():
            return
        error = handing_over.exception()
        if error is not None:
            if not outcome.done():
                outcome.set_exception(error)
            return
        handing_over.result().add_done_callback(partial(self._delivered, outcome))

    def _delivered(self, outcome: asyncio.Future[bool], delivery: asyncio.Future[object]) -> None:
        self._note_ack(delivery)
        error = None if delivery.cancelled() else delivery.exception()
        if error is None and not delivery.cancelled():
            if outcome.done():  # given up on, and spooled: now it is in Kafka twice
                metrics.LATE_ACKS.inc()
            else:
                outcome.set_result(True)
        elif not outcome.done():
            outcome.set_exception(error or KafkaError("the produce was cancelled"))

    async def _watch_for_silence(self) -> None:
        """Give up on the produces that have waited the produce timeout while Kafka
        acknowledged nothing for as long: their records go to the spool. While acks keep
        coming, a slow produce means a busy ingest, not a slow Kafka, and keeps waiting
        (spooling it would only add work to an overload); the producer's own delivery
        timeout still ends a wait that Kafka never answers. One watchdog for all produces,
        rather than a timer each, keeps the hot path cheap."""
        timeout = self._config.produce_timeout
        while True:
            await asyncio.sleep(timeout / 4)
            if self._expired(timeout):
                # A stalled event loop looks like a silent Kafka: let it read what arrived
                # meanwhile before judging.
                await asyncio.sleep(_STALL_GRACE_SECONDS)
                if self._expired(timeout):
                    now = asyncio.get_running_loop().time()
                    for outcome, started in list(self._waiting.items()):
                        if now - started < timeout:
                            break  # oldest first: the rest are younger
                        if not outcome.done():
                            outcome.set_result(False)

    def _expired(self, timeout: float) -> bool:
        """Whether Kafka has been silent for `timeout` while the oldest produce waited."""
        now = asyncio.get_running_loop().time()
        oldest = next(iter(self._waiting.values()), now)
        return now - self._last_ack > timeout and now - oldest >= timeout

    def _note_ack(self, future: asyncio.Future[object]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._last_ack = asyncio.get_running_loop().time()

    async def _note_refusal(self, exc: KafkaConnectionError) -> None:
        """Tell a refused login or certificate from an outage: it is counted, logged at
        error level whenever the reason changes, and shown by /readyz."""
        wait = self._config.request_timeout_ms / 1000
        explained = await explain_start_failure(self._config.connection, wait, exc)
        refused = explained if isinstance(explained, KafkaAuthFailed) else None
        if refused is not None:
            metrics.KAFKA_AUTH_FAILURES.inc()
            if self._refused is None or str(self._refused) != str(refused):
                log.error("kafka_auth_failed", setting=refused.setting, reason=str(refused))
        self._refused = refused

    def _note_denial(self, exc: BaseException, topic: str) -> None:
        """A missing ACL is no outage either: counted, logged, shown by /readyz."""
        denied = access_denied(
            exc, self._config.connection, operation="Describe and Write", resource=topic
        )
        if denied is None:
            return
        metrics.KAFKA_AUTH_FAILURES.inc()
        if self._refused is None or str(self._refused) != str(denied):
            log.error("kafka_access_denied", topic=topic, reason=str(denied))
        self._refused = denied

    def _mark_down(self, reason: BaseException) -> None:
        if self._kafka_up:
            log.warning("kafka_unavailable_spooling", reason=repr(reason))
        self._kafka_up = False
        metrics.KAFKA_UP.set(0)

    def _mark_up(self) -> None:
        if not self._kafka_up:
            log.info("kafka_available", spool_depth=self._spool.depth)
        self._kafka_up = True
        self._refused = None
        self._last_ack = asyncio.get_running_loop().time()
        self._timeout_streak = 0
        metrics.KAFKA_UP.set(1)

    async def _connect(self) -> bool:
        producer = AIOKafkaProducer(
            acks="all",
            enable_idempotence=True,
            linger_ms=self._config.linger_ms,
            max_batch_size=self._config.max_batch_bytes,
            max_request_size=self._config.max_request_bytes,
            request_timeout_ms=self._config.request_timeout_ms,
            **self._config.connection.client_config("hookstream-ingest"),
        )
        topic = ""
        try:
            await producer.start()
            for topic in self._config.topics:
                await asyncio.wait_for(
                    producer.partitions_for(topic), self._config.retry_interval * 10
                )
        except (KafkaError, TimeoutError) as exc:
            with contextlib.suppress(Exception):
                await producer.stop()
            if isinstance(exc, KafkaConnectionError):
                await self._note_refusal(exc)
            else:
                self._note_denial(exc, topic)
            self._mark_down(exc)
            return False
        self._refused = None
        self._producer = producer
        self._mark_up()
        return True

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(KafkaError, TimeoutError):
                await asyncio.wait_for(producer.stop(), self._config.shutdown_timeout)

    async def _supervise_drain(self) -> None:
        """Run the drain; when it fails (the spool's disk, a bug), log it and start it again
        after a pause that doubles up to `drain_backoff_max`. Nothing is lost meanwhile: the
        records stay in the spool file. Failing for longer than `drain_failure_bound` makes
        the writer `unhealthy`, so /healthz fails and the pod is restarted."""
        loop = asyncio.get_running_loop()
        restarts = 0
        while True:
            try:
                await self._drain_forever()
            except Exception:
                now = loop.time()
                if self._drain_failing_since is None:
                    self._drain_failing_since, restarts = now, 0
                pause = min(
                    self._config.retry_interval * 2**restarts, self._config.drain_backoff_max
                )
                restarts += 1
                metrics.DRAIN_FAILURES.inc()
                log.exception(
                    "spool_drain_failed",
                    failing_for_seconds=round(now - self._drain_failing_since, 3),
                    retry_in_seconds=pause,
                    spool_depth=self._spool.depth,
                )
                if self._stopping:
                    return
                await asyncio.sleep(pause)
            else:
                return

    def _drain_recovered(self) -> None:
        if self._drain_failing_since is not None:
            log.info("spool_drain_recovered", spool_depth=self._spool.depth)
            self._drain_failing_since = None

    async def _drain_forever(self) -> None:
        failures = 0
        while True:
            if self._producer is None and not await self._connect():
                await self._sleep_or_stop()
            elif self._spool.depth == 0:
                self._drain_recovered()
                if self._stopping:
                    return
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._config.retry_interval)
            elif await self._drain_once():
                failures = 0
                self._drain_recovered()
            else:
                failures += 1
                if failures >= 3:  # a producer that keeps failing is rebuilt from scratch
                    await self._close_producer()
                    failures = 0
                await self._sleep_or_stop()
            if self._stopping and (self._producer is None or not self._kafka_up):
                return

    async def _sleep_or_stop(self) -> None:
        if not self._stopping:
            await asyncio.sleep(self._config.retry_interval)

    async def _drain_once(self) -> bool:
        """Send the oldest batch, wait for every answer, delete what Kafka acknowledged and
        sort out what it refused. True when the whole batch is dealt with."""
        producer = self._producer
        assert producer is not None  # noqa: S101 - checked by the caller
        batch = await self._spool.peek(self._config.drain_batch)
        sent: list[tuple[SpooledRecord, asyncio.Future[object]]] = []
        for record in batch:
            try:
                future = await self._send(producer, record)
            except _REFUSED_RECORD as exc:  # refused before it left: this record for sure
                future = asyncio.get_running_loop().create_future()
                future.set_exception(exc)
            except KafkaError as exc:
                self._mark_down(exc)
                break
            sent.append((record, future))
        results = await asyncio.gather(*(future for _r, future in sent), return_exceptions=True)
        acked = [record for (record, _f), result in zip(sent, results, strict=True)
                 if not isinstance(result, BaseException)]  # fmt: skip
        refused = [record for (record, _f), result in zip(sent, results, strict=True)
                   if isinstance(result, _REFUSED_RECORD)]  # fmt: skip
        await self._delete(acked)
        dealt_with = len(acked) + (await self._one_by_one(producer, refused) if refused else 0)
        if dealt_with < len(batch):
            errors = [r for r in results if isinstance(r, BaseException)]
            self._mark_down(errors[0] if errors else RuntimeError("send failed"))
            return False
        self._mark_up()
        log.info("spool_drained", records=len(acked), left=self._spool.depth)
        return True

    async def _one_by_one(self, producer: AIOKafkaProducer, records: list[SpooledRecord]) -> int:
        """Send refused records alone: one refused again is quarantined; one accepted was
        only in a batch too large as a whole. Returns how many were dealt with, stopping at
        the first error that is not a refusal."""
        for done, record in enumerate(records):
            try:
                await (await self._send(producer, record))
            except _REFUSED_RECORD as exc:
                await self._spool.quarantine(record, reason=repr(exc))
                metrics.QUARANTINED.inc()
                self.refresh_gauges()
                log.error(
                    "record_quarantined",
                    topic=record.topic,
                    key=record.key.decode(errors="replace"),
                    bytes=record.size,
                    reason=repr(exc),
                    quarantined=self._spool.quarantined,
                )
            except KafkaError as exc:
                self._mark_down(exc)
                return done
            else:
                await self._delete([record])
        return len(records)

    async def _send(
        self, producer: AIOKafkaProducer, record: SpooledRecord
    ) -> asyncio.Future[object]:
        future: asyncio.Future[object] = await producer.send(
            record.topic, record.value, key=record.key, headers=record.headers
        )
        future.add_done_callback(self._note_ack)
        return future

    async def _delete(self, records: list[SpooledRecord]) -> None:
        await self._spool.delete(records)
        metrics.DRAINED.inc(len(records))
        self.refresh_gauges()

    def refresh_gauges(self) -> None:
        """Set the spool's gauges (depth, bytes, oldest record's age, quarantine) to now."""
        metrics.SPOOL_DEPTH.set(self._spool.depth)
        metrics.SPOOL_BYTES.set(self._spool.size_bytes)
        metrics.SPOOL_OLDEST_AGE.set(self._spool.oldest_age())
        metrics.QUARANTINE_DEPTH.set(self._spool.quarantined)


async def write_durably(writer: DurableWriter, record: OutgoingRecord) -> Via:
    """Write through `writer`; anything but a refusal becomes `NotDurable` (503: retry)."""
    try:
        return await writer.write(record)
    except IngestError:
        raise
    except Exception as exc:
        log.exception("write_failed", topic=record.topic, key=record.key.decode(errors="replace"))
        raise NotDurable("the record could not be stored; retry") from exc


async def write_all_durably(writer: DurableWriter, records: Sequence[OutgoingRecord]) -> Via:
    """`write_durably` for records that are stored together or not at all."""
    try:
        return await writer.write_all(records)
    except IngestError:
        raise
    except Exception as exc:
        log.exception("write_failed", records=len(records))
        raise NotDurable("the records could not be stored; none was; retry") from exc
