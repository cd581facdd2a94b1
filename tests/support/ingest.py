"""Drive the ingest app in-process (lifespan included) and sign bodies as Intercom does."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from hookstream.core.settings import Settings, load_settings
from hookstream.devtools.localkafka import free_port
from hookstream.ingest import create_app

SECRET = "test-client-secret"
# Intercom's sample payloads, copied byte for byte from shared/intercom/examples (SOURCES.md).
EXAMPLES = Path(__file__).resolve().parents[2] / "sandbox" / "samples"


def intercom_signature(body: bytes, secret: str = SECRET) -> str:
    """X-Hub-Signature as Intercom computes it, written here independently of the ingest."""
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def notification(topic: str = "conversation.user.created", **fields: object) -> bytes:
    """A notification envelope with a fresh id, as Intercom would send it."""
    envelope: dict[str, object] = {
        "type": "notification_event",
        "app_id": "abc123",
        "id": f"notif_{uuid.uuid4()}",
        "topic": topic,
        "delivery_attempts": 1,
        "first_sent_at": 1_700_000_000,
        "created_at": 1_700_000_000,
        "data": {
            "type": "notification_event_data",
            "item": {"type": "conversation", "id": str(uuid.uuid4().int)[:12]},
        },
    }
    envelope.update(fields)
    return orjson.dumps(envelope)


def signed_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    """The headers of an Intercom delivery of `body`."""
    return {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": "intercom-parrot-service-client/1.0",
        "X-Hub-Signature": intercom_signature(body, secret),
    }


def ingest_settings(bootstrap: str, tmp_path: Path, **overrides: object) -> Settings:
    """Settings for an ingest on `bootstrap` with its spool under `tmp_path`."""
    values: dict[str, object] = {
        "kafka_bootstrap_servers": bootstrap,
        "intercom_client_secret": SECRET,
        "hookstream_spool_path": tmp_path / "spool.sqlite3",
        "hookstream_raw_topic": f"it.raw.{uuid.uuid4().hex[:10]}",
    }
    values.update(overrides)
    return load_settings(**values)


class IngestClient(httpx.AsyncClient):
    """A client of the ingest's webhook port; `admin` is one of its admin port."""

    admin: httpx.AsyncClient


@asynccontextmanager
async def ingest_client(settings: Settings) -> AsyncIterator[IngestClient]:
    """An HTTP client wired to a running ingest app (its lifespan started and stopped): its
    requests reach the webhook port, those of its `admin` the admin port (the app tells them
    apart by the port, as it does behind uvicorn)."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    admin_url = f"http://ingest:{settings.ingest.admin_port}"
    async with (
        app.webhooks.router.lifespan_context(app.webhooks),
        IngestClient(transport=transport, base_url="http://ingest") as client,
        httpx.AsyncClient(transport=transport, base_url=admin_url) as admin,
    ):
        client.admin = admin
        yield client


async def readiness_once_drained(client: IngestClient, within: float = 60.0) -> Any:
    """The ingest's `/readyz` body once Kafka is up and the spool empty (AssertionError when
    that takes longer than `within` seconds)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        ready = (await client.admin.get("/readyz")).json()
        if ready["kafka"] == "up" and ready["spool_depth"] == 0:
            return ready
        await asyncio.sleep(0.2)
    raise AssertionError(f"the spool did not drain within {within}s: {ready}")


def process_env(bootstrap: str, tmp_path: Path, **variables: str) -> dict[str, str]:
    """The environment of a `hookstream ingest` process on `bootstrap` with its spool under
    `tmp_path`, plus `variables` (by their names)."""
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "INTERCOM_CLIENT_SECRET": SECRET,
        "HOOKSTREAM_SPOOL_PATH": str(tmp_path / "spool.sqlite3"),
        **variables,
    }


@dataclass(frozen=True)
class IngestProcess:
    """A running `hookstream ingest` and the URLs of its two ports."""

    process: subprocess.Popen[bytes]
    url: str
    admin_url: str


def start_ingest(
    env: Mapping[str, str],
    log: Path,
    *,
    port: int | None = None,
    admin_port: int | None = None,
    ready: str = "/healthz",
    within: float = 30.0,
) -> IngestProcess:
    """`hookstream ingest` with `env` on `port` and `admin_port` (free ones by default), its
    output appended to `log`, once its admin port answers `ready` with 200 (killed, and
    AssertionError with its log, when that takes longer than `within` seconds)."""
    port = port or free_port()
    admin_port = admin_port or free_port()
    command = ["ingest", "--port", str(port), "--admin-port", str(admin_port)]
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "hookstream.cli", *command],
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    ingest = IngestProcess(process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}")
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{ingest.admin_url}{ready}", timeout=1).status_code == 200:
                return ingest
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise AssertionError(f"ingest did not start: {log.read_text()}")
