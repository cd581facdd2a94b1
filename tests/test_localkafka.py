"""The local broker launcher, through its CLI and module API."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner

from hookstream.cli import main
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
