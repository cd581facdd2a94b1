"""Dev mode's one-line live status, read from the services' own /metrics."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

# What the line shows: (label, port key, metric family, label filter or None).
_FIGURES = (
    ("in", "ingest", "hookstream_ingest_requests", {"outcome": "accepted"}),
    ("routed", "worker", "hookstream_worker_routed", None),
    ("dups dropped", "worker", "hookstream_worker_duplicates_dropped", None),
    ("worker DLQ", "worker", "hookstream_worker_dead_letters", None),
    ("sent to Intercom", "sink", "hookstream_sink_accepted", None),
    ("sink DLQ", "sink", "hookstream_sink_dead_lettered", None),
)


def metric_sum(text: str, family: str, labels: dict[str, str] | None = None) -> float:
    """The sum of a Prometheus family's samples (optionally those matching `labels`)."""
    total = 0.0
    for metric in text_string_to_metric_families(text):
        if metric.name != family:
            continue
        for sample in metric.samples:
            if sample.name.endswith("_created"):
                continue
            if labels is None or all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def read_status(
    ingest_admin_port: int, worker_port: int, sink_port: int
) -> dict[str, float | None]:
    """The figures of the status line, from the ingest's admin port and the worker's and the
    sink's web ports; None where a service did not answer."""
    ports = {"ingest": ingest_admin_port, "worker": worker_port, "sink": sink_port}
    pages: dict[str, str | None] = {}
    for name, port in ports.items():
        try:
            pages[name] = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
        except httpx.HTTPError:
            pages[name] = None
    figures: dict[str, float | None] = {}
    for label, service, family, labels in _FIGURES:
        page = pages[service]
        figures[label] = None if page is None else metric_sum(page, family, labels)
    return figures


@dataclass
class StatusLine:
    """Rewrites one terminal line in place (only on a terminal)."""

    enabled: bool

    def show(self, figures: dict[str, float | None]) -> None:
        """Print the figures over the previous line."""
        if not self.enabled:
            return
        parts = [f"{k}: {'?' if v is None else int(v)}" for k, v in figures.items()]
        sys.stdout.write("\r\033[K" + " | ".join(parts))
        sys.stdout.flush()

    def clear(self) -> None:
        """Leave the line empty for what is printed next."""
        if self.enabled:
            sys.stdout.write("\r\033[K")
            sys.stdout.flush()
