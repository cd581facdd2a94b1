"""Autoscaling and topics agree with each other and with the settings: consumers never
outnumber the partitions they read, the sink's cap follows from the Intercom budget, and the
topics are replicated, sized and configured as the pipeline needs."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest

from hookstream.core.settings import settings_table
from hookstream.core.topics import topic_catalogue
from hookstream.streams.app import DEDUP_TABLE
from tests.deploy._manifests import Doc, Rendered, container_env, main_container, settings_from

# The ingest refuses bodies above HOOKSTREAM_MAX_BODY_BYTES; a topic that carries them must
# take the largest with its key, headers and batch overhead.
RECORD_OVERHEAD_BYTES = 64 * 1024


def _setting(env: Mapping[str, str], variable: str) -> int:
    """The value `env` gives the setting, else its default."""
    defaults = {name: default for name, default, _meaning in settings_table()}
    return int(env.get(variable, defaults[variable]))


def _scaled_object(rendered: Rendered, component: str) -> Doc:
    return rendered.one("ScaledObject", f"hookstream-{component}")


def _partitions(rendered: Rendered, topic: str) -> int:
    return int(rendered.topics()[topic]["spec"]["partitions"])


def _input_topic(rendered: Rendered, component: str) -> str:
    config = rendered.hookstream_config()
    variable = {"worker": "HOOKSTREAM_RAW_TOPIC", "sink": "HOOKSTREAM_DATA_EVENTS_TOPIC"}
    return config[variable[component]]


@pytest.mark.parametrize("component", ["worker", "sink"])
def test_consumers_never_outnumber_the_partitions_they_read(
    rendered: Rendered, component: str
) -> None:
    scaled = _scaled_object(rendered, component)["spec"]
    partitions = _partitions(rendered, _input_topic(rendered, component))
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"] <= partitions
    assert scaled["triggers"][0]["metadata"]["allowIdleConsumers"] == "false"
    workload_replicas = rendered.workload(component)["spec"].get("replicas")
    assert workload_replicas is None, "KEDA owns the replica count"


@pytest.mark.parametrize("component", ["worker", "sink"])
def test_lag_triggers_watch_the_group_and_topic_the_service_uses(
    rendered: Rendered, component: str
) -> None:
    scaled = _scaled_object(rendered, component)
    assert (
        scaled["spec"]["scaleTargetRef"]["name"] == rendered.workload(component)["metadata"]["name"]
    )
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    config = rendered.hookstream_config()
    assert trigger["metadata"]["topic"] == _input_topic(rendered, component)
    assert trigger["metadata"]["bootstrapServers"] == config["KAFKA_BOOTSTRAP_SERVERS"]
    group = {"worker": "HOOKSTREAM_WORKER_ID", "sink": "HOOKSTREAM_SINK_ID"}[component]
    assert trigger["metadata"]["consumerGroup"] == config[group]
    assert int(trigger["metadata"]["lagThreshold"]) > 0


def test_sink_cap_is_what_the_intercom_budget_can_feed(rendered: Rendered) -> None:
    scaled = _scaled_object(rendered, "sink")
    env = container_env(rendered, main_container(rendered.workload("sink")))
    budget = _setting(env, "HOOKSTREAM_SINK_RATE_LIMIT_PER_MINUTE")
    concurrency = _setting(env, "HOOKSTREAM_SINK_CONCURRENCY")
    call_seconds = float(scaled["metadata"]["annotations"]["hookstream.io/intercom-call-seconds"])
    per_replica_per_minute = concurrency / call_seconds * 60
    useful = math.ceil(budget / per_replica_per_minute)
    partitions = _partitions(rendered, _input_topic(rendered, "sink"))
    cap = scaled["spec"]["maxReplicaCount"]
    if rendered.overlay == "prod":
        assert cap == min(useful, partitions)
    else:
        assert cap <= min(useful, partitions)
    # Each replica takes budget / HOOKSTREAM_SINK_REPLICAS: at the cap they use it all, and
    # never more, whatever KEDA scales to.
    assert int(env["HOOKSTREAM_SINK_REPLICAS"]) == cap
    assert budget // cap // 6 >= 1, "every replica gets at least a call per 10-second window"


def test_sink_rollout_never_adds_a_replica_beyond_the_budget_split(rendered: Rendered) -> None:
    strategy = rendered.workload("sink")["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxSurge"] == 0


def test_pipeline_topics_exist_for_every_configured_topic(rendered: Rendered) -> None:
    config = rendered.hookstream_config()
    topics = rendered.topics()
    for variable in (
        "HOOKSTREAM_RAW_TOPIC",
        "HOOKSTREAM_DLQ_TOPIC",
        "HOOKSTREAM_DATA_EVENTS_TOPIC",
        "HOOKSTREAM_DATA_EVENTS_DLQ_TOPIC",
    ):
        assert config[variable] in topics, variable


def test_topics_are_replicated_for_durability(rendered: Rendered) -> None:
    config = rendered.hookstream_config()
    replication = int(config["HOOKSTREAM_TOPIC_REPLICATION"])
    for name, topic in rendered.topics().items():
        spec = topic["spec"]
        assert spec["replicas"] == replication, name
        min_isr = int(spec["config"]["min.insync.replicas"])
        if rendered.overlay == "prod":
            assert (spec["replicas"], min_isr) == (3, 2), name
        else:
            assert min_isr <= spec["replicas"], name


def test_pipeline_topics_have_the_configs_hookstream_creates_them_with(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    # hookstream.core.topics is what `hookstream topics create` and the services use where no
    # operator manages the topics; Strimzi must give them the same configs.
    worker_env = container_env(rendered, main_container(rendered.workload("worker")))
    # the password is a file of the KafkaUser's Secret in the pod, not in the environment
    worker_env |= {"HOOKSTREAM_SECRETS_DIR": "", "KAFKA_SASL_PASSWORD": "x"}
    settings = settings_from(worker_env, monkeypatch)
    topics = rendered.topics()
    for spec in topic_catalogue(settings.topics):
        kafka_topic = topics[spec.name]["spec"]
        assert kafka_topic["replicas"] == spec.replication, spec.name
        configs = {key: str(value) for key, value in kafka_topic["config"].items()}
        assert configs == dict(spec.configs), spec.name


def test_raw_topic_partitions_match_the_setting_for_topics_the_services_create(
    rendered: Rendered,
) -> None:
    config = rendered.hookstream_config()
    raw = _partitions(rendered, config["HOOKSTREAM_RAW_TOPIC"])
    assert int(config["HOOKSTREAM_TOPIC_PARTITIONS"]) == raw


def test_dedup_changelog_is_the_workers_copartitioned_and_outlives_the_ttl(
    rendered: Rendered,
) -> None:
    config = rendered.hookstream_config()
    name = f"{config['HOOKSTREAM_WORKER_ID']}-{DEDUP_TABLE}-changelog"
    changelog = rendered.topics()[name]
    assert changelog["metadata"]["labels"]["hookstream.io/topic-role"] == "changelog"
    assert changelog["spec"]["partitions"] == _partitions(rendered, config["HOOKSTREAM_RAW_TOPIC"])
    topic_config = changelog["spec"]["config"]
    assert "compact" in topic_config["cleanup.policy"].split(",")
    # An id must stay in the changelog for as long as the worker dedups on it.
    ttl_ms = float(config["HOOKSTREAM_DEDUP_TTL_SECONDS"]) * 1000
    assert int(topic_config["retention.ms"]) > ttl_ms


def test_topics_carrying_webhook_bodies_take_the_largest_body(rendered: Rendered) -> None:
    config = rendered.hookstream_config()
    largest = _setting(config, "HOOKSTREAM_MAX_BODY_BYTES")
    for name, topic in rendered.topics().items():
        role = topic["metadata"]["labels"]["hookstream.io/topic-role"]
        if role in ("raw", "routed") or name == config["HOOKSTREAM_DLQ_TOPIC"]:
            limit = int(topic["spec"]["config"]["max.message.bytes"])
            assert limit >= largest + RECORD_OVERHEAD_BYTES, name


def test_dead_letters_are_kept_longer_than_their_source(rendered: Rendered) -> None:
    config = rendered.hookstream_config()
    topics = rendered.topics()
    for source, dlq in (
        ("HOOKSTREAM_RAW_TOPIC", "HOOKSTREAM_DLQ_TOPIC"),
        ("HOOKSTREAM_DATA_EVENTS_TOPIC", "HOOKSTREAM_DATA_EVENTS_DLQ_TOPIC"),
    ):
        source_retention = int(topics[config[source]]["spec"]["config"]["retention.ms"])
        dlq_retention = int(topics[config[dlq]]["spec"]["config"]["retention.ms"])
        assert dlq_retention > source_retention


def test_routed_topics_follow_the_route_prefix_and_name_their_kafka_topic(
    rendered: Rendered,
) -> None:
    prefix = rendered.hookstream_config()["HOOKSTREAM_ROUTE_PREFIX"]
    routed = [
        topic
        for topic in rendered.of_kind("KafkaTopic")
        if topic["metadata"]["labels"]["hookstream.io/topic-role"] == "routed"
    ]
    names = {topic["spec"]["topicName"] for topic in routed}
    assert len(names) == len(routed) >= 40
    for family in ("conversation.", "contact.", "ticket."):
        assert any(name.startswith(prefix + family) for name in names), family
    for topic in routed:
        name = topic["spec"]["topicName"]
        assert name.startswith(prefix)
        assert topic["metadata"]["name"] == name.replace("_", "-")
        assert topic["spec"]["partitions"] >= 1
        assert topic["metadata"]["labels"]["strimzi.io/cluster"]


def test_every_topic_belongs_to_the_overlays_kafka_cluster(rendered: Rendered) -> None:
    clusters = {
        topic["metadata"]["labels"]["strimzi.io/cluster"]
        for topic in rendered.of_kind("KafkaTopic")
    }
    (cluster,) = clusters
    bootstrap = rendered.hookstream_config()["KAFKA_BOOTSTRAP_SERVERS"]
    # Strimzi's bootstrap Service is `<cluster>-kafka-bootstrap`.
    assert bootstrap.startswith(f"{cluster}-kafka-bootstrap.")
