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
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from hookstream.contract import Headers
from hookstream.logs import get_logger
from ingest import metrics
from ingest.errors import IngestError, NotDurable
from ingest.spool import Spool, SpooledRecord

log = get_logger(__name__)

Via = Literal["kafka", "spool"]
_T = TypeVar("_T")
_STALL_GRACE_SECONDS = 0.02


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

    bootstrap_servers: str
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


class DurableWriter:
    """Owns the Kafka producer and the spool's drain; `write` returns once a record is
    durable and says where it went."""

    def __init__(self, config: WriterConfig, spool: Spool) -> None:
        self._config = config
        self._spool = spool
        self._producer: AIOKafkaProducer | None = None
        self._kafka_up = False
        self._timeout_streak = 0
        self._last_ack = 0.0  # event-loop time of the latest acknowledgement
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self._connect()
        self._task = asyncio.create_task(self._drain_forever(), name="spool-drain")
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
        await self._close_producer()

    @property
    def kafka_up(self) -> bool:
        """Whether Kafka acknowledged the last produce (and no outage is in progress)."""
        return self._kafka_up

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
            metrics.DURABLE.labels("kafka").inc()
            return "kafka"
        await self._spool.append(record.topic, record.key, record.value, record.headers)
        metrics.DURABLE.labels("spool").inc()
        self.refresh_gauges()
        self._wake.set()
        return "spool"

    async def _produce(self, producer: AIOKafkaProducer, record: OutgoingRecord) -> bool:
        """Produce and wait for the ack. True once acknowledged; False (spool it) when Kafka
        fails, or stays silent for the produce timeout. While Kafka keeps acknowledging other
        records, a slow hand-over or a late ack means a busy ingest, not a slow Kafka: the
        record keeps waiting, since spooling it would only add work to an overload (the
        producer's own delivery timeout still ends a wait that Kafka never answers)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        handing_over = asyncio.ensure_future(
            producer.send(record.topic, record.value, key=record.key, headers=record.headers)
        )
        try:
            delivery: asyncio.Future[object] = await self._while_kafka_answers(handing_over)
            delivery.add_done_callback(self._note_ack)
            await self._while_kafka_answers(delivery)
        except TimeoutError as exc:
            self._timeout_streak += 1
            if self._timeout_streak >= self._config.timeouts_before_down:
                self._mark_down(exc)
            handing_over.add_done_callback(_count_late_ack)
            return False
        except KafkaError as exc:
            self._mark_down(exc)
            return False
        self._timeout_streak = 0
        metrics.PRODUCE_LATENCY.observe(loop.time() - started)
        return True

    async def _while_kafka_answers(self, future: asyncio.Future[_T]) -> _T:
        """`future`'s result, waiting as long as Kafka acknowledges something within every
        produce timeout; TimeoutError once it has been silent that long."""
        loop = asyncio.get_running_loop()
        while not future.done():
            await asyncio.wait((future,), timeout=self._config.produce_timeout)
            if not future.done():
                # A stalled event loop looks like a silent Kafka: let it read what arrived
                # meanwhile before judging.
                await asyncio.wait((future,), timeout=_STALL_GRACE_SECONDS)
            if not future.done() and loop.time() - self._last_ack > self._config.produce_timeout:
                raise TimeoutError
        return future.result()

    def _note_ack(self, future: asyncio.Future[object]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._last_ack = asyncio.get_running_loop().time()

    def _mark_down(self, reason: BaseException) -> None:
        if self._kafka_up:
            log.warning("kafka_unavailable_spooling", reason=repr(reason))
        self._kafka_up = False
        metrics.KAFKA_UP.set(0)

    def _mark_up(self) -> None:
        if not self._kafka_up:
            log.info("kafka_available", spool_depth=self._spool.depth)
        self._kafka_up = True
        self._last_ack = asyncio.get_running_loop().time()
        self._timeout_streak = 0
        metrics.KAFKA_UP.set(1)

    async def _connect(self) -> bool:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._config.bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=self._config.linger_ms,
            max_batch_size=self._config.max_batch_bytes,
            max_request_size=self._config.max_request_bytes,
            request_timeout_ms=self._config.request_timeout_ms,
            client_id="hookstream-ingest",
        )
        try:
            await producer.start()
            for topic in self._config.topics:
                await asyncio.wait_for(
                    producer.partitions_for(topic), self._config.retry_interval * 10
                )
        except (KafkaError, TimeoutError) as exc:
            with contextlib.suppress(Exception):
                await producer.stop()
            self._mark_down(exc)
            return False
        self._producer = producer
        self._mark_up()
        return True

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(KafkaError, TimeoutError):
                await asyncio.wait_for(producer.stop(), self._config.shutdown_timeout)

    async def _drain_forever(self) -> None:
        failures = 0
        while True:
            if self._producer is None and not await self._connect():
                await self._sleep_or_stop()
            elif self._spool.depth == 0:
                if self._stopping:
                    return
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._config.retry_interval)
            elif await self._drain_once():
                failures = 0
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
        """Send the oldest batch, wait for every answer, delete what Kafka acknowledged.
        True when the whole batch made it."""
        producer = self._producer
        assert producer is not None  # noqa: S101 - checked by the caller
        batch = await self._spool.peek(self._config.drain_batch)
        sent: list[tuple[SpooledRecord, asyncio.Future[object]]] = []
        try:
            for record in batch:
                future = await producer.send(
                    record.topic, record.value, key=record.key, headers=record.headers
                )
                future.add_done_callback(self._note_ack)
                sent.append((record, future))
        except KafkaError as exc:
            self._mark_down(exc)
        results = await asyncio.gather(*(future for _r, future in sent), return_exceptions=True)
        acked = [record for (record, _f), result in zip(sent, results, strict=True)
                 if not isinstance(result, BaseException)]  # fmt: skip
        await self._spool.delete(acked)
        metrics.DRAINED.inc(len(acked))
        self.refresh_gauges()
        if len(acked) < len(batch):
            errors = [r for r in results if isinstance(r, BaseException)]
            self._mark_down(errors[0] if errors else RuntimeError("send failed"))
            return False
        self._mark_up()
        log.info("spool_drained", records=len(acked), left=self._spool.depth)
        return True

    def refresh_gauges(self) -> None:
        """Set the spool's gauges (depth, bytes, age of the oldest record) to now."""
        metrics.SPOOL_DEPTH.set(self._spool.depth)
        metrics.SPOOL_BYTES.set(self._spool.size_bytes)
        metrics.SPOOL_OLDEST_AGE.set(self._spool.oldest_age())


async def write_durably(writer: DurableWriter, record: OutgoingRecord) -> Via:
    """Write through `writer`; anything but a refusal becomes `NotDurable` (503: retry)."""
    try:
        return await writer.write(record)
    except IngestError:
        raise
    except Exception as exc:
        log.exception("write_failed", topic=record.topic, key=record.key.decode(errors="replace"))
        raise NotDurable(f"the record could not be stored: {exc!r}") from exc


def _count_late_ack(handing_over: asyncio.Future[asyncio.Future[object]]) -> None:
    """Count the record of an abandoned produce if Kafka acknowledges it after all."""
    if handing_over.cancelled() or handing_over.exception() is not None:
        return
    handing_over.result().add_done_callback(_count_if_acked)


def _count_if_acked(delivery: asyncio.Future[object]) -> None:
    if not delivery.cancelled() and delivery.exception() is None:
        metrics.LATE_ACKS.inc()
