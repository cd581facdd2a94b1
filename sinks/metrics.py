"""The sink's Prometheus metrics, in a registry of their own (one per sink, so a test or a
benchmark can run several in one process and read each)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from hookstream.core.build_info import register_build_info
from hookstream.sinks._workspace_metrics import WorkspaceCounters

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Arrival to acceptance takes in the queue before the sink, the rate budget's waits (a window
# is 10 s; a 429 pauses until it resets) and the retries (up to
# HOOKSTREAM_SINK_RETRY_DEADLINE_SECONDS, 300 by default).
ARRIVAL_TO_ACCEPTED_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0
)  # fmt: skip


class SinkMetrics:
    """Every metric the sink exports."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, workspace_labels: int = 20
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        register_build_info(r)
        self.sent = Counter(
            "hookstream_sink_calls_total", "Calls made to Intercom's POST /events.", registry=r
        )
        self.answers = Counter(
            "hookstream_sink_answers_total",
            "Calls to Intercom by outcome: the status code, or timeout / network.",
            ["status"],
            registry=r,
        )
        self.accepted = Counter(
            "hookstream_sink_accepted_total", "Events Intercom accepted (2xx).", registry=r
        )
        self.retried = Counter(
            "hookstream_sink_retried_total",
            "Calls retried, by reason (network, server_error, rate_limited).",
            ["reason"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "hookstream_sink_dead_lettered_total",
            "Events written to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.rate_limited = Counter(
            "hookstream_sink_rate_limited_total", "Answers of 429 from Intercom.", registry=r
        )
        self.deduplicated = Counter(
            "hookstream_sink_deduplicated_total",
            "Events not sent because Intercom accepted the same one within the dedup window.",
            registry=r,
        )
        self.latency = Histogram(
            "hookstream_sink_request_duration_seconds",
            "Duration of one call to Intercom, answered or not.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.arrival_to_accepted = Histogram(
            "hookstream_sink_arrival_to_accepted_seconds",
            "From a data event's arrival on Kafka (its record timestamp) to Intercom accepting "
            "it (202), queueing, rate-limit waits and retries included.",
            buckets=ARRIVAL_TO_ACCEPTED_BUCKETS,
            registry=r,
        )
        self.budget_allowed = Gauge(
            "hookstream_sink_budget_calls_left",
            "Calls this replica may still make in the current window (local budget and "
            "Intercom's remaining, less the reserve).",
            registry=r,
        )
        self.budget_per_window = Gauge(
            "hookstream_sink_budget_calls_per_window",
            "This replica's local budget per rate-limit window: one workspace's, times the "
            "workspaces it has a token for (each has its own).",
            registry=r,
        )
        self.ratelimit_limit = Gauge(
            "hookstream_sink_ratelimit_limit",
            "X-RateLimit-Limit of Intercom's last answer (-1 before any).",
            registry=r,
        )
        self.ratelimit_remaining = Gauge(
            "hookstream_sink_ratelimit_remaining",
            "Intercom's X-RateLimit-Remaining, corrected for calls in flight (-1 unknown).",
            registry=r,
        )
        self.paused = Gauge(
            "hookstream_sink_paused",
            "1 while sending pauses after a 429 until the window resets.",
            registry=r,
        )
        self.in_flight = Gauge(
            "hookstream_sink_in_flight_records",
            "Records taken from Kafka and not yet final (accepted, skipped or dead-lettered).",
            registry=r,
        )
        self.lag = Gauge(
            "hookstream_sink_input_lag_records",
            "Records of the input topic not yet final, per partition (high-water mark less "
            "the next offset to finish).",
            ["partition"],
            registry=r,
        )
        self.workspaces_parked = Gauge(
            "hookstream_sink_workspaces_parked",
            "Workspaces whose token Intercom refused (401/403): their events wait on Kafka "
            "until the token changes in the tokens file.",
            registry=r,
        )
        self.by_workspace = WorkspaceCounters(workspace_labels, r)
        self.ready = Gauge(
            "hookstream_sink_ready", "1 while the sink consumes and sends, else 0.", registry=r
        )

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
