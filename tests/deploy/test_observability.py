"""The Grafana dashboard and the alert rules: every query parses as PromQL and names only
metrics the services export (read from the ingest's, the worker's and the sink's own
registries), the dashboard shows what the issue asks for, the alerts the runbook promises
exist, and the ServiceMonitor scrapes each service's metrics port."""

from __future__ import annotations

import json
from typing import Any

import promql_parser
import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from hookstream.ingest.metrics import REQUEST_DURATION_BUCKETS  # registers them in REGISTRY
from hookstream.sinks.metrics import ARRIVAL_TO_ACCEPTED_BUCKETS, SinkMetrics
from hookstream.streams.metrics import RECEIVE_TO_COMMIT_BUCKETS, WorkerMetrics
from tests.deploy._manifests import K8S, Rendered, component_of, selects

DASHBOARD = K8S / "base" / "monitoring" / "hookstream-dashboard.json"

# What the issue asks the dashboard to show: ingest rate and latency, spool depth,
# duplicates, routed per topic, dead letters, the sink's budget and 429s, lag.
MUST_SHOW = {
    "hookstream_ingest_requests_total",
    "hookstream_ingest_produce_latency_seconds_bucket",
    "hookstream_ingest_spool_depth",
    "hookstream_worker_duplicates_dropped_total",
    "hookstream_worker_routed_total",
    "hookstream_worker_dead_letters_total",
    "hookstream_sink_dead_lettered_total",
    "hookstream_sink_budget_calls_per_window",
    "hookstream_sink_rate_limited_total",
    "hookstream_worker_consumer_lag_messages",
    "hookstream_sink_input_lag_records",
    # latency that operators alert on: the ingest's answers, receipt to routed, Kafka to 202
    "hookstream_ingest_request_duration_seconds_bucket",
    "hookstream_worker_receive_to_route_seconds_bucket",
    "hookstream_worker_receive_to_commit_seconds_bucket",
    "hookstream_sink_arrival_to_accepted_seconds_bucket",
}
# Grafana's template variables, replaced by representative values before parsing.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$namespace": "hookstream"}
REQUIRED_ALERTS = {
    "HookstreamSpoolGrowing",
    "HookstreamIngestRecordsQuarantined",
    "HookstreamNotificationsDeadLettered",
    "HookstreamDataEventsDeadLettered",
    "HookstreamSinkAuthFailed",
    "HookstreamSinkBudgetExhausted",
    "HookstreamWorkerLagRising",
    "HookstreamSinkLagRising",
    "HookstreamIngestAnswersSlow",
    "HookstreamWorkerRoutingSlow",
    "HookstreamWorkerCommitSlow",
    "HookstreamSinkDeliverySlow",
}


def exported_series() -> set[str]:
    """Every series name the three services export, read from their own registries."""
    worker = WorkerMetrics(CollectorRegistry())
    worker.read_lag_with(lambda: [("intercom.notifications", 0, 0)])
    worker.read_table_keys_with(lambda: 0)
    registries = [REGISTRY, worker.registry, SinkMetrics(CollectorRegistry()).registry]
    names = set()
    for registry in registries:
        for metric in registry.collect():
            if not metric.name.startswith("hookstream_"):
                continue
            suffixes = {
                "counter": ["_total"],
                "histogram": ["_bucket", "_sum", "_count"],
            }.get(metric.type, [""])
            names |= {metric.name + suffix for suffix in suffixes}
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (raises ValueError when it does not parse)."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return [panel for panel in panels if panel["type"] != "row"]


