"""A full disk under the spool: a webhook whose spool write fails is answered 503 (never 200),
what was spooled before stays intact, and once there is room again the ingest spools by
itself. The disk fills by a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored so a write past
it fails with EFBIG, as on a full disk) set on a real ingest process while Kafka is away."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hookstream.devtools import localkafka
from hookstream.ingest.spool import read_spool_file
from tests.support.ingest import SECRET, notification, signed_headers

TOKEN = "disk-full-api-token-0123456789"
NO_KAFKA = "127.0.0.1:9"  # refuses connections: webhooks are made durable in the spool
URL = "/webhooks/intercom"


@dataclass
class Ingest:
    process: subprocess.Popen[bytes]
    url: str
    spool: Path
    output: list[bytes]

    def post(self, body: bytes) -> httpx.Response:
        return httpx.post(
            f"{self.url}{URL}", content=body, headers=signed_headers(body), timeout=10
        )

    def post_events(self, count: int) -> httpx.Response:
        events = [
            {"event_name": "x", "created_at": 1_750_000_000, "user_id": f"u-{i}",
             "metadata": {f"m{k}": "v" * 255 for k in range(10)}}
            for i in range(count)
        ]  # fmt: skip
        return httpx.post(
            f"{self.url}/events",
            json=events,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )

    def limit_file_size(self, limit: int) -> None:
        """As if the disk were full past `limit` bytes per file (soft limit only, so it can be
        raised again)."""
        _soft, hard = resource.prlimit(self.process.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(self.process.pid, resource.RLIMIT_FSIZE, (limit, hard))

    def lift_limit(self) -> None:
        _soft, hard = resource.prlimit(self.process.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(self.process.pid, resource.RLIMIT_FSIZE, (hard, hard))


def _ignore_sigxfsz() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # kept across exec: a write fails instead


@pytest.fixture
def ingest(tmp_path: Path) -> Iterator[Ingest]:
    port = localkafka.free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": NO_KAFKA,
        "INTERCOM_CLIENT_SECRET": SECRET,
        "HOOKSTREAM_API_TOKEN": TOKEN,
        "HOOKSTREAM_SPOOL_PATH": str(tmp_path / "spool.sqlite3"),
        "HOOKSTREAM_LOG_LEVEL": "warning",
    }
    admin_port = ["--admin-port", str(localkafka.free_port())]
    process = subprocess.Popen(
        [sys.executable, "-m", "hookstream.cli", "ingest", "--port", str(port), *admin_port],
        env=env,
        stdout=subprocess.PIPE,  # a pipe, not a file: the size limit must hit the spool only
        stderr=subprocess.STDOUT,
        preexec_fn=_ignore_sigxfsz,  # noqa: PLW1509 - one signal disposition, nothing else
    )
    output: list[bytes] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: output.extend(process.stdout or []), daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError(b"".join(output).decode())
        yield Ingest(process, url, tmp_path / "spool.0.sqlite3", output)
    finally:
        process.terminate()
        process.wait(30)
        reader.join(5)
        process.stdout.close()


def test_a_full_disk_answers_503_keeps_what_was_spooled_and_recovers(ingest: Ingest) -> None:
    before = [notification() for _ in range(5)]
    for body in before:
        response = ingest.post(body)
        assert response.status_code == 200, response.text
        assert response.json()["durable_in"] == "spool"
    files = [ingest.spool, ingest.spool.with_name(ingest.spool.name + "-wal")]
    ingest.limit_file_size(max(f.stat().st_size for f in files) + 16 * 1024)

    stored: list[bytes] = list(before)
    refused: list[bytes] = []
    for _ in range(200):  # each body ~ 600 bytes: the limit is reached well before the end
        body = notification()
        response = ingest.post(body)
        assert response.status_code in (200, 503), response.text
        if response.status_code == 503:
            assert response.json()["error"]["code"] == "not_durable"
            refused.append(body)
            if len(refused) == 3:
                break
        else:
            stored.append(body)
    assert len(refused) == 3, "the file-size limit never made a spool write fail"
    assert ingest.process.poll() is None, "the ingest survives a full disk"

    def spooled() -> list[bytes]:
        return [stored_record.record.value for stored_record in read_spool_file(ingest.spool)]

    assert spooled() == stored, "every record answered 200 is intact, nothing refused is there"
    events = ingest.post_events(40)  # ~110 KB in one spool transaction: past the limit
    assert events.status_code == 503, events.text
    assert spooled() == stored, "none of the events"

    ingest.lift_limit()
    after = [notification() for _ in range(5)]
    for body in after:
        response = ingest.post(body)
        assert response.status_code == 200, response.text
    assert spooled() == stored + after
    assert b"spool_write_failed" in b"".join(ingest.output), "the failure was logged"
    events = ingest.post_events(40)
    assert events.status_code == 202, events.text
    assert events.json()["durable_in"] == "spool"
    assert len(spooled()) == len(stored) + len(after) + 40
    assert httpx.get(f"{ingest.url}/healthz", timeout=5).status_code == 200
