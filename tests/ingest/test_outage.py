"""The ingest while Kafka is away: answers 200 from the spool, fast; drains once Kafka is
back; 503 only when the spool is full; a killed ingest drains its backlog after a restart."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest

from hookstream.devtools import localkafka
from tests.support.ingest import (
    SECRET,
    ingest_client,
    ingest_settings,
    notification,
    readiness_once_drained,
    signed_headers,
    start_ingest,
)
from tests.support.kafka import read_topic, unique_name

pytestmark = pytest.mark.integration
URL = "/webhooks/intercom"


def _broker_port(bootstrap: str) -> int:
    return int(bootstrap.rsplit(":", 1)[1])


async def test_broker_down_webhooks_are_spooled_fast_then_all_reach_kafka(
    private_broker: tuple[str, Path], tmp_path: Path
) -> None:
    bootstrap, data_dir = private_broker
    settings = ingest_settings(bootstrap, tmp_path)
    before = [notification() for _ in range(20)]
    during = [notification() for _ in range(60)]
    async with ingest_client(settings) as client:
        for body in before:
            response = await client.post(URL, content=body, headers=signed_headers(body))
            assert response.status_code == 200
        localkafka.stop(data_dir)
        latencies: list[float] = []
        via: Counter[str] = Counter()
        for body in during:
            started = time.perf_counter()
            response = await client.post(URL, content=body, headers=signed_headers(body))
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
            via[response.json()["durable_in"]] += 1
        assert max(latencies) < 0.5, f"slowest answer {max(latencies):.3f}s"
        assert via == {"spool": len(during)}
        not_ready = await client.admin.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["spool_depth"] == len(during)
        assert (await client.admin.get("/readyz?allow_spool=true")).status_code == 200

        localkafka.start(port=_broker_port(bootstrap), data_dir=data_dir)
        await readiness_once_drained(client)
        after = notification()
        response = await client.post(URL, content=after, headers=signed_headers(after))
        assert response.status_code == 200

    sent = [*before, *during, after]
    records = await read_topic(bootstrap, settings.topics.raw, expect=len(sent))
    values = Counter(r.value for r in records)
    assert set(values) == set(sent), "every accepted webhook is on the raw topic"
    doubles = sum(n - 1 for n in values.values())
    # Only the produces in flight when Kafka went away (the timeouts before it is marked
    # down, 3) can land twice.
    assert doubles <= 3, f"{doubles} records landed twice"
    keys = {r.key for r in records}
    assert keys == {orjson.loads(b)["id"].encode() for b in sent}


async def test_broker_down_and_spool_full_answers_503(
    private_broker: tuple[str, Path], tmp_path: Path
) -> None:
    bootstrap, data_dir = private_broker
    body = notification()
    settings = ingest_settings(bootstrap, tmp_path, hookstream_spool_max_bytes=3 * (len(body) + 60))
    async with ingest_client(settings) as client:
        localkafka.stop(data_dir)
        statuses = []
        for _ in range(6):
            body = notification()
            response = await client.post(URL, content=body, headers=signed_headers(body))
            statuses.append(response.status_code)
            if response.status_code == 503:
                assert response.json()["error"]["code"] == "spool_full"
        assert 200 in statuses
        assert statuses[-1] == 503
        assert statuses == sorted(statuses), "once full, it stays full while Kafka is away"
        ready = await client.admin.get("/readyz?allow_spool=true")
        assert ready.status_code == 503
        assert ready.json()["spool_has_room"] is False


async def test_killed_ingest_drains_its_spooled_backlog_after_restart(
    private_broker: tuple[str, Path], tmp_path: Path
) -> None:
    bootstrap, data_dir = private_broker
    raw_topic = unique_name("it.raw")
    ports = {"port": localkafka.free_port(), "admin_port": localkafka.free_port()}
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "INTERCOM_CLIENT_SECRET": SECRET,
        "HOOKSTREAM_SPOOL_PATH": str(tmp_path / "spool.sqlite3"),
        "HOOKSTREAM_RAW_TOPIC": raw_topic,
        "HOOKSTREAM_LOG_FORMAT": "json",
    }
    localkafka.stop(data_dir)
    ingest = start_ingest(env, tmp_path / "ingest.log", **ports).process
    bodies = [notification() for _ in range(40)]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['port']}") as client:
            for body in bodies:
                response = await client.post(URL, content=body, headers=signed_headers(body))
                assert response.status_code == 200
                assert response.json()["durable_in"] == "spool"
    finally:
        ingest.send_signal(signal.SIGKILL)
        ingest.wait()

    localkafka.start(port=_broker_port(bootstrap), data_dir=data_dir)
    ingest = start_ingest(env, tmp_path / "ingest.log", **ports).process
    try:
        records = await read_topic(bootstrap, raw_topic, expect=len(bodies), wait_seconds=60)
    finally:
        ingest.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught
        assert ingest.wait(timeout=30) in (0, -signal.SIGTERM)
    assert '"event": "ingest_stopping"' in (tmp_path / "ingest.log").read_text()
    assert sorted(r.value for r in records) == sorted(bodies)
    assert [r.value for r in records] == bodies, "drained in the order received"
