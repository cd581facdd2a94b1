"""Helpers for tests that talk to the real broker: which broker the session uses, unique
topics, reading a topic back."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hookstream.devtools import localkafka

# HOOKSTREAM_TEST_BROKER: where the session's broker comes from.
#   launcher        the project's local broker (hookstream.devtools.localkafka; Java and Maven)
#   testcontainers  the official apache/kafka image in KRaft mode, through a Docker API
#   external        KAFKA_BOOTSTRAP_SERVERS names a running broker
BROKERS = ("launcher", "testcontainers", "external")


def choose_broker(
    setting: str | None, *, bootstrap: str | None, java: bool, docker: Callable[[], bool]
) -> str:
    """The broker a session uses: the setting when given; else an external broker when
    KAFKA_BOOTSTRAP_SERVERS names one; else the launcher where Java is present; else
    testcontainers where a Docker API answers (asked only then)."""
    if setting:
        if setting not in BROKERS:
            raise ValueError(f"HOOKSTREAM_TEST_BROKER={setting!r}: one of {', '.join(BROKERS)}")
        if setting == "external" and not bootstrap:
            raise ValueError("HOOKSTREAM_TEST_BROKER=external needs KAFKA_BOOTSTRAP_SERVERS")
        return setting
    if bootstrap:
        return "external"
    if java:
        return "launcher"
    if docker():
        return "testcontainers"
    raise RuntimeError(
        "no Kafka broker for the tests: install Java 17+ and Maven (the local launcher), run "
        "a Docker API (testcontainers), or set KAFKA_BOOTSTRAP_SERVERS"
    )


def java_present() -> bool:
    """What the local launcher needs on PATH."""
    return shutil.which("java") is not None and shutil.which("mvn") is not None


def docker_answers() -> bool:
    """Whether a Docker API (DOCKER_HOST, else the default socket) answers a ping."""
    try:
        import docker  # noqa: PLC0415 - testcontainers' dependency, loaded only when asked

        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure means "no usable Docker API"
        return False


@contextmanager
def testcontainers_broker() -> Iterator[str]:
    """The official Apache Kafka image (the version the launcher runs), one KRaft node, on a
    free host port that it also advertises. testcontainers' KafkaContainer expects Confluent's
    image layout, so this is its generic container with the image's own configuration."""
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415
    from testcontainers.core.waiting_utils import wait_for_logs  # noqa: PLC0415

    port = localkafka.free_port()
    container = DockerContainer(f"apache/kafka:{localkafka.KAFKA_VERSION}").with_bind_ports(
        9092, port
    )
    for name, value in {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "true",
        "KAFKA_MESSAGE_MAX_BYTES": "2097152",
    }.items():
        container.with_env(name, value)
    with container:
        wait_for_logs(container, "Kafka Server started", timeout=120)
        yield f"127.0.0.1:{port}"


@contextmanager
def session_broker(choice: str, bootstrap: str | None, data_dir: Path) -> Iterator[str]:
    """The bootstrap address of the broker `choice` names, running for the block."""
    if choice == "external":
        assert bootstrap
        yield bootstrap
    elif choice == "testcontainers":
        with testcontainers_broker() as address:
            yield address
    else:
        with localkafka.running_broker(port=localkafka.free_port(), data_dir=data_dir) as address:
            yield address


def unique_name(prefix: str) -> str:
    """A topic or group name no other test uses."""
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


async def create_topics(
    bootstrap: str,
    names: list[str],
    partitions: int = 1,
    configs: Mapping[str, str] | None = None,
) -> None:
    """Create topics on the broker (replication 1)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    name,
                    num_partitions=partitions,
                    replication_factor=1,
                    topic_configs=dict(configs or {}),
                )
                for name in names
            ]
        )
    finally:
        await admin.close()


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expect: int | None = None,
    wait_seconds: float = 30.0,
    read_committed: bool = True,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic` from the start. Waits until `expect` records arrived (then
    lingers briefly to catch extras) or until the end offsets are reached when `expect` is
    None."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed" if read_committed else "read_uncommitted",
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        partitions = await _partitions(consumer, topic, wait_seconds)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + wait_seconds
        end_offsets = await consumer.end_offsets(partitions)
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for part_records in batch.values():
                records.extend(part_records)
            if expect is None:
                positions = {tp: await consumer.position(tp) for tp in partitions}
                if all(positions[tp] >= end_offsets[tp] for tp in partitions):
                    break
            elif len(records) >= expect and not batch:
                break
        return records
    finally:
        await consumer.stop()


async def _partitions(
    consumer: AIOKafkaConsumer, topic: str, wait_seconds: float
) -> list[TopicPartition]:
    deadline = time.monotonic() + wait_seconds
    while True:
        found = consumer.partitions_for_topic(topic)
        if found is None:
            await consumer._client.force_metadata_update()  # no public refresh
            found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} has no partitions")
        await asyncio.sleep(0.2)
