"""The local broker launcher, through its CLI and module API."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner

from hookstream.cli import main
from hookstream.core.errors import LocalKafkaError
from hookstream.devtools import localkafka
from tests.support.kafka import read_topic, unique_name

pytestmark = pytest.mark.integration


async def test_private_broker_takes_and_returns_records(private_broker: tuple[str, Path]) -> None:
    bootstrap, _data_dir = private_broker
    topic = unique_name("t")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"value", key=b"key")
    finally:
        await producer.stop()
    records = await read_topic(bootstrap, topic, expect=1)
    assert [(r.key, r.value) for r in records] == [(b"key", b"value")]


def test_cli_start_status_stop_round_trip(tmp_path: Path) -> None:
    runner = CliRunner()
    data_dir = str(tmp_path / "k")
    port = str(localkafka.free_port())
    started = runner.invoke(main, ["kafka", "start", "--port", port, "--data-dir", data_dir])
    try:
        assert started.exit_code == 0, started.output
        assert started.output.strip() == f"127.0.0.1:{port}"
        running = runner.invoke(main, ["kafka", "status", "--data-dir", data_dir])
        assert running.exit_code == 0
        assert f"bootstrap=127.0.0.1:{port}" in running.output
        again = runner.invoke(main, ["kafka", "start", "--port", port, "--data-dir", data_dir])
        assert again.output.strip() == f"127.0.0.1:{port}", "a second start finds it running"
    finally:
        stopped = runner.invoke(main, ["kafka", "stop", "--data-dir", data_dir])
    assert stopped.output.strip() == "stopped"
    after = runner.invoke(main, ["kafka", "status", "--data-dir", data_dir])
    assert after.exit_code == 1
    assert after.output.strip() == "not running"


def test_a_data_dir_keeps_the_number_of_nodes_it_was_formatted_with(tmp_path: Path) -> None:
    (tmp_path / "log").mkdir()  # as a single broker's formatted data dir has
    with pytest.raises(LocalKafkaError, match="holds 1 node"):
        localkafka.start(port=localkafka.free_port(), data_dir=tmp_path, brokers=3)


def test_cli_names_each_node_of_a_cluster_and_refuses_one_it_does_not_have(
    tmp_path: Path,
) -> None:
    (tmp_path / "nodes").write_text("3")  # a three-node cluster's data dir, nothing running
    runner = CliRunner()
    status = runner.invoke(main, ["kafka", "status", "--data-dir", str(tmp_path)])
    assert status.exit_code == 1
    assert [line.split(" address")[0] for line in status.output.splitlines()] == [
        "node 1 not running",
        "node 2 not running",
        "node 3 not running",
        "not running",
    ]
    killed = runner.invoke(main, ["kafka", "kill", "--node", "4", "--data-dir", str(tmp_path)])
    assert killed.exit_code == 1
    assert "has nodes 1 to 3, not 4" in killed.output
