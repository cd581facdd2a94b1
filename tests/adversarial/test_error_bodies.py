"""A 503 tells the sender to retry; what went wrong inside (an exception, SQLite's message,
a path) goes to the log, never into the answer."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from hookstream.ingest.spool import Spool
from tests.support.ingest import ingest_client, ingest_settings, notification, signed_headers

NO_KAFKA = "127.0.0.1:9"  # refuses connections: every webhook goes to the spool
URL = "/webhooks/intercom"
INSIDE = "/var/lib/hookstream/spool/spool.0.sqlite3 disk I/O error"


async def test_a_spool_write_failure_is_a_503_without_its_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_insert(_spool: Spool, _rows: object) -> None:
        raise sqlite3.OperationalError(INSIDE)

    monkeypatch.setattr(Spool, "_insert", failing_insert)
    async with ingest_client(ingest_settings(NO_KAFKA, tmp_path)) as client:
        body = notification()
        with capture_logs() as logs:
            response = await client.post(URL, content=body, headers=signed_headers(body))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "not_durable"
    assert "retry" in response.json()["error"]["message"]
    assert "I/O" not in response.text
    assert "Error" not in response.text
    assert any(e["event"] == "spool_write_failed" for e in logs), logs


async def test_an_unexpected_failure_is_a_503_without_its_repr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing_append(*_args: object) -> None:
        raise RuntimeError(INSIDE)

    monkeypatch.setattr(Spool, "append", failing_append)
    async with ingest_client(ingest_settings(NO_KAFKA, tmp_path)) as client:
        body = notification()
        with capture_logs() as logs:
            response = await client.post(URL, content=body, headers=signed_headers(body))
    assert response.status_code == 503
    assert response.json()["error"] == {
        "code": "not_durable",
        "message": "the record could not be stored; retry",
    }
    assert any(e["event"] == "write_failed" for e in logs), logs
