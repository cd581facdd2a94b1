"""HOOKSTREAM_CREATE_TOPICS=false against the real broker: nothing is created, and a missing
topic is named (the routed one by `TopicAdmin`, the catalogue by `hookstream topics create`)."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from hookstream.cli import main
from hookstream.core.errors import TopicMissing
from hookstream.core.kafka import KafkaConnection
from hookstream.core.settings import TopicSettings
from hookstream.core.topics import MISSING_RECHECK_SECONDS, TopicAdmin
from tests.ops.support import OpsEnv
from tests.support.kafka import create_topics, unique_name

pytestmark = pytest.mark.integration


async def test_with_creating_off_a_missing_routed_topic_is_named_until_someone_creates_it(
    kafka_bootstrap: str,
) -> None:
    name = unique_name("routed")
    topics = TopicSettings(hookstream_create_topics=False)
    async with TopicAdmin(topics, KafkaConnection(kafka_bootstrap)) as admin:
        with pytest.raises(TopicMissing, match=f"{name}.*HOOKSTREAM_CREATE_TOPICS=false"):
            await admin.ensure(name)
        assert await admin.partition_count(name) is None  # the admin created nothing
        await create_topics(kafka_bootstrap, [name], partitions=2)
        await asyncio.sleep(MISSING_RECHECK_SECONDS)
        await admin.ensure(name)  # found now
        assert await admin.partition_count(name) == 2


async def test_topics_create_with_creating_off_names_the_missing_topics_and_creates_none(
    kafka_bootstrap: str,
) -> None:
    env = OpsEnv(kafka_bootstrap)
    await create_topics(kafka_bootstrap, [env.raw_topic])
    result = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["topics", "create"],
        env={**env.environ(), "HOOKSTREAM_CREATE_TOPICS": "false"},
    )
    assert result.exit_code == 1
    missing = result.output.split("does not exist")[0]
    assert env.dlq_topic in missing
    assert env.data_events_topic in missing
    assert env.raw_topic + "'" not in missing  # it exists
    assert "HOOKSTREAM_CREATE_TOPICS=false" in result.output
    described = await env.cli("topics", "--no-routed")
    assert f"{env.dlq_topic}  (dead-letter)  missing" in described.output
