"""The ingest's Prometheus metrics (one process, one registry: scale with pods, not
`--workers`, when you scrape them)."""

from __future__ import annotations

import time

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from starlette.types import Message, Send

from hookstream.core.build_info import register_build_info

BUILD_INFO = register_build_info(REGISTRY)

REQUESTS = Counter(
    "hookstream_ingest_requests_total",
    "Requests to the ingest's write endpoints, by endpoint and outcome.",
    ["endpoint", "outcome"],
)
REQUEST_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_DURATION = Histogram(
    "hookstream_ingest_request_duration_seconds",
    "Time from a request reaching the app to its answer's last byte handed to the server, by "
    "endpoint and outcome (the status code answered).",
    ["endpoint", "outcome"],
    buckets=REQUEST_DURATION_BUCKETS,
)
RECEIVED_BYTES = Counter(
    "hookstream_ingest_received_bytes_total", "Body bytes of accepted webhooks and events."
)
PRODUCE_LATENCY = Histogram(
    "hookstream_ingest_produce_latency_seconds",
    "Time from a record's hand-over to Kafka until its acknowledgement.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DURABLE = Counter(
    "hookstream_ingest_durable_total",
    "Records made durable, by where: kafka (acknowledged) or spool (fsync'd).",
    ["via"],
)
DRAINED = Counter("hookstream_ingest_spool_drained_total", "Spooled records acknowledged by Kafka.")
LATE_ACKS = Counter(
    "hookstream_ingest_late_acks_total",
    "Records spooled after a produce timed out whose produce then succeeded after all: each "
    "is on the topic twice (the streams worker drops the double).",
)
SPOOL_DEPTH = Gauge("hookstream_ingest_spool_depth", "Records waiting in the spool.")
SPOOL_BYTES = Gauge("hookstream_ingest_spool_bytes", "Key and value bytes waiting in the spool.")
SPOOL_OLDEST_AGE = Gauge(
    "hookstream_ingest_spool_oldest_age_seconds", "Age of the oldest record in the spool."
)
QUARANTINED = Counter(
    "hookstream_ingest_quarantined_total",
    "Spooled records Kafka refused for good (too large for the topic), set aside so the "
    "records behind them drain; retried when the ingest next starts.",
)
QUARANTINE_DEPTH = Gauge(
    "hookstream_ingest_quarantine_depth", "Records set aside in the spool's quarantine."
)
KAFKA_AUTH_FAILURES = Counter(
    "hookstream_ingest_kafka_auth_failures_total",
    "Connection attempts or produces Kafka refused for TLS, SASL or ACL reasons (a setting "
    "or an ACL to fix, not an outage; /readyz says which).",
)
KAFKA_UP = Gauge("hookstream_ingest_kafka_up", "1 while Kafka acknowledges produces, else 0.")
DRAIN_FAILURES = Counter(
    "hookstream_ingest_spool_drain_failures_total",
    "Times the spool's drain failed and was restarted (its records stay in the spool).",
)
SPOOL_CORRUPT = Counter(
    "hookstream_ingest_spool_corrupt_total",
    "Spool files found damaged when opened, renamed aside (kept) for a fresh one.",
)


_DURATIONS: dict[tuple[str, int], Histogram] = {}  # REQUEST_DURATION.labels() costs ~5 µs


def timed(endpoint: str, send: Send) -> Send:
    """`send`, observing the request's duration in `REQUEST_DURATION` once the response's
    last body message is sent (a request left unanswered, its client gone, is not counted)."""
    started = time.perf_counter()
    status = 0

    async def timed_send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            elapsed = time.perf_counter() - started
            series = _DURATIONS.get((endpoint, status))
            if series is None:
                series = REQUEST_DURATION.labels(endpoint, str(status))
                _DURATIONS[endpoint, status] = series
            series.observe(elapsed)

    return timed_send
