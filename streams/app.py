"""The Faust app of the worker: the raw topic, the dedup table and the agent that routes.

Built from the settings by `build_app`, after `prepare_topics` made sure the raw and
dead-letter topics exist (the dedup table must have as many partitions as the raw topic).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import faust
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from hookstream.core.compat import faust as faust_compat
from hookstream.core.health import health_service
from hookstream.core.kafka import KafkaConnection
from hookstream.core.logs import get_logger
from hookstream.core.settings import Settings
from hookstream.core.topics import RECORD_OVERHEAD_BYTES, TopicAdmin, ensure_topics
from hookstream.core.tracing import OUTCOME, Tracing
from hookstream.streams import _transactions
from hookstream.streams._cadence import CommitCadence, EarlyCommits
from hookstream.streams._monitor import LeanMonitor
from hookstream.streams._outbox import Outbox
from hookstream.streams._recovery import TableManager
from hookstream.streams._table import EagerChangelogTable
from hookstream.streams.dedup import Deduplicator
from hookstream.streams.errors import RouteFailed
from hookstream.streams.metrics import WorkerMetrics
from hookstream.streams.processor import Processor
from hookstream.streams.records import OutRecord, RawRecord
from hookstream.streams.routes import RouteTable

DEDUP_TABLE = "dedup"
# RocksDB sized for a worker that must stay small. Faust opens one database per partition,
# each with its own block cache and write buffers, and its defaults (a 2 GiB cache, 64 MiB
# buffers) are made for big hosts; per partition this is at most 8 + 2 x 4 MiB.
_ROCKSDB_OPTIONS = {
    "block_cache_size": 8 * 1024 * 1024,
    "block_cache_compressed_size": 0,
    "write_buffer_size": 4 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "target_file_size_base": 16 * 1024 * 1024,
}
_MAX_LINGER_SECONDS = 1.0
# A raw batch is a partition's share of one fetch, so what waits for the agent is bounded by
# records per fetch times batches buffered: about Faust's default of 4,096 records. (Left at
# Faust's 4,096 batches, the 1,000,000-id run of small notifications reached an RSS of
# 686 MiB with whole fetches, up to 1 MiB per partition, and held 100,000 records at once
# with fetches of 1,000 records.)
_MAX_RECORDS_PER_FETCH = 1_000
_RAW_BATCHES_BUFFERED = 4
_YIELD_EVERY_RECORDS = 100
_PRODUCER_BATCH_BYTES = 256 * 1024

log = get_logger(__name__)


class RecordBatchSchema(faust.Schema):  # type: ignore[type-arg] # generic in stubs only
    """The raw topic's messages as the worker's consumer delivers them: a partition's
    fetched records (`streams._consumer.RecordBatch`), passed to the agent as they are."""

    def loads_key(self, app: Any, message: Any, **_: Any) -> Any:
        """No key: the records carry theirs."""
        return None

    def loads_value(self, app: Any, message: Any, **_: Any) -> Any:
        """The batch's aiokafka `ConsumerRecord`s."""
        return message.value


