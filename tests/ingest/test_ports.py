"""`hookstream ingest` serves two ports from one process: the webhook port answers the
webhook, `/events` and a bare `/healthz` and nothing else; the admin port answers the probes,
the metrics and the docs; SIGTERM closes both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.ingest import (
    SECRET,
    IngestProcess,
    notification,
    process_env,
    signed_headers,
    start_ingest,
)

NO_KAFKA = "127.0.0.1:9"  # refuses connections: the ingest spools, and is not ready
ADMIN_ONLY = ["/metrics", "/readyz", "/docs", "/openapi.json", "/redoc", "/table", "/router"]


@pytest.fixture
def ingest(tmp_path: Path) -> Iterator[IngestProcess]:
    env = process_env(NO_KAFKA, tmp_path, HOOKSTREAM_LOG_FORMAT="json")
    ingest = start_ingest(env, tmp_path / "ingest.log")
    try:
        yield ingest
    finally:
        if ingest.process.poll() is None:
            ingest.process.kill()
            ingest.process.wait()


def test_the_webhook_port_serves_only_the_public_paths_and_the_admin_port_the_rest(
    ingest: IngestProcess, tmp_path: Path
) -> None:
    process, url, admin = ingest.process, ingest.url, ingest.admin_url
    body = notification()
    accepted = httpx.post(f"{url}/webhooks/intercom", content=body, headers=signed_headers(body))
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["durable_in"] == "spool"
    assert httpx.head(f"{url}/webhooks/intercom").status_code == 200
    assert httpx.post(f"{url}/events", json={}).status_code == 401  # there, and guarded
    health = httpx.get(f"{url}/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    for path in ADMIN_ONLY:
        assert httpx.get(f"{url}{path}").status_code == 404, path

    ready = httpx.get(f"{admin}/readyz")
    assert ready.status_code == 503  # Kafka is away
    assert ready.json()["spool_depth"] == 1
    assert httpx.get(f"{admin}/readyz", params={"allow_spool": "true"}).status_code == 200
    metrics = httpx.get(f"{admin}/metrics").text
    assert 'hookstream_ingest_durable_total{via="spool"} 1.0' in metrics
    schema = httpx.get(f"{admin}/openapi.json").json()
    assert set(schema["paths"]) == {"/webhooks/intercom", "/events", "/healthz"}
    assert "swagger-ui" in httpx.get(f"{admin}/docs").text
    assert httpx.post(f"{admin}/webhooks/intercom", content=body).status_code == 404

    process.send_signal(signal.SIGTERM)
    # uvicorn re-raises the SIGTERM it handled once it has shut down gracefully
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert '"event": "ingest_stopping"' in (tmp_path / "ingest.log").read_text()
    for base in (url, admin):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/healthz")


def test_the_two_ports_must_differ(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hookstream.cli",
            "ingest",
            "--port",
            "8181",
            "--admin-port",
            "8181",
        ],
        env={**os.environ, "INTERCOM_CLIENT_SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "HOOKSTREAM_INGEST_ADMIN_PORT and HOOKSTREAM_INGEST_PORT are both 8181" in result.stderr
