"""Helpers for the sink's integration tests: settings for a sink on unique topics, producing
data events, and a sandbox served for real (`hookstream sandbox`) with its control API."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from hookstream.core.settings import Settings, load_settings, setting_values
from hookstream.devtools.localkafka import free_port
from hookstream.sandbox import DEFAULT_ACCESS_TOKEN
from tests.support.kafka import create_topics, unique_name


def sink_settings(bootstrap: str, tmp_path: Path, base_url: str, **overrides: Any) -> Settings:
    """A sink on fresh topics and its own consumer group, sending to `base_url`."""
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": bootstrap,
        "hookstream_data_events_topic": unique_name("test.data-events"),
        "hookstream_data_events_dlq_topic": unique_name("test.data-events.dlq"),
        "hookstream_sink_id": unique_name("test-sink"),
        "hookstream_data_dir": tmp_path / "faust",
        "intercom_access_token": DEFAULT_ACCESS_TOKEN,
        "intercom_api_base_url": base_url,
        "hookstream_sink_web_port": free_port(),
        "hookstream_sink_rate_limit_per_minute": 60_000_000,
        "hookstream_sink_batch_size": 100,
        "hookstream_sink_batch_within_seconds": 0.05,
        "hookstream_sink_concurrency": 16,
        "hookstream_sink_retry_deadline_seconds": 30.0,
        "hookstream_sink_session_timeout_seconds": 6.0,
        "hookstream_topic_partitions": 3,
    }
    values.update(overrides)
    return load_settings(**values)


async def create_sink_topics(settings: Settings) -> None:
    """The input and dead-letter topics, with the settings' partition count."""
    await create_topics(
        settings.kafka.bootstrap_servers,
        [settings.topics.data_events, settings.topics.data_events_dlq],
        partitions=settings.topics.partitions,
    )


def event(user: str, n: int, **fields: Any) -> dict[str, Any]:
    """A valid data event of `user`, the n-th."""
    return {
        "event_name": f"did-thing-{n % 7}",
        "created_at": 1_700_000_000 + n,
        "user_id": user,
        **fields,
    }


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, object]]) -> None:
    """Produce (key, event) records, JSON-encoding the events that are not bytes already."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, value=value if isinstance(value, bytes) else orjson.dumps(value), key=key
            )
            for key, value in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


class SandboxControl:
    """The sandbox's control API, over one client (building a client costs ~50 ms of TLS
    context set-up, too much for a poll)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._client = httpx.AsyncClient(base_url=base_url, timeout=10)

    async def aclose(self) -> None:
        """Close the client."""
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._client.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    async def accepted(self) -> list[dict[str, Any]]:
        """Every accepted entry, in arrival order."""
        return list((await self._call("GET", "/sandbox/accepted"))["events"])

    async def stats(self) -> dict[str, Any]:
        """Counters and per-window counts."""
        return dict(await self._call("GET", "/sandbox/stats"))

    async def configure(self, **changes: Any) -> None:
        """Change the sandbox's behaviour now."""
        await self._call("POST", "/sandbox/config", json=changes)


@asynccontextmanager
async def sandbox(tmp_path: Path, **config: Any) -> AsyncIterator[SandboxControl]:
    """`hookstream sandbox` in a process of its own (so it does not share the test's
    interpreter lock) on a free port, then configured with `config` (SandboxConfig fields)."""
    port = free_port()
    log = (tmp_path / f"sandbox-{port}.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        *[_hookstream(), "sandbox", "--port", str(port), "--access-token", DEFAULT_ACCESS_TOKEN],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    control = SandboxControl(f"http://127.0.0.1:{port}")
    try:

        async def up() -> bool:
            try:
                await control.stats()
            except httpx.TransportError:
                if process.returncode is not None:
                    raise AssertionError("the sandbox exited") from None
                return False
            return True

        await eventually(up, within=20, what="the sandbox to answer", every=0.1)
        if config:
            await control.configure(**config)
        yield control
    finally:
        await control.aclose()
        await stop_process(process)
        log.close()


async def stop_process(process: asyncio.subprocess.Process, within: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited `within` seconds later."""
    if process.returncode is None:
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), within)
    except TimeoutError:
        process.kill()
        await process.wait()


def _hookstream() -> str:
    executable = shutil.which("hookstream", path=str(Path(sys.executable).parent))
    assert executable is not None
    return executable


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float, what: str, every: float = 0.2
) -> None:
    """Wait until `check()` is true; fail with `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(every)


@asynccontextmanager
async def web(port: int) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a sink's web endpoints."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        yield client


def as_environment(settings: Settings) -> dict[str, str]:
    """The environment variables that give a `hookstream sink` process these settings."""
    env: dict[str, str] = {}
    for variable, value in setting_values(settings):
        if value is None or isinstance(value, list):
            continue
        env[variable] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    return env


@asynccontextmanager
async def sink_process(settings: Settings, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`hookstream sink` with `settings`, SIGTERM'd (then SIGKILL'd) on exit if still up."""
    env = {**os.environ, **as_environment(settings), "HOOKSTREAM_LOG_FORMAT": "json"}
    env["HOOKSTREAM_ALLOW_DEV_SECRETS"] = "true"  # the sandbox's token is a development one
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            _hookstream(), "sink", env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            await stop_process(process)
