"""A three-node KRaft cluster, started once for the session's cluster tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hookstream.devtools import localkafka

BROKERS = 3


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(bootstrap list, data dir) of a local cluster of three nodes, each broker and
    controller; the tests may kill and restart its nodes."""
    data_dir: Path = tmp_path_factory.mktemp("cluster")
    with localkafka.running_broker(
        port=0, data_dir=data_dir, brokers=BROKERS, ports=localkafka.free_ports(BROKERS)
    ) as bootstrap:
        yield bootstrap, data_dir
