"""The worker's Prometheus metrics, in a registry of its own (served on `/metrics`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LagReader = Callable[[], Iterable[tuple[str, int, int]]]
"""Returns (topic, partition, lag in messages) for each assigned partition."""

SizeReader = Callable[[], int]


class _CallbackGauges(Collector):
    """Gauges read at scrape time (consumer lag, table size)."""

    def __init__(self) -> None:
        self.lag: LagReader | None = None
        self.table_keys: SizeReader | None = None

    def collect(self) -> Iterable[Metric]:
        if self.lag is not None:
            lag = GaugeMetricFamily(
                "hookstream_worker_consumer_lag_messages",
                "Records of the raw topic not yet committed by this worker, per partition.",
                labels=["topic", "partition"],
            )
            for topic, partition, value in self.lag():
                lag.add_metric([topic, str(partition)], value)
            yield lag
        if self.table_keys is not None:
            yield GaugeMetricFamily(
                "hookstream_worker_dedup_table_keys",
                "Keys in the local dedup table (RocksDB's estimate on RocksDB).",
                value=self.table_keys(),
            )


class WorkerMetrics:
    """Counters and histograms of the worker, plus gauges read on scrape."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.processed = Counter(
            "hookstream_worker_notifications_processed_total",
            "Raw records processed (routed, duplicate, dropped or dead-lettered).",
            registry=self.registry,
        )
        self.duplicates = Counter(
            "hookstream_worker_duplicates_dropped_total",
            "Deliveries dropped because their notification id was seen within the TTL.",
            registry=self.registry,
        )
        self.dropped = Counter(
            "hookstream_worker_notifications_dropped_total",
            "Notifications dropped by the routes file.",
            registry=self.registry,
        )
        self.routed = Counter(
            "hookstream_worker_routed_total",
            "Records written to routed topics, per destination topic.",
            ["destination"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "hookstream_worker_dead_letters_total",
            "Raw records written to the dead-letter topic, per reason.",
            ["reason"],
            registry=self.registry,
        )
        self.receive_to_route = Histogram(
            "hookstream_worker_receive_to_route_seconds",
            "From the ingest receiving a notification to the worker producing it (before "
            "the transaction commits).",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self._gauges = _CallbackGauges()
        self.registry.register(self._gauges)

    def read_lag_with(self, reader: LagReader) -> None:
        """Report consumer lag from `reader` at scrape time."""
        self._gauges.lag = reader

    def read_table_keys_with(self, reader: SizeReader) -> None:
        """Report the dedup table size from `reader` at scrape time."""
        self._gauges.table_keys = reader

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)
