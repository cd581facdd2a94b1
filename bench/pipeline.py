"""The whole pipeline as separate processes on a broker of its own, for the end-to-end
benchmark and the fault-injection suite: Kafka, the Intercom sandbox, the worker, the sink
and the ingest, on free ports and on topics no other run uses, each process startable,
stoppable and killable on its own."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from hookstream.devtools import localkafka
from hookstream.devtools.dev import Service

SECRET = "pipeline-client-secret"
API_TOKEN = "pipeline-api-token"
# The sandbox's token, and the sink's: local, yet strong, as the sink requires outside dev mode.
ACCESS_TOKEN = "pipeline-sandbox-access-token"
ORDER = ("sandbox", "worker", "sink", "ingest")


@dataclass
class Topics:
    """The topics of one run, all under a prefix of its own."""

    prefix: str

    @property
    def raw(self) -> str:
        return f"{self.prefix}.notifications"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.notifications.dlq"

    @property
    def data_events(self) -> str:
        return f"{self.prefix}.data-events"

    @property
    def data_events_dlq(self) -> str:
        return f"{self.prefix}.data-events.dlq"

    def routed(self, intercom_topic: str) -> str:
        """Where the worker routes notifications of `intercom_topic` by default."""
        return f"{self.prefix}.{intercom_topic}"


@dataclass
class Pipeline:
    """Starts the pipeline in `work_dir`; `async with` starts and stops it all."""

    work_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    sandbox_args: list[str] = field(default_factory=list)
    topics: Topics = field(default_factory=lambda: Topics(f"run{uuid.uuid4().hex[:8]}"))
    bootstrap: str = ""
    services: dict[str, Service] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kafka_port = localkafka.free_port()
        self.ports = {name: localkafka.free_port() for name in (*ORDER, "ingest-admin")}
        self.kafka_dir = self.work_dir / "kafka"
        (self.work_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.exits: list[str] = []  # services that exited on their own (and were restarted)
        self.exits_zero = 0
        self._killed: set[str] = set()

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['ingest']}"

    @property
    def ingest_admin_url(self) -> str:
        """The ingest's admin port: /metrics, /readyz."""
        return f"http://127.0.0.1:{self.ports['ingest-admin']}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sandbox']}"

    def url(self, name: str) -> str:
        """Base URL of a service's HTTP port (its API, or its web port for metrics)."""
        return f"http://127.0.0.1:{self.ports[name]}"

    def env(self) -> dict[str, str]:
        """The environment every service of this run gets."""
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "INTERCOM_CLIENT_SECRET": SECRET,
            "HOOKSTREAM_API_TOKEN": API_TOKEN,
            "HOOKSTREAM_RAW_TOPIC": self.topics.raw,
            "HOOKSTREAM_DLQ_TOPIC": self.topics.dlq,
            "HOOKSTREAM_ROUTE_PREFIX": f"{self.topics.prefix}.",
            "HOOKSTREAM_DATA_EVENTS_TOPIC": self.topics.data_events,
            "HOOKSTREAM_DATA_EVENTS_DLQ_TOPIC": self.topics.data_events_dlq,
            "HOOKSTREAM_WORKER_ID": f"{self.topics.prefix}-worker",
            "HOOKSTREAM_SINK_ID": f"{self.topics.prefix}-sink",
            "HOOKSTREAM_SPOOL_PATH": str(self.work_dir / "spool" / "spool.sqlite3"),
            "HOOKSTREAM_DATA_DIR": str(self.work_dir / "faust"),
            "HOOKSTREAM_WORKER_WEB_PORT": str(self.ports["worker"]),
            "HOOKSTREAM_SINK_WEB_PORT": str(self.ports["sink"]),
            "INTERCOM_API_BASE_URL": self.sandbox_url,
            "INTERCOM_ACCESS_TOKEN": ACCESS_TOKEN,
            "HOOKSTREAM_LOG_FORMAT": "json",
            **self.extra_env,
        }

    async def __aenter__(self) -> Self:
        self.bootstrap = await asyncio.to_thread(
            localkafka.start, port=self.kafka_port, data_dir=self.kafka_dir
        )
        logs = self.work_dir / "logs"
        commands = {
            "sandbox": ["sandbox", "--port", str(self.ports["sandbox"]), *self.sandbox_args],
            "worker": ["worker"],
            "sink": ["sink"],
            "ingest": [
                "ingest",
                *("--port", str(self.ports["ingest"])),
                *("--admin-port", str(self.ports["ingest-admin"])),
            ],
        }
        for name in ORDER:
            self.services[name] = Service(
                name, commands[name], f"{self.url(name)}/healthz", logs / f"{name}.log"
            )
            await self.start(name)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for name in self.stop_order():
            if name in self.services:
                await asyncio.to_thread(self.services[name].stop)
        if self.owns_broker:
            await asyncio.to_thread(localkafka.stop, self.kafka_dir)

    def stop_order(self) -> list[str]:
        """The services in the order `__aexit__` stops them: the ingest first (no new
        intake), the sandbox last."""
        return list(reversed(ORDER))

    @property
    def owns_broker(self) -> bool:
        """Whether `__aexit__` stops the broker (the pipeline started it)."""
        return True

    def env_of(self, name: str) -> dict[str, str]:
        """The environment of one service (all get `env()` here)."""
        return self.env()

    async def start(self, name: str) -> None:
        """Start a service and wait until it is healthy."""
        service = self.services[name]
        service.start(self.env_of(name))
        self._killed.discard(name)
        await asyncio.to_thread(service.wait_healthy)

    async def stop(self, name: str) -> None:
        """Stop a service for good: SIGTERM (its graceful shutdown), SIGKILL after the grace
        period; `restart_exited` leaves it stopped."""
        self._killed.add(name)
        await asyncio.to_thread(self.services[name].stop)

    async def kill(self, name: str) -> None:
        """SIGKILL a service: a crash, with no chance to flush or commit."""
        self._killed.add(name)
        await asyncio.to_thread(self.services[name].kill)

    async def restart_exited(self) -> None:
        """Restart a service that exited without being killed (Kubernetes would), noting it:
        a service that cannot continue (a transaction that cannot commit while the broker is
        gone) exits non-zero by design."""
        for name, service in self.services.items():
            code = service.process.poll() if service.process else None
            if code is not None and name not in self._killed:
                self.exits.append(f"{time.strftime('%H:%M:%S')} {name} exited with {code}")
                if code == 0:  # a service that gives up must say so, for Kubernetes
                    self.exits_zero += 1
                await self.start(name)

    async def stop_broker(self) -> None:
        """Stop the broker (clean shutdown of its process; clients see it vanish)."""
        await asyncio.to_thread(localkafka.stop, self.kafka_dir)

    async def start_broker(self) -> None:
        """Start the broker again on the same port and data."""
        await asyncio.to_thread(localkafka.start, port=self.kafka_port, data_dir=self.kafka_dir)

    async def configure_sandbox(self, **changes: object) -> None:
        """Change the sandbox's behaviour at run time (rate limit, failures, hangs)."""
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{self.sandbox_url}/sandbox/config", json=changes)
            response.raise_for_status()

    async def sandbox_accepted(self) -> list[dict[str, object]]:
        """Every event the sandbox accepted, in arrival order."""
        events: list[dict[str, object]] = []
        since = 0
        async with httpx.AsyncClient(timeout=30) as client:
            while True:
                page = (
                    await client.get(
                        f"{self.sandbox_url}/sandbox/accepted",
                        params={"since": since, "limit": 5000},
                    )
                ).json()
                events += page["events"]
                if not page["events"]:
                    return events
                since = page["events"][-1]["seq"]
