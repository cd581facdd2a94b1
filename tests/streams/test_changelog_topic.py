"""The worker creates its dedup table's changelog itself, before Faust starts, with the
table's partitions and configs, and waits until the metadata shows every partition (Faust
creating it let the worker stop with PartitionsMismatch at its first table write)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from hookstream.core.settings import load_settings
from hookstream.core.topics import restrain_faust
from hookstream.streams.app import build_app
from hookstream.streams.routes import load_routes
from tests.streams.support import WorkerConfig

pytestmark = pytest.mark.integration


async def test_the_changelog_exists_whole_before_faust_starts(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = WorkerConfig(kafka_bootstrap, tmp_path, partitions=2, ttl_seconds=60)
    for key, value in config.env(tmp_path / "data", web_port=8099).items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    app = build_app(
        settings, load_routes(settings.topics.route_prefix, None), partitions=config.partitions
    )
    changelog = f"{config.name}-dedup-changelog"

    await restrain_faust(app, settings)  # Faust itself has not started: nothing else creates it

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([changelog])
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, changelog)]
        )
    finally:
        await admin.close()
    assert described["error_code"] == 0
    assert len(described["partitions"]) == config.partitions
    assert all(partition["leader"] >= 0 for partition in described["partitions"])
    entries = {
        entry["config_names"]: entry["config_value"]
        for response in responses
        for resource in response.to_object()["resources"]
        for entry in resource["config_entries"]
    }
    assert entries["cleanup.policy"] == "compact,delete"
    assert entries["retention.ms"] == str(60 * 1000 + 3_600_000)  # the TTL, plus an hour
