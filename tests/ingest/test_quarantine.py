"""A record Kafka refuses for good (too large for a raw topic created with a small
`max.message.bytes`) is answered 200 from the spool and set aside in its quarantine: it
neither marks Kafka down nor holds up the records behind it, and a restart after the topic is
fixed delivers it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from hookstream.devtools import localkafka
from tests.support.ingest import (
    ingest_client,
    ingest_settings,
    notification,
    readiness_once_drained,
    signed_headers,
)
from tests.support.kafka import create_topics, read_topic

pytestmark = pytest.mark.integration
URL = "/webhooks/intercom"
TOPIC_LIMIT = 8 * 1024


def _large_notification() -> bytes:
    return notification(data={"item": {"type": "conversation", "id": "big", "body": "x" * 20_000}})


async def _raise_topic_limit(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(
            ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": str(1024 * 1024)}
        )
        await admin.alter_configs([resource])
    finally:
        await admin.close()


async def test_a_record_too_large_for_the_topic_is_quarantined_and_delivered_after_a_fix(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingest_settings(kafka_bootstrap, tmp_path)
    await create_topics(
        kafka_bootstrap, [settings.topics.raw], configs={"max.message.bytes": str(TOPIC_LIMIT)}
    )
    large = _large_notification()
    assert TOPIC_LIMIT < len(large) < settings.topics.max_body_bytes
    before, after = notification(), [notification() for _ in range(5)]
    async with ingest_client(settings) as client:
        answers = []
        for body in [before, large, *after]:
            response = await client.post(URL, content=body, headers=signed_headers(body))
            answers.append((response.status_code, response.json()["durable_in"]))
        ready = await readiness_once_drained(client, within=30)
        metrics = (await client.admin.get("/metrics")).text
    assert answers[1] == (200, "spool")
    assert all(status == 200 for status, _via in answers)
    assert ready["quarantined"] == 1
    assert "hookstream_ingest_quarantine_depth 1.0" in metrics
    records = await read_topic(kafka_bootstrap, settings.topics.raw, expect=1 + len(after))
    assert {r.value for r in records} == {before, *after}, "the records behind it got through"

    await _raise_topic_limit(kafka_bootstrap, settings.topics.raw)
    async with ingest_client(settings) as client:  # a restart retries the quarantine
        ready = await readiness_once_drained(client, within=30)
    assert ready["quarantined"] == 0
    records = await read_topic(kafka_bootstrap, settings.topics.raw, expect=2 + len(after))
    assert {r.value for r in records} == {before, large, *after}
    assert orjson.loads(records[-1].value)["id"] == orjson.loads(large)["id"]


async def test_records_refused_only_as_a_batch_are_drained_one_by_one_not_quarantined(
    private_broker: tuple[str, Path], tmp_path: Path
) -> None:
    bootstrap, broker_dir = private_broker
    settings = ingest_settings(bootstrap, tmp_path)
    await create_topics(bootstrap, [settings.topics.raw], configs={"max.message.bytes": "4096"})
    bodies = [notification() for _ in range(40)]  # each fits the topic; 40 in a batch do not
    async with ingest_client(settings) as client:
        with localkafka.paused(broker_dir):
            for body in bodies:
                response = await client.post(URL, content=body, headers=signed_headers(body))
                assert response.status_code == 200, response.text
        ready = await readiness_once_drained(client)
    assert ready["quarantined"] == 0
    records = await read_topic(bootstrap, settings.topics.raw, expect=len(bodies))
    assert {r.value for r in records} == set(bodies)