class WorkerApp(faust_compat.App):
    """`faust.App` with the worker's transport fixes, topic admin, metrics and readiness."""

    def __init__(self, settings: Settings, *, partitions: int, web_port: int, web_bind: str):
        super().__init__(
            settings.worker.id,
            **KafkaConnection.from_settings(settings.kafka).faust_config(),
            store=settings.faust.store,
            datadir=str(settings.faust.data_dir),
            processing_guarantee="exactly_once",
            topic_partitions=partitions,
            topic_replication_factor=settings.topics.replication,
            broker_commit_interval=settings.worker.commit_interval_seconds,
            broker_session_timeout=settings.worker.session_timeout_seconds,
            producer_max_request_size=settings.topics.max_body_bytes + RECORD_OVERHEAD_BYTES,
            # Batch the routed and changelog records until the commit (which flushes them):
            # nothing can read them earlier, and without a linger every record was a produce
            # request of its own, with one transactional producer per source partition.
            producer_linger=min(settings.worker.commit_interval_seconds, _MAX_LINGER_SECONDS),
            producer_max_batch_size=_PRODUCER_BATCH_BYTES,
            consumer_auto_offset_reset="earliest",
            broker_max_poll_records=_MAX_RECORDS_PER_FETCH,
            # Faust's aiohttp pages (/table, /router, ...) stay off: `core.health` serves
            # the worker's endpoints, from on_start on.
            web_enabled=False,
            web_port=web_port,
            web_bind=web_bind,
            autodiscover=False,
            worker_redirect_stdouts=False,
            TableManager=TableManager,
            Monitor=LeanMonitor,  # Faust's, without the per-event statistics
        )
        self.settings = settings
        self.metrics = WorkerMetrics()
        self.tracing = Tracing.from_settings(settings.tracing, "hookstream-worker")
        self.topic_admin = TopicAdmin(
            settings.topics, KafkaConnection.from_settings(settings.kafka)
        )
        # Every record of an event waits here for the commit of the event's offset (see
        # `streams._outbox` and `streams._transactions`).
        self.outbox = Outbox()
        # Commits come at the latest every commit interval (Faust's timer), sooner while the
        # worker keeps up with its input (see `streams._cadence`).
        self.cadence = CommitCadence(
            early_after=settings.worker.commit_early_after_seconds,
            early_max_records=settings.worker.commit_early_max_records,
        )
        # Topics whose fetched records reach the agent a partition's batch at a time.
        self.batched_topics: frozenset[str] = frozenset()
        self.ready = False

    def new_transport(self) -> Any:
        return _transactions.Transport(self.conf.broker_consumer, self)

    async def on_start(self) -> None:
        await super().on_start()
        await self.add_runtime_dependency(
            health_service(self, host=self.conf.web_bind, port=self.conf.web_port)
        )
        await self.topic_admin.start()
        self.tracing.start()
        raw_topic = self.settings.topics.raw
        await self.add_runtime_dependency(
            EarlyCommits(
                self,
                self.cadence,
                waiting=lambda: len(self.outbox),
                behind=lambda: sum(lag for _, _, lag in _lag(self, raw_topic)),
            )
        )

    async def on_started(self) -> None:
        await super().on_started()  # returns once the tables are recovered
        self.ready = True
        log.info("worker.ready", worker_id=self.conf.id)

    async def on_stop(self) -> None:
        self.ready = False
        await super().on_stop()
        await self.topic_admin.close()
        await asyncio.to_thread(self.tracing.shutdown)  # exports what is left

    async def on_agent_error(self, agent: Any, exc: BaseException) -> None:
        # Faust would restart the agent and carry on past the failed event; stop instead:
        # the transaction aborts and the event is processed again after the restart.
        log.error("worker.agent_failed", agent=str(agent.name), error=repr(exc))
        await self.crash(exc)

    @property
    def tables_dir(self) -> Path:
        """Where Faust keeps the local table stores."""
        return Path(self.conf.tabledir)

    def is_ready(self) -> bool:
        """Started, tables recovered, not rebalancing, not crashed."""
        return self.not_ready_reason() is None

    # -- what the health endpoints ask (`core.health.HealthSource`) -----------------------

    def liveness_problem(self) -> str | None:
        """`crashed` or `stopping`, else None."""
        if self.crashed:
            return "crashed"
        return "stopping" if self.should_stop else None

    def not_ready_reason(self) -> str | None:
        """Why the worker does not route now, or None."""
        if self.crashed:
            return f"crashed: {self.crash_reason!r}"
        if not self.ready:
            return "starting: tables not recovered yet"
        if self.in_recovery:
            return "recovering tables"
        if self.rebalancing:
            return "rebalancing"
        return None

    async def exposition(self) -> bytes:
        """The worker's metrics."""
        return self.metrics.exposition()


class TransactionalSink:
    """Puts records in the outbox, so each record joins the transaction that commits the
    offset of the event being processed. Refuses a record the producer would refuse.
    Routed records keep their receipt time for the commit's receive-to-commit histogram."""

    def __init__(self, outbox: Outbox, max_request_bytes: int) -> None:
        self.outbox = outbox
        self.max_request_bytes = max_request_bytes

    def send(self, record: OutRecord) -> None:
        # The producer's own check (it raised MessageSizeTooLargeError at `send`), made here:
        # the outbox produces at the commit, too late to dead-letter the record.
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(
            record.key, record.value, record.headers
        )
        if size > self.max_request_bytes:
            raise RouteFailed(f"record too large for {record.topic}: {size} bytes")
        self.outbox.add(
            record.topic,
            record.key,
            record.value,
            record.headers,
            received_at_ms=record.received_at_ms,
        )


