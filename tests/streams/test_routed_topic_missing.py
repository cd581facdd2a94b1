"""HOOKSTREAM_CREATE_TOPICS=false with the real worker: a notification whose routed topic
does not exist is dead-lettered as `routed_topic_missing` (counted), and once the topic is
created `hookstream replay` moves it back and the worker routes it exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from click.testing import CliRunner

from hookstream.cli import main
from hookstream.core.contract import decode_headers
from tests.streams.support import (
    WorkerConfig,
    WorkerProcess,
    produce,
    raw_notification,
    running_workers,
)
from tests.support.kafka import create_topics, read_topic

pytestmark = pytest.mark.integration

_DEAD = 'hookstream_worker_dead_letters_total{reason="routed_topic_missing"}'


def _create_off(config: WorkerConfig) -> dict[str, str]:
    return {
        "HOOKSTREAM_CREATE_TOPICS": "false",
        "HOOKSTREAM_DATA_EVENTS_TOPIC": f"{config.name}.data-events",
        "HOOKSTREAM_DATA_EVENTS_DLQ_TOPIC": f"{config.name}.data-events.dlq",
    }


def _catalogue(config: WorkerConfig) -> list[str]:
    data_events = f"{config.name}.data-events"
    return [config.raw_topic, config.dlq_topic, data_events, f"{data_events}.dlq"]


async def _topic_names(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return await admin.list_topics()
    finally:
        await admin.close()


async def test_a_missing_routed_topic_is_dead_lettered_then_replayed_once_it_exists(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    config = WorkerConfig(kafka_bootstrap, tmp_path, partitions=1)
    config.extra_env = _create_off(config)
    # What Strimzi would own: the catalogue and the dedup table's changelog.
    owned = _catalogue(config)
    await create_topics(kafka_bootstrap, owned)
    await create_topics(
        kafka_bootstrap, [f"{config.name}-dedup-changelog"], configs={"cleanup.policy": "compact"}
    )
    routed = config.routed("conversation.user.created")
    with running_workers(config) as (worker,):
        await produce(kafka_bootstrap, config.raw_topic, [raw_notification("notif_1")])
        metrics = await asyncio.to_thread(worker.wait_for_metric, _DEAD, 1)
        assert metrics.get(_DEAD) == 1, worker.log_tail()
        (letter,) = await read_topic(kafka_bootstrap, config.dlq_topic, expect=1)
        assert decode_headers(letter.headers)["hookstream-dlq-reason"] == "routed_topic_missing"

        await create_topics(kafka_bootstrap, [routed])
        env = {**config.env(worker.data_dir, worker.web_port), "HOOKSTREAM_LOG_LEVEL": "error"}
        replay = await asyncio.to_thread(
            CliRunner().invoke, main, ["replay", config.dlq_topic], env=env
        )
        assert replay.exit_code == 0, replay.output
        assert "moved 1" in replay.output

        records = await read_topic(kafka_bootstrap, routed, expect=1)
        assert [decode_headers(r.headers)["intercom-notification-id"] for r in records] == [
            "notif_1"
        ]
        assert worker.metrics().get(_DEAD) == 1  # not dead-lettered again
        assert len(await read_topic(kafka_bootstrap, config.dlq_topic)) == 1
    # Faust created none of its own topics either (no leader topic, no changelog)
    assert not [name for name in await _topic_names(kafka_bootstrap) if name.startswith(config.name)
                and name not in {*owned, f"{config.name}-dedup-changelog", routed}]  # fmt: skip


def test_with_creating_off_the_worker_stops_naming_the_changelog_it_lacks(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    config = WorkerConfig(kafka_bootstrap, tmp_path, partitions=1)
    config.extra_env = _create_off(config)
    asyncio.run(create_topics(kafka_bootstrap, _catalogue(config)))  # but no changelog
    worker = WorkerProcess(config).start()
    try:
        assert worker.process is not None
        assert worker.process.wait(timeout=60) == 1
    finally:
        worker.stop()
    log = worker.log_tail()
    assert f"{config.name}-dedup-changelog" in log
    assert "HOOKSTREAM_CREATE_TOPICS=false" in log
    assert "Traceback" not in log
