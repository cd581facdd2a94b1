"""What happens to one raw record: parse, deduplicate, route, or dead-letter.

The processor knows nothing of Faust: it is given a dedup table, a route table, something
that creates topics and something that produces records. In the worker those are a Faust
table and the app's outbox, so every record it produces and every table write for an event
land in the transaction that also commits that event's offset.
"""

from __future__ import annotations

import enum
import time
from typing import Protocol

from hookstream.core.errors import (
    KafkaAccessDenied,
    NotificationInvalid,
    TopicAdminFailed,
    TopicMissing,
)
from hookstream.core.logs import get_logger
from hookstream.core.notification import parse_notification
from hookstream.core.tracing import TRACING_OFF, Tracing
from hookstream.streams.dedup import Deduplicator, id_key, position_key
from hookstream.streams.errors import RejectedRecord, Rejection, RoutedTopicMissing, RouteFailed
from hookstream.streams.metrics import WorkerMetrics
from hookstream.streams.records import OutRecord, RawRecord, dead_letter, routed_record
from hookstream.streams.routes import RouteTable

log = get_logger(__name__)


class RecordSink(Protocol):
    """Produces records (in the worker: into the current event's transaction)."""

    def send(self, record: OutRecord) -> None:
        """Hand `record` to the producer; raise `RouteFailed` if the client refuses it."""


class TopicEnsurer(Protocol):
    """Creates a topic unless it exists."""

    async def ensure(self, name: str) -> None:
        """Create topic `name` unless it exists (raises `TopicAdminFailed`, `TopicMissing`
        when creating is off, or `KafkaAccessDenied`)."""


class Outcome(enum.Enum):
    """What became of a raw record."""

    ROUTED = "routed"
    DUPLICATE = "duplicate"
    DROPPED = "dropped"
    DEAD_LETTERED = "dead-lettered"


class Processor:
    """Deduplicates and routes raw records; dead-letters what it cannot process."""

    def __init__(
        self,
        *,
        dedup: Deduplicator,
        routes: RouteTable,
        topics: TopicEnsurer,
        sink: RecordSink,
        dlq_topic: str,
        metrics: WorkerMetrics,
        tracing: Tracing = TRACING_OFF,
    ) -> None:
        self.dedup = dedup
        self.routes = routes
        self.topics = topics
        self.sink = sink
        self.dlq_topic = dlq_topic
        self.metrics = metrics
        self.tracing = tracing

    async def process(self, raw: RawRecord) -> Outcome:
        """Process one raw record. Raises only when producing fails in a way that must stop
        the worker (the transaction is then aborted and the record processed again)."""
        self.metrics.processed += 1
        try:
            notification = parse_notification(raw.value, require_envelope_type=False)
            if notification.id is not None:
                key = id_key(notification.id)
            else:
                key = position_key(raw.topic, raw.partition, raw.offset)
            if self.dedup.is_duplicate(key):
                self.metrics.duplicates += 1
                log.debug("notification.duplicate", notification_id=notification.id)
                return Outcome.DUPLICATE
            destinations = self.routes.destinations(notification.topic, notification.app_id)
            if not destinations:
                self.metrics.dropped += 1
                return Outcome.DROPPED
            for destination in destinations:
                await self._ensure_topic(destination)
            records = [routed_record(raw, notification, d) for d in destinations]
            for record in records:  # with traces on, each gets its PRODUCER span's traceparent
                with self.tracing.producer(record.topic, record.key, record.headers):
                    self.sink.send(record)
        except Rejection as rejected:
            return await self._dead_letter(raw, rejected)
        self.dedup.remember(key)
        for record in records:
            self.metrics.routed[record.topic] += 1
        self.metrics.receive_to_route.observe(max(0.0, time.time() - raw.received_at_ms / 1000))
        return Outcome.ROUTED

    async def _ensure_topic(self, name: str) -> None:
        try:
            await self.topics.ensure(name)
        except TopicMissing as exc:
            raise RoutedTopicMissing(str(exc)) from exc
        except KafkaAccessDenied as exc:  # configuration: no dead letter would be right
            log.error("worker.access_denied", topic=name, reason=str(exc))
            raise
        except TopicAdminFailed as exc:
            if exc.retriable:  # the worker stops; its transaction aborts and a restart retries
                raise
            raise RouteFailed(str(exc)) from exc

    async def _dead_letter(
        self, raw: RawRecord, rejected: NotificationInvalid | RejectedRecord
    ) -> Outcome:
        here = position_key(raw.topic, raw.partition, raw.offset)
        if self.dedup.is_duplicate(here):  # the same record again, after a crash
            self.metrics.duplicates += 1
            return Outcome.DUPLICATE
        self.sink.send(dead_letter(raw, self.dlq_topic, rejected.reason))
        self.dedup.remember(here)
        self.metrics.dead_letters[rejected.reason] += 1
        log.warning(
            "notification.dead_lettered",
            reason=rejected.reason,
            detail=rejected.detail,
            topic=raw.topic,
            partition=raw.partition,
            offset=raw.offset,
        )
        return Outcome.DEAD_LETTERED