def _alert_rules(rendered: Rendered) -> list[dict[str, Any]]:
    (rule,) = rendered.of_kind("PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_metric_names_are_read_from_a_parsed_query() -> None:
    # The control for the checks below: a name is found inside functions and aggregations,
    # and a broken query is refused rather than read as text.
    assert metric_names('sum by (le) (rate(a_bucket{x="$namespace"}[$__rate_interval]))') == {
        "a_bucket"
    }
    with pytest.raises(ValueError, match="parenthesis"):
        metric_names("sum(rate(a[5m])")


def test_dashboard_queries_parse_and_name_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    known = exported_series()
    panels = _panels(dashboard)
    assert len(panels) >= 10
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, (panel["title"], target["expr"])
            assert names <= known, (panel["title"], names - known)
            assert 'namespace="$namespace"' in target["expr"], panel["title"]


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    shown = {
        name
        for panel in _panels(dashboard)
        for target in panel["targets"]
        for name in metric_names(target["expr"])
    }
    assert shown >= MUST_SHOW, MUST_SHOW - shown


def test_the_services_export_what_the_dashboard_must_show() -> None:
    assert exported_series() >= MUST_SHOW, MUST_SHOW - exported_series()


def test_dashboard_is_importable_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "hookstream"
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert {"datasource", "namespace"} <= variables
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_dashboard_ships_as_a_configmap_for_the_grafana_sidecar(rendered: Rendered) -> None:
    config = rendered.one("ConfigMap", "hookstream-grafana-dashboard")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config["data"]["hookstream-dashboard.json"]) == json.loads(
        DASHBOARD.read_text()
    )


def test_alert_rules_cover_the_runbook_and_name_only_exported_metrics(rendered: Rendered) -> None:
    rules = _alert_rules(rendered)
    alerts = {rule["alert"] for rule in rules}
    assert alerts >= REQUIRED_ALERTS, REQUIRED_ALERTS - alerts
    known = exported_series()
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= known, (rule["alert"], names - known)
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]


def test_each_alert_watches_the_metric_it_is_about(rendered: Rendered) -> None:
    about = {
        "HookstreamSpoolGrowing": "hookstream_ingest_spool_depth",
        "HookstreamNotificationsDeadLettered": "hookstream_worker_dead_letters_total",
        "HookstreamDataEventsDeadLettered": "hookstream_sink_dead_lettered_total",
        "HookstreamSinkAuthFailed": "hookstream_sink_answers_total",
        "HookstreamSinkWorkspacesParked": "hookstream_sink_workspaces_parked",
        "HookstreamSinkBudgetExhausted": "hookstream_sink_budget_calls_per_window",
        "HookstreamWorkerLagRising": "hookstream_worker_consumer_lag_messages",
        "HookstreamSinkLagRising": "hookstream_sink_input_lag_records",
        "HookstreamIngestAnswersSlow": "hookstream_ingest_request_duration_seconds_bucket",
        "HookstreamWorkerRoutingSlow": "hookstream_worker_receive_to_route_seconds_bucket",
        "HookstreamWorkerCommitSlow": "hookstream_worker_receive_to_commit_seconds_bucket",
        "HookstreamSinkDeliverySlow": "hookstream_sink_arrival_to_accepted_seconds_bucket",
    }
    rules = {rule["alert"]: rule for rule in _alert_rules(rendered)}
    for alert, metric in about.items():
        assert metric in metric_names(rules[alert]["expr"]), alert


def test_servicemonitor_scrapes_each_service_once_on_its_metrics_port(rendered: Rendered) -> None:
    (monitor,) = rendered.of_kind("ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    scraped = [
        service
        for service in rendered.of_kind("Service")
        if selects(monitor["spec"]["selector"], service["metadata"]["labels"])
    ]
    assert sorted(component_of(service) for service in scraped) == ["ingest", "sink", "worker"]
    for service in scraped:
        # The sink that stopped on auth is not ready: its metrics must still be scraped.
        assert service["spec"]["publishNotReadyAddresses"] is True, service["metadata"]["name"]
        ports = {port["name"]: port for port in service["spec"]["ports"]}
        assert endpoint["port"] in ports, service["metadata"]["name"]
        workload = rendered.workload(component_of(service))
        container_ports = {
            port["name"]: port["containerPort"]
            for port in workload["spec"]["template"]["spec"]["containers"][0]["ports"]
        }
        target = ports[endpoint["port"]]["targetPort"]
        assert container_ports[target] == ports[endpoint["port"]]["port"]
    assert endpoint["path"] == "/metrics"


