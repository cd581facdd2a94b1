"""The sink as a Faust app: an agent takes batches from the data-events topic and hands them
to the pipeline; a service owns the HTTP client and the pipeline; a web server answers
/healthz, /readyz and /metrics.

`Sink(settings)` builds it all. Run it with `hookstream sink` (a Faust worker), or in-process
with `async with sink.running():` (tests, benchmarks).

Offsets and Faust. The agent uses `stream.noack_take(n, within=...)`: Faust hands over a
batch and acks nothing itself; the pipeline acks each record once it and every earlier record
of its partition are final (`sinks.offsets`). Faust commits acked offsets every
`broker_commit_every` records (set to the batch size) or every second, whichever comes first.
`stream_wait_empty` is off: on shutdown the sink drains itself (for at most
`DRAIN_SECONDS`, less than Kubernetes' 30-second grace period) before Faust's consumer makes
its final commit; on a rebalance the records of revoked partitions are dropped unacked, for
their new owner reads them again from the committed offset.

The re-send window (what a crash, a SIGKILL or a rebalance can send to Intercom twice): the
records in flight, at most `max_pending + batch size` = 2 x HOOKSTREAM_SINK_BATCH_SIZE (with
a workspace tokens file: HOOKSTREAM_SINK_MAX_HELD_RECORDS plus a batch, see
`sinks.pipeline`), plus
the records final but not yet committed, at most a commit interval (1 s) of sending (Faust
checks the every-batch commit only when it fetches). Intercom
deduplicates these by (contact, event name, created_at) and answers 202: a re-send costs a
call of the budget, never a second event in Intercom.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Container, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from faust.contrib.asgi import AsgiService, faust_app_running
from mode import Service
from prometheus_client import CollectorRegistry

from hookstream.core.compat import faust as faust_compat
from hookstream.core.health import health_service
from hookstream.core.kafka import KafkaConnection
from hookstream.core.logs import get_logger
from hookstream.core.settings import Settings
from hookstream.core.stop_deadline import StopDeadline
from hookstream.core.topics import faust_topic_options
from hookstream.core.tracing import Tracing
from hookstream.sinks._scheduler import Workspaces
from hookstream.sinks.client import IntercomClient, check_tokens, default_token
from hookstream.sinks.deadletter import FaustDeadLetters, SourceRecord
from hookstream.sinks.dedup import RecentlySent
from hookstream.sinks.metrics import SinkMetrics
from hookstream.sinks.pipeline import Pipeline, RetryPolicy
from hookstream.sinks.ratelimit import RateBudget
from hookstream.sinks.workspaces import TokenFile, TokenWatcher, Workspace

log = get_logger(__name__)

# Shutdown: how long records in flight may take to become final before the sink gives up on
# them (they are not committed, so the next owner sends them). Below Kubernetes' default
# 30-second grace period, with room for Faust's own shutdown.
DRAIN_SECONDS = 15.0
# /readyz names at most this many parked workspaces (and counts them all).
READY_DETAIL_NAMES = 50
# Faust commits acked offsets at least this often.
COMMIT_INTERVAL_SECONDS = 1.0
# The longest stop, after SIGTERM or a crash, before the process exits hard: the drain and
# Faust's own stop (its last commit never comes while Kafka is unreachable), under
# Kubernetes' 30-second grace period.
STOP_SECONDS = DRAIN_SECONDS + 10


class SinkApp(faust_compat.App):
    """`faust.App` that crashes on an agent error instead of restarting the agent past the
    records it held (which would never be acked, so nothing after them would be committed)."""

    health: AsgiService | None = None
    """The sink's health and metrics endpoints, served from the app's start."""

    stop_deadline: StopDeadline | None = None
    """Armed when the app crashes (`hookstream sink` sets it): a crashed sink that cannot
    finish its stop exits, so that it is restarted (a CI run's sink crashed with Kafka
    down and served nothing for minutes without exiting)."""

    async def on_start(self) -> None:
        await super().on_start()
        if self.health is not None:
            await self.add_runtime_dependency(self.health)

    async def on_first_start(self) -> None:
        await asyncio.to_thread(Path(self.conf.datadir).mkdir, parents=True, exist_ok=True)
        await super().on_first_start()

    async def on_agent_error(self, agent: Any, exc: BaseException) -> None:
        log.error("sink_agent_failed", agent=str(agent.name), error=repr(exc))
        if self.stop_deadline is not None:
            self.stop_deadline.arm()
        await self.crash(exc)


class _SinkService(Service):
    """Started by Faust after the consumer, stopped before it: owns the sink's resources."""

    sink: Sink

    async def on_start(self) -> None:
        await self.sink.start()

    async def on_stop(self) -> None:
        await self.sink.stop()


