"""The spool never silently stops draining: a drain that fails on the spool's disk is
logged, paused and restarted; failing past its bound, /healthz fails (Kubernetes restarts the
pod) while the spool file keeps every record; once the disk answers again, all reach Kafka."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from hookstream.devtools import localkafka
from hookstream.ingest.spool import Spool
from tests.support.ingest import (
    ingest_client,
    ingest_settings,
    notification,
    readiness_once_drained,
    signed_headers,
)
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration
URL = "/webhooks/intercom"


class DiskFaults:
    """Makes the spool's `peek` and `delete` raise `sqlite3.OperationalError` while told to."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.failing: set[str] = set()
        self.delete_failures_left = 0
        self.raised: dict[str, int] = {"peek": 0, "delete": 0}
        for name in ("peek", "delete"):
            monkeypatch.setattr(Spool, name, self._faulty(name, getattr(Spool, name)))

    def _faulty(
        self, name: str, method: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def faulty(spool: Spool, *args: Any) -> Any:
            if name in self.failing or (name == "delete" and self.delete_failures_left > 0):
                if name == "delete" and name not in self.failing:
                    self.delete_failures_left -= 1
                self.raised[name] += 1
                raise sqlite3.OperationalError("disk I/O error")
            return await method(spool, *args)

        return faulty


async def _until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {within}s: {what}")


async def test_drain_failing_on_the_disk_recovers_and_delivers_everything(
    private_broker: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap, data_dir = private_broker
    bound = 2.0
    settings = ingest_settings(bootstrap, tmp_path, hookstream_spool_drain_failure_seconds=bound)
    faults = DiskFaults(monkeypatch)
    during = [notification() for _ in range(40)]
    async with ingest_client(settings) as client:

        async def healthz_fails() -> bool:
            return (await client.get("/healthz")).status_code == 503

        async def healthz_ok() -> bool:
            return (await client.get("/healthz")).status_code == 200

        faults.failing = {"peek"}  # from now on the drain cannot read the spool
        with capture_logs() as logs:
            localkafka.stop(data_dir)
            for body in during:
                response = await client.post(URL, content=body, headers=signed_headers(body))
                assert response.status_code == 200, response.text
                assert response.json()["durable_in"] == "spool"
            localkafka.start(port=int(bootstrap.rsplit(":", 1)[1]), data_dir=data_dir)
            await _until(healthz_fails, bound + 30, "/healthz fails")
        failed = [e for e in logs if e["event"] == "spool_drain_failed"]
        assert len(failed) >= 2, "each failure is logged, and the drain is restarted"
        assert failed[0]["log_level"] == "error"
        assert failed[1]["retry_in_seconds"] > failed[0]["retry_in_seconds"], "it backs off"
        assert (await client.get("/healthz")).json() == {"status": "unhealthy"}  # bare
        health = (await client.admin.get("/healthz")).json()  # the admin port says why
        assert health["status"] == "unhealthy"
        assert "spool drain has failed" in health["reason"]
        failing_for = float(health["reason"].split("for ")[1].split(" s")[0])
        assert failing_for > bound, "healthy until the drain has failed for the bound"
        with sqlite3.connect(tmp_path / "spool.0.sqlite3") as db:
            (kept,) = db.execute("SELECT COUNT(*) FROM spool").fetchone()
        assert kept == len(during), "nothing is lost while the drain fails"
        metrics = (await client.admin.get("/metrics")).text
        assert "hookstream_ingest_spool_drain_failures_total" in metrics

        faults.failing = set()
        faults.delete_failures_left = 2  # acknowledged by Kafka, then not deleted: re-sent
        await readiness_once_drained(client)
        await _until(healthz_ok, 10, "/healthz recovers")
        assert faults.raised["delete"] == 2
        assert faults.raised["peek"] >= 2

    records = await read_topic(bootstrap, settings.topics.raw, expect=len(during))
    assert {r.value for r in records} == set(during), "every spooled webhook reached Kafka"
