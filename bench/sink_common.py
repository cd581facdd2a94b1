"""What the sink benchmarks share: a broker, the sandbox and the sink as processes of their
own, producing a backlog of data events, and reading what the sandbox accepted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hookstream.core.kafka import KafkaConnection
from hookstream.devtools import localkafka

TOKEN = "bench-sandbox-access-token"  # the sandbox's token, local only, yet strong: the sink checks


def hookstream() -> str:
    """The `hookstream` command of this virtualenv."""
    found = shutil.which("hookstream", path=str(Path(sys.executable).parent))
    if found is None:
        sys.exit("hookstream is not installed in this virtualenv")
    return found


def event(n: int, users: int = 500) -> dict[str, Any]:
    """The n-th benchmark event: one of `users` contacts, a little metadata."""
    return {
        "event_name": f"viewed-page-{n % 5}",
        "created_at": 1_700_000_000 + n,
        "user_id": f"user-{n % users}",
        "metadata": {"path": f"/docs/{n % 97}", "load": 0.25},
    }


async def produce_backlog(bootstrap: str, topic: str, count: int, partitions: int) -> None:
    """Create `topic` and fill it with `count` events, keyed by contact."""
    admin = AIOKafkaAdminClient(**KafkaConnection(bootstrap).client_config("hookstream-bench"))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        **KafkaConnection(bootstrap).client_config("hookstream-bench"), acks="all", linger_ms=10
    )
    await producer.start()
    try:
        futures = []
        for n in range(count):
            body = event(n)
            futures.append(
                await producer.send(topic, orjson.dumps(body), key=body["user_id"].encode())
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


class Sandbox:
    """`hookstream sandbox` on a free port, with its control API."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.client = httpx.AsyncClient(base_url=self.url, timeout=30)

    async def stats(self) -> dict[str, Any]:
        """Counters and per-window counts."""
        return dict((await self.client.get("/sandbox/stats")).json())

    async def accepted(self) -> list[dict[str, Any]]:
        """Every accepted entry, oldest first."""
        return list((await self.client.get("/sandbox/accepted")).json()["events"])

    async def configure(self, **changes: Any) -> None:
        """Change its behaviour."""
        (await self.client.post("/sandbox/config", json=changes)).raise_for_status()

    async def reset(self) -> None:
        """Forget events, counters and windows."""
        (await self.client.post("/sandbox/reset")).raise_for_status()


@contextlib.asynccontextmanager
async def sandbox(*args: str) -> AsyncIterator[Sandbox]:
    """A sandbox process (arguments of `hookstream sandbox`), stopped on exit."""
    port = localkafka.free_port()
    process = await asyncio.create_subprocess_exec(
        hookstream(), "sandbox", "--port", str(port), "--access-token", TOKEN, *args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    box = Sandbox(port)
    try:
        await wait_until(lambda: _answers(box), within=20, what="the sandbox")
        yield box
    finally:
        await box.client.aclose()
        await stop(process)


async def _answers(box: Sandbox) -> bool:
    try:
        await box.stats()
    except httpx.TransportError:
        return False
    return True


@contextlib.asynccontextmanager
async def sink(env: dict[str, str], log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`hookstream sink` with `env` added to this environment, stopped (SIGTERM) on exit."""
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            hookstream(), "sink", env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            await stop(process)


def sink_env(bootstrap: str, sandbox_url: str, topic: str, **settings: object) -> dict[str, str]:
    """The environment of a sink reading `topic` and sending to the sandbox."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "HOOKSTREAM_DATA_EVENTS_TOPIC": topic,
        "HOOKSTREAM_DATA_EVENTS_DLQ_TOPIC": f"{topic}.dlq",
        "HOOKSTREAM_SINK_ID": f"bench-sink-{uuid.uuid4().hex[:8]}",
        "HOOKSTREAM_DATA_DIR": tempfile.mkdtemp(prefix="bench-sink-"),
        "HOOKSTREAM_SINK_WEB_PORT": str(localkafka.free_port()),
        "INTERCOM_ACCESS_TOKEN": TOKEN,
        "INTERCOM_API_BASE_URL": sandbox_url,
        "HOOKSTREAM_LOG_FORMAT": "json",
    }
    env.update({f"HOOKSTREAM_{name.upper()}": str(value) for name, value in settings.items()})
    return env


async def stop(process: asyncio.subprocess.Process, within: float = 30) -> None:
    """SIGTERM, then SIGKILL after `within` seconds."""
    if process.returncode is None:
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), within)
    except TimeoutError:
        process.kill()
        await process.wait()


async def wait_until(check: Any, *, within: float, what: str, every: float = 0.25) -> None:
    """Poll `check()` (an async callable) until true; exit after `within` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {within} s")
        await asyncio.sleep(every)


def unique_topic(prefix: str) -> str:
    """A topic name no other run uses."""
    return f"{prefix}.{uuid.uuid4().hex[:10]}"
