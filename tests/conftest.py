"""Session fixtures: a real Kafka broker for the integration tests.

`KAFKA_BOOTSTRAP_SERVERS` names a broker to use; without it the session starts the project's
own local broker (`hookstream.devtools.localkafka`) on a free port and stops it at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookstream.devtools import localkafka


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address of a running broker."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield given
        return
    data_dir: Path = tmp_path_factory.mktemp("kafka")
    with localkafka.running_broker(port=localkafka.free_port(), data_dir=data_dir) as bootstrap:
        yield bootstrap


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A broker of the test's own, for tests that stop, kill or restart it: (bootstrap,
    data dir). Always the local broker, since the test controls its process."""
    data_dir = tmp_path / "kafka"
    with localkafka.running_broker(port=localkafka.free_port(), data_dir=data_dir) as bootstrap:
        yield bootstrap, data_dir
