"""The worker's Prometheus metrics, in a registry of its own (served on `/metrics`)."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from hookstream.core.build_info import register_build_info

LagReader = Callable[[], Iterable[tuple[str, int, int]]]
"""Returns (topic, partition, lag in messages) for each assigned partition."""

SizeReader = Callable[[], int]

RECEIVE_TO_COMMIT_BUCKETS = (0.025, 0.05, 0.1, 0.175, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 30, 60)
"""Seconds; they resolve the 50 ms to 5 s that matter (the 250 ms target of 1,000/s among
them) and what a lagging worker adds past that."""


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


class _Latency:
    """A histogram's buckets as plain counts (`observe` is on every event's path)."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = list(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        """Count one observation of `seconds`."""
        self.counts[bisect_left(self.bounds, seconds)] += 1  # le: the bound is inclusive
        self.sum += seconds

    def observe_since(self, received_ms: Iterable[int], now: float) -> None:
        """Count the delay from each of `received_ms` (Unix ms) to `now` (Unix seconds)."""
        now_ms = now * 1000
        for received in received_ms:
            self.observe(max(0.0, now_ms - received) / 1000)

    def cumulative(self) -> list[tuple[str, float]]:
        """(le, observations at or below it) per bucket, `+Inf` last."""
        bounds = [*map(floatToGoString, self.bounds), "+Inf"]
        return list(zip(bounds, accumulate(self.counts), strict=True))


class _Counts(Collector):
    """The worker's counters and histogram, read from its plain counts at scrape time."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        m, created = self.metrics, self.metrics._created
        for name, documentation, value in (
            (
                "hookstream_worker_notifications_processed",
                "Raw records processed (routed, duplicate, dropped or dead-lettered).",
                m.processed,
            ),
            (
                "hookstream_worker_duplicates_dropped",
                "Deliveries dropped because their notification id was seen within the TTL.",
                m.duplicates,
            ),
            (
                "hookstream_worker_notifications_dropped",
                "Notifications dropped by the routes file.",
                m.dropped,
            ),
        ):
            yield CounterMetricFamily(name, documentation, value=value, created=created)
        for name, documentation, label, counts in (
            (
                "hookstream_worker_routed",
                "Records written to routed topics, per destination topic.",
                "destination",
                m.routed,
            ),
            (
                "hookstream_worker_dead_letters",
                "Raw records written to the dead-letter topic, per reason.",
                "reason",
                m.dead_letters,
            ),
        ):
            labelled = CounterMetricFamily(name, documentation, labels=[label])
            for value_label, value in sorted(counts.items()):
                labelled.add_metric([value_label], value, created=created)
            yield labelled
        for name, documentation, latency in (
            (
                "hookstream_worker_receive_to_route_seconds",
                "From the ingest receiving a notification to the worker producing it (before "
                "the transaction commits).",
                m.receive_to_route,
            ),
            (
                "hookstream_worker_receive_to_commit_seconds",
                "From the ingest receiving a notification to the commit of the transaction "
                "that holds its routed record (when read_committed consumers can see it).",
                m.receive_to_commit,
            ),
        ):
            histogram = HistogramMetricFamily(name, documentation)
            histogram.add_metric([], latency.cumulative(), sum_value=latency.sum)
            yield histogram


class WorkerMetrics:
    """Counters and histograms of the worker, plus gauges read on scrape.

    The processor counts in plain attributes (`processed += 1`, `routed[topic] += 1`,
    `receive_to_route.observe(s)`; the commit `receive_to_commit.observe_since(...)`): a
    prometheus-client counter takes a lock and checks its arguments on each increment, and
    the worker counts about five times per event. The registry reads the counts at scrape
    time, under the same names and types.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.processed = 0
        self.duplicates = 0
        self.dropped = 0
        self.routed: Counter[str] = Counter()
        self.dead_letters: Counter[str] = Counter()
        self.receive_to_route = _Latency(
            (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
        )
        self.receive_to_commit = _Latency(RECEIVE_TO_COMMIT_BUCKETS)
        self._created = time.time()
        self._gauges = _CallbackGauges()
        self.registry.register(_Counts(self))
        self.registry.register(self._gauges)
        register_build_info(self.registry)

    def read_lag_with(self, reader: LagReader) -> None:
        """Report consumer lag from `reader` at scrape time."""
        self._gauges.lag = reader

    def read_table_keys_with(self, reader: SizeReader) -> None:
        """Report the dedup table size from `reader` at scrape time."""
        self._gauges.table_keys = reader

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)