async def prepare_topics(settings: Settings, routes: RouteTable) -> int:
    """Create hookstream's catalogue topics (raw, dead letters, ...) and the routes file's
    fixed destinations; return the raw topic's partition count (the ingest may have created
    it with another count than the setting)."""
    await ensure_topics(settings)
    connection = KafkaConnection.from_settings(settings.kafka)
    async with TopicAdmin(settings.topics, connection) as admin:
        for name in sorted(routes.static_destinations()):
            await admin.ensure(name)
        partitions = await admin.partition_count(settings.topics.raw)
    if partitions is None:  # deleted again since: trust the setting
        return settings.topics.partitions
    if partitions != settings.topics.partitions:
        log.info("topic.partitions", topic=settings.topics.raw, partitions=partitions)
    return partitions


def build_app(
    settings: Settings,
    routes: RouteTable,
    *,
    partitions: int,
    web_port: int | None = None,
    web_bind: str = "0.0.0.0",
) -> WorkerApp:
    """The worker app: consume the raw topic, deduplicate, route, dead-letter."""
    app = WorkerApp(
        settings,
        partitions=partitions,
        web_port=settings.worker.web_port if web_port is None else web_port,
        web_bind=web_bind,
    )
    raw_topic = app.topic(
        settings.topics.raw,
        schema=RecordBatchSchema(),
        partitions=partitions,
    )
    raw_topic.maxsize = _RAW_BATCHES_BUFFERED  # `app.topic(maxsize=...)` drops it (Faust 0.15)
    app.batched_topics = frozenset({settings.topics.raw})
    ttl = settings.worker.dedup_ttl_seconds
    table = EagerChangelogTable(
        app,
        name=DEDUP_TABLE,
        key_type=bytes,
        value_type=bytes,
        partitions=partitions,
        beacon=app.tables.beacon,
        outbox=app.outbox,
        help="Notification id -> first-seen time (Unix ms).",
        # The changelog forgets what the TTL forgets: compacted, and deleted after it.
        extra_topic_configs={
            "cleanup.policy": "compact,delete",
            "retention.ms": str(int(ttl * 1000) + 3_600_000),
        },
        options={**_ROCKSDB_OPTIONS, "ttl": int(ttl) + 1}
        if settings.faust.store.startswith("rocksdb")
        else None,
    )
    app.tables.add(table)
    processor = Processor(
        dedup=Deduplicator(table, ttl),
        routes=routes,
        topics=app.topic_admin,
        sink=TransactionalSink(app.outbox, app.conf.producer_max_request_size),
        dlq_topic=settings.topics.dlq,
        metrics=app.metrics,
        tracing=app.tracing,
    )
    tracing, group = app.tracing, settings.worker.id

    async def route(stream: Any) -> None:
        async for batch in stream:  # a partition's fetched records (`streams._consumer`)
            for n, record in enumerate(batch, start=1):
                raw = RawRecord(
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key,
                    value=record.value,
                    headers=list(record.headers),
                    timestamp_ms=record.timestamp,
                )
                with tracing.consumer(
                    raw.topic,
                    raw.key,
                    raw.headers,
                    partition=raw.partition,
                    offset=raw.offset,
                    group=group,
                ) as span:
                    outcome = await processor.process(raw)
                    span.set_attribute(OUTCOME, outcome.value)
                if n % _YIELD_EVERY_RECORDS == 0:
                    await asyncio.sleep(0)  # let the commit, the producers and /metrics in

    app.agent(raw_topic, name="hookstream.route")(route)
    app.metrics.read_lag_with(lambda: _lag(app, settings.topics.raw))
    app.metrics.read_table_keys_with(lambda: _table_keys(table))
    return app


def _lag(app: faust.App, raw_topic: str) -> Iterable[tuple[str, int, int]]:
    consumer = app.consumer
    committed = app.monitor.tp_committed_offsets or {}
    for tp in sorted(consumer.assignment()):
        if tp.topic != raw_topic:
            continue
        highwater = consumer.highwater(tp)
        if highwater is not None:
            yield tp.topic, tp.partition, max(0, highwater - committed.get(tp, 0))


def _table_keys(table: Any) -> int:
    store = table.data
    databases = faust_compat.rocksdb_databases(store)  # RocksDB: one database per partition
    if databases is not None:
        return sum(
            int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
            for db in list(databases.values())
        )
    return len(store.data)
