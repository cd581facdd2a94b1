"""Session fixtures: a real Kafka broker for the integration tests.

HOOKSTREAM_TEST_BROKER chooses it (tests/support/kafka.py): `launcher`, the project's own
local broker (`hookstream.devtools.localkafka`) on a free port; `testcontainers`, the official
apache/kafka image through a Docker API; `external`, the broker KAFKA_BOOTSTRAP_SERVERS names.
Unset: external when KAFKA_BOOTSTRAP_SERVERS is set, else the launcher where Java is present,
else testcontainers where a Docker API answers.

scripts/check runs the tests in two processes (`pytest -n 2 --dist loadgroup`: most of the
suite waits on brokers and services, not on the CPU). Each process starts its own broker;
the tests that share a costlier session resource (the three-node cluster, the secure brokers,
the built image) go to one process as an xdist group, so it starts once; the single-broker
fault suite joins the cluster's group, so the two heaviest runs never overlap.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookstream.devtools import localkafka
from tests.support.kafka import choose_broker, docker_answers, java_present, session_broker

_SHARED_RESOURCE_GROUPS = {
    "tests/cluster": "cluster",
    "tests/integration/test_faults.py": "cluster",
    "tests/secure": "secure",
    "tests/deploy/test_image.py": "image",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put each test of `_SHARED_RESOURCE_GROUPS` in its xdist group (no effect without -n)."""
    for item in items:
        path = item.path.relative_to(config.rootpath).as_posix()
        for prefix, group in _SHARED_RESOURCE_GROUPS.items():
            if path == prefix or path.startswith(prefix + "/"):
                item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address of a running broker."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    choice = choose_broker(
        os.environ.get("HOOKSTREAM_TEST_BROKER"),
        bootstrap=given,
        java=java_present(),
        docker=docker_answers,
    )
    data_dir: Path = tmp_path_factory.mktemp("kafka")
    with session_broker(choice, given, data_dir) as bootstrap:
        yield bootstrap


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A broker of the test's own, for tests that stop, kill or restart it: (bootstrap,
    data dir). Always the local broker, since the test controls its process."""
    data_dir = tmp_path / "kafka"
    with localkafka.running_broker(port=localkafka.free_port(), data_dir=data_dir) as bootstrap:
        yield bootstrap, data_dir
