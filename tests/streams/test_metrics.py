from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hookstream.streams.metrics import WorkerMetrics


def samples(metrics: WorkerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_plain_counts_are_exposed_as_prometheus_counters_under_their_names() -> None:
    metrics = WorkerMetrics()
    metrics.processed += 3
    metrics.duplicates += 1
    metrics.dropped += 1
    metrics.routed["intercom.a"] += 2
    metrics.dead_letters["invalid-json"] += 1
    exposed = samples(metrics)
    assert exposed[("hookstream_worker_notifications_processed_total", ())] == 3
    assert exposed[("hookstream_worker_duplicates_dropped_total", ())] == 1
    assert exposed[("hookstream_worker_notifications_dropped_total", ())] == 1
    assert exposed[("hookstream_worker_routed_total", (("destination", "intercom.a"),))] == 2
    assert exposed[("hookstream_worker_dead_letters_total", (("reason", "invalid-json"),))] == 1
    assert metrics.registry.get_sample_value("hookstream_worker_notifications_processed_total") == 3


def test_latency_buckets_are_cumulative_and_include_their_bound() -> None:
    metrics = WorkerMetrics()
    for seconds in (0.001, 0.005, 0.3, 100.0):
        metrics.receive_to_route.observe(seconds)
    exposed = samples(metrics)

    def bucket(le: str) -> float:
        return exposed[("hookstream_worker_receive_to_route_seconds_bucket", (("le", le),))]

    assert bucket("0.005") == 2  # 0.005 itself is at or below 0.005
    assert bucket("0.25") == 2
    assert bucket("0.5") == 3
    assert bucket("60.0") == 3
    assert bucket("+Inf") == 4
    assert exposed[("hookstream_worker_receive_to_route_seconds_count", ())] == 4
    assert exposed[("hookstream_worker_receive_to_route_seconds_sum", ())] == pytest.approx(100.306)


def test_receive_to_route_resolves_what_its_alert_and_panel_read() -> None:
    exposed = samples(WorkerMetrics())
    bounds = {
        dict(labels)["le"]
        for name, labels in exposed
        if name == "hookstream_worker_receive_to_route_seconds_bucket"
    }
    assert {"0.05", "0.1", "0.25", "0.5", "1.0", "5.0"} <= bounds


def test_receive_to_commit_counts_the_delay_from_each_receipt_to_the_commit() -> None:
    metrics = WorkerMetrics()
    now = 1_700_000_000.0
    # received 40 ms, 200 ms and 3 s before the commit; a clock ahead of ours counts as 0
    metrics.receive_to_commit.observe_since(
        [int(now * 1000) - 40, int(now * 1000) - 200, int(now * 1000) - 3000, int(now * 1000) + 5],
        now,
    )
    exposed = samples(metrics)

    def bucket(le: str) -> float:
        return exposed[("hookstream_worker_receive_to_commit_seconds_bucket", (("le", le),))]

    assert bucket("0.05") == 2
    assert bucket("0.25") == 3
    assert bucket("2.5") == 3
    assert bucket("5.0") == 4
    assert exposed[("hookstream_worker_receive_to_commit_seconds_count", ())] == 4
    assert exposed[("hookstream_worker_receive_to_commit_seconds_sum", ())] == pytest.approx(3.24)


def test_receive_to_commit_resolves_50_ms_to_5_s() -> None:
    exposed = samples(WorkerMetrics())
    bounds = {
        dict(labels)["le"]
        for name, labels in exposed
        if name == "hookstream_worker_receive_to_commit_seconds_bucket"
    }
    assert {"0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0"} <= bounds
