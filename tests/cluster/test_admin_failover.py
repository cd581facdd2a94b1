"""The worker's topic admin when the node it takes for the controller dies.

aiokafka 0.14's admin client sends CreateTopics to the controller of its cached metadata and
waits for that node until its 40 s request timeout, refreshing the metadata only on
NOT_CONTROLLER: a dead node was waited for in vain, and the worker's route agent crashed on
the next new routed topic (found by tests/cluster). `TopicAdmin.ensure` bounds each attempt
and refreshes the metadata after a timeout (`hookstream.core.compat.aiokafka`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hookstream.core.kafka import KafkaConnection
from hookstream.core.settings import TopicSettings
from hookstream.core.topics import TopicAdmin
from hookstream.devtools import localkafka
from tests.support.kafka import unique_name

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


async def test_a_routed_topic_is_created_after_the_node_taken_for_controller_died(
    kafka_cluster: tuple[str, Path],
) -> None:
    bootstrap, data_dir = kafka_cluster
    topics = TopicSettings(hookstream_topic_partitions=1, hookstream_topic_replication=3)
    async with TopicAdmin(topics, KafkaConnection(bootstrap)) as admin:
        controller = admin.controller_id
        assert controller is not None
        await asyncio.to_thread(localkafka.kill, data_dir, node=controller)
        try:
            name = unique_name("routed")
            # Within the 40 s request timeout the client would otherwise wait.
            await asyncio.wait_for(admin.ensure(name), timeout=30)
            assert await _partitions_once_listed(admin, name) == 1
        finally:
            await asyncio.to_thread(localkafka.restart, data_dir, node=controller)


async def _partitions_once_listed(admin: TopicAdmin, name: str) -> int | None:
    """The topic's partition count once the node answering lists it (a new topic reaches
    every node's metadata a moment after its creation)."""
    for _ in range(50):
        count = await admin.partition_count(name)
        if count is not None:
            return count
        await asyncio.sleep(0.2)
    return None