# The latency alerts: (metric, the labels it must select, quantile, threshold in seconds).
LATENCY_ALERTS = {
    "HookstreamIngestAnswersSlow": (
        "hookstream_ingest_request_duration_seconds_bucket",
        {"endpoint": "/webhooks/intercom"},
        0.99,
        0.25,
    ),
    "HookstreamWorkerRoutingSlow": (
        "hookstream_worker_receive_to_route_seconds_bucket",
        {},
        0.99,
        5,
    ),
    "HookstreamWorkerCommitSlow": (
        "hookstream_worker_receive_to_commit_seconds_bucket",
        {},
        0.99,
        1,
    ),
    "HookstreamSinkDeliverySlow": (
        "hookstream_sink_arrival_to_accepted_seconds_bucket",
        {},
        0.99,
        120,
    ),
}


def _latency_alert_shape(expr: str) -> tuple[object, ...]:
    """(metric, its label matchers, quantile, rate window in seconds, threshold, by labels) of
    `histogram_quantile(q, sum by (...) (rate(metric{...}[w]))) > threshold`."""
    comparison = promql_parser.parse(expr)
    assert isinstance(comparison, promql_parser.BinaryExpr)
    assert str(comparison.op) == ">"
    assert isinstance(comparison.rhs, promql_parser.NumberLiteral)
    call = comparison.lhs
    assert isinstance(call, promql_parser.Call)
    assert call.func.name == "histogram_quantile"
    quantile, total = call.args
    assert isinstance(quantile, promql_parser.NumberLiteral)
    assert isinstance(total, promql_parser.AggregateExpr)
    assert str(total.op) == "sum"
    assert total.modifier is not None
    assert str(total.modifier.type) == "AggModifierType.By"
    rate = total.expr
    assert isinstance(rate, promql_parser.Call)
    assert rate.func.name == "rate"
    (window,) = rate.args
    assert isinstance(window, promql_parser.MatrixSelector)
    selector = window.vector_selector
    labels = {m.name: (str(m.op), m.value) for m in selector.matchers.matchers}
    return (
        selector.name,
        labels,
        quantile.val,
        window.range.total_seconds(),
        comparison.rhs.val,
        sorted(total.modifier.labels),
    )


@pytest.mark.parametrize("alert", sorted(LATENCY_ALERTS))
def test_latency_alerts_read_the_p99_over_5_minutes_against_their_threshold(
    rendered: Rendered, alert: str
) -> None:
    rules = {rule["alert"]: rule for rule in _alert_rules(rendered)}
    metric, labels, quantile, threshold = LATENCY_ALERTS[alert]
    assert _latency_alert_shape(rules[alert]["expr"]) == (
        metric,
        {name: ("MatchOp.Equal", value) for name, value in labels.items()},
        quantile,
        300.0,
        threshold,
        ["le", "namespace"],  # per namespace, each bucket kept for histogram_quantile
    )


def test_latency_alert_shape_is_read_from_the_parsed_query() -> None:
    # The control for the check above: another quantile, window or grouping reads differently.
    assert _latency_alert_shape(
        'histogram_quantile(0.9, sum by (le) (rate(a_bucket{x="y"}[1m]))) > 2'
    ) == ("a_bucket", {"x": ("MatchOp.Equal", "y")}, 0.9, 60.0, 2.0, ["le"])


def test_the_latency_thresholds_are_bucket_bounds_of_their_histograms() -> None:
    # histogram_quantile interpolates inside a bucket: a threshold on a bound is read exactly.
    worker = WorkerMetrics().receive_to_route.bounds
    bounds = {
        "hookstream_ingest_request_duration_seconds_bucket": REQUEST_DURATION_BUCKETS,
        "hookstream_worker_receive_to_route_seconds_bucket": worker,
        "hookstream_worker_receive_to_commit_seconds_bucket": RECEIVE_TO_COMMIT_BUCKETS,
        "hookstream_sink_arrival_to_accepted_seconds_bucket": ARRIVAL_TO_ACCEPTED_BUCKETS,
    }
    for metric, _labels, _quantile, threshold in LATENCY_ALERTS.values():
        assert threshold in bounds[metric], metric
