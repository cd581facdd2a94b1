"""Drive the ingest app in-process (lifespan included) and sign bodies as Intercom does."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

from hookstream.core.settings import Settings, load_settings
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


@asynccontextmanager
async def ingest_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client wired to a running ingest app (its lifespan started and stopped)."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ingest"
        ) as client,
    ):
        yield client


async def readiness_once_drained(client: httpx.AsyncClient, within: float = 60.0) -> Any:
    """The ingest's `/readyz` body once Kafka is up and the spool empty (AssertionError when
    that takes longer than `within` seconds)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        ready = (await client.get("/readyz")).json()
        if ready["kafka"] == "up" and ready["spool_depth"] == 0:
            return ready
        await asyncio.sleep(0.2)
    raise AssertionError(f"the spool did not drain within {within}s: {ready}")