class Sink:
    """The sink: settings in, a Faust app that sends data events to Intercom out."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        registry: CollectorRegistry | None = None,
        web_port: int | None = None,
        web_host: str = "0.0.0.0",
    ) -> None:
        check_tokens(settings.sink)  # refuse to build without one
        self.settings = settings
        self.metrics = SinkMetrics(registry, workspace_labels=settings.sink.metrics_workspaces)
        self.tracing = Tracing.from_settings(settings.tracing, "hookstream-sink")
        self.client = IntercomClient(settings.sink, transport, self.tracing)
        self.budget = self._new_budget()
        self.token_file: TokenFile | None = None
        named: dict[str, Workspace] | None = None
        if settings.sink.workspace_tokens_file is not None:
            self.token_file = TokenFile(
                settings.sink.workspace_tokens_file, settings.sink.intercom_api_base_url
            )
            named = self.token_file.load()  # WorkspaceTokensInvalid: refuse to start
        self.workspaces = Workspaces(
            default=default_token(settings.sink) is not None,
            named=named,
            default_budget=self.budget,
            new_budget=self._new_budget,
            concurrency=settings.sink.concurrency,
        )
        self._watcher: TokenWatcher | None = None
        self.dedup = RecentlySent(
            settings.sink.dedup_window_seconds, settings.sink.dedup_max_entries
        )
        self.pipeline: Pipeline | None = None
        self._started = asyncio.Event()
        self.web_port = settings.sink.web_port if web_port is None else web_port
        self.app = SinkApp(
            settings.sink.id,
            **KafkaConnection.from_settings(settings.kafka).faust_config(),
            store="memory://",
            datadir=str(settings.faust.data_dir / settings.sink.id),
            autodiscover=False,
            topic_partitions=settings.topics.partitions,
            topic_replication_factor=settings.topics.replication,
            consumer_auto_offset_reset="earliest",
            broker_commit_every=settings.sink.batch_size,
            broker_commit_interval=COMMIT_INTERVAL_SECONDS,
            broker_session_timeout=settings.sink.session_timeout_seconds,
            stream_wait_empty=False,
            producer_acks=-1,
            web_enabled=False,  # `core.health` serves the endpoints (see SinkApp.on_start)
            web_port=self.web_port,
            web_bind=web_host,
            worker_redirect_stdouts=False,
            **faust_topic_options(settings.topics),  # creates no topic of its own
        )
        self.source = self.app.topic(
            settings.topics.data_events,
            key_serializer="raw",
            value_serializer="raw",
            allow_empty=True,
        )
        self.dead_letter_topic = self.app.topic(
            settings.topics.data_events_dlq, key_serializer="raw", value_serializer="raw"
        )
        self.app.agent(self.source, name="send_data_events")(self._agent)
        self.app.service(type("SinkService", (_SinkService,), {"sink": self}))
        self.app.on_partitions_revoked.connect(self._on_partitions_revoked)
        self.app.health = health_service(self, host=web_host, port=self.web_port)

    def _new_budget(self) -> RateBudget:
        """One workspace's budget: the app's limit per workspace, split across replicas."""
        sink = self.settings.sink
        return RateBudget.for_replica(
            sink.rate_limit_per_minute, sink.replicas, sink.rate_window_seconds
        )

    # -- lifetime -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the client and build the pipeline (the service's on_start)."""
        self.tracing.start()
        await self.client.open()
        settings = self.settings
        multi = self.workspaces.multi
        self.pipeline = Pipeline(
            sender=self.client,
            budget=self.budget,
            dead_letters=FaustDeadLetters(self.dead_letter_topic),
            metrics=self.metrics,
            dedup=self.dedup,
            concurrency=settings.sink.concurrency,
            retry=RetryPolicy(deadline=settings.sink.retry_deadline_seconds),
            max_pending=settings.sink.batch_size,
            # One workspace: nothing to read ahead for; the bounds of before workspaces.
            max_queued=settings.sink.workspace_max_queued if multi else 0,
            max_held=settings.sink.max_held_records if multi else settings.sink.batch_size,
            workspaces=self.workspaces,
            on_crash=self.app.crash,
            tracing=self.tracing,
            group=settings.sink.id,
        )
        if self.token_file is not None:
            self._watcher = TokenWatcher(
                self.token_file,
                self.pipeline.update_workspaces,
                settings.sink.workspace_tokens_poll_seconds,
            )
            self._watcher.start()
        self._started.set()
        log.info(
            "sink_started",
            topic=settings.topics.data_events,
            intercom=self.client.base_url,
            calls_per_window=self.budget.calls_per_window,
            window_seconds=self.budget.window_seconds,
            concurrency=settings.sink.concurrency,
            workspaces=self.workspaces.known(),
        )

    async def stop(self) -> None:
        """Drain (bounded), then close (the service's on_stop, before Faust's final commit)."""
        if self._watcher is not None:
            await self._watcher.stop()
        pipeline = self.pipeline
        if pipeline is not None:
            started = time.monotonic()
            drained = await pipeline.drain(within=DRAIN_SECONDS)
            log.info(
                "sink_drained",
                complete=drained,
                left=pipeline.pending,
                seconds=round(time.monotonic() - started, 3),
            )
            await pipeline.close()
        await self.client.aclose()
        await asyncio.to_thread(self.tracing.shutdown)  # exports what is left

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Sink]:
        """Run the app on the current loop (in-process, without a Faust worker)."""
        async with faust_app_running(self.app, stop_timeout=DRAIN_SECONDS + 15):
            await self._started.wait()
            yield self

    # -- the agent ------------------------------------------------------------------------

    async def _agent(self, stream: Any) -> None:
        await self._started.wait()
        pipeline = self.pipeline
        assert pipeline is not None  # noqa: S101 - set before _started
        settings = self.settings
        batches = stream.noack_take(
            settings.sink.batch_size, within=settings.sink.batch_within_seconds
        )
        async for events in batches:
            current = of_current_assignment(
                events, self.app.consumer.assignment(), self.app.consumer_generation_id
            )
            await pipeline.submit([_source_record(stream, event) for event in current])

    async def _on_partitions_revoked(
        self, _sender: Any, /, *args: Any, signal: Any, **_kwargs: Any
    ) -> None:
        revoked = args[0] if args else set()
        if self.pipeline is not None:
            mine = [
                (tp.topic, tp.partition)
                for tp in revoked
                if tp.topic == self.source.get_topic_name()
            ]
            released = await self.pipeline.release(mine)
            log.info(
                "sink_partitions_revoked", partitions=sorted(p for _t, p in mine), released=released
            )

    # -- what the web endpoints ask -------------------------------------------------------

    def liveness_problem(self) -> str | None:
        """`crashed` once the app crashed, else None (a refused token is not one: a restart
        would not fix it)."""
        return "crashed" if self.app.crashed else None

    def not_ready_reason(self) -> str | None:
        """Why the sink does not consume and send now, or None."""
        if self.app.crashed:
            return f"crashed: {self.app.crash_reason!r}"
        if not self._started.is_set() or self.pipeline is None:
            return "starting"
        return self.pipeline.not_ready_reason

    def ready_detail(self) -> dict[str, object] | None:
        """What /readyz adds: the workspaces parked because Intercom refused their token
        (the first `READY_DETAIL_NAMES` by name, and how many in all)."""
        parked = self.pipeline.parked() if self.pipeline is not None else []
        if not parked:
            return None
        return {"parked_workspaces": parked[:READY_DETAIL_NAMES], "parked": len(parked)}

    async def exposition(self) -> bytes:
        """Refresh the lag and budget gauges, then render the metrics."""
        await self._refresh_lag()
        if self.pipeline is not None:
            self.pipeline.export_budget()
        return self.metrics.exposition()

    async def _refresh_lag(self) -> None:
        pipeline = self.pipeline
        if pipeline is None or not self._started.is_set():
            return
        consumer = self.app.consumer
        topic = self.source.get_topic_name()
        self.metrics.lag.clear()
        for tp in consumer.assignment():
            if tp.topic != topic:
                continue
            high = consumer.highwater(tp)
            next_offset = pipeline.acks.next_to_finish((tp.topic, tp.partition))
            if next_offset is None:
                next_offset = await consumer.position(tp)
            if high is not None and next_offset is not None:
                self.metrics.lag.labels(str(tp.partition)).set(max(high - next_offset, 0))


def of_current_assignment(
    events: Iterable[Any], assigned: Container[Any], generation_id: int
) -> list[Any]:
    """The `events` of a batch that the pipeline may take: of a partition assigned now and
    fetched in the current group generation.

    A batch collects events for up to `batch_within_seconds`, and one that spans a rebalance
    holds events fetched before it. If the partition came back to this sink, those are
    assigned again, but its records are read again from the committed offset: taking the
    stale ones too handed the pipeline a partition's offsets out of order, and the sink
    crashed (a CI run of the fault suite, where a sink SIGKILL forced the rebalance).
    """
    return [
        event
        for event in events
        if event.message.tp in assigned and event.message.generation_id == generation_id
    ]


def _source_record(stream: Any, event: Any) -> SourceRecord:
    message = event.message
    headers = message.headers or []
    if isinstance(headers, Mapping):
        headers = list(headers.items())
    return SourceRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value or b"",
        headers=[(str(name), bytes(value or b"")) for name, value in headers],
        ack=functools.partial(stream.ack, event),
        timestamp=message.timestamp,
    )
