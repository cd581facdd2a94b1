"""Helpers of the streams tests: raw records as the ingest writes them, and the worker run as
a real `hookstream worker` process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from hookstream.core.contract import (
    HEADER_DELIVERY_ATTEMPTS,
    HEADER_NOTIFICATION_ID,
    HEADER_RECEIVED_AT,
    HEADER_TOPIC,
    Headers,
    encode_headers,
)
from hookstream.devtools import localkafka
from tests.support.kafka import unique_name

PAYLOADS = Path(__file__).parent / "payloads"
HOOKSTREAM = Path(sys.executable).parent / "hookstream"


def payload(name: str) -> dict[str, Any]:
    """A real Intercom notification (see payloads/), parsed."""
    loaded: dict[str, Any] = orjson.loads((PAYLOADS / f"{name}.json").read_bytes())
    return loaded


def notification(
    notification_id: str,
    *,
    topic: str = "conversation.user.created",
    item_id: str | None = None,
    attempts: int = 1,
) -> bytes:
    """The body of a notification like Intercom's, with the given id, topic and item."""
    body = payload("conversation.user.created")
    body.update(id=notification_id, topic=topic, delivery_attempts=attempts)
    if item_id is not None:
        body["data"]["item"]["id"] = item_id
    return orjson.dumps(body)


@dataclass(frozen=True)
class Raw:
    """A record of the raw topic as the ingest writes it."""

    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)


def raw_notification(
    notification_id: str,
    *,
    topic: str = "conversation.user.created",
    item_id: str | None = None,
    attempts: int = 1,
) -> Raw:
    """A notification record per the contract: key = id, headers, the body bytes."""
    headers = encode_headers(
        {
            HEADER_TOPIC: topic,
            HEADER_DELIVERY_ATTEMPTS: attempts,
            HEADER_RECEIVED_AT: int(time.time() * 1000),
            HEADER_NOTIFICATION_ID: notification_id,
        }
    )
    value = notification(notification_id, topic=topic, item_id=item_id, attempts=attempts)
    return Raw(key=notification_id.encode(), value=value, headers=headers)


async def produce(bootstrap: str, topic: str, records: Iterable[Raw]) -> int:
    """Produce `records` to `topic` in order (one producer, acks=all); return how many."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    count = 0
    try:
        futures = []
        for record in records:
            futures.append(
                await producer.send(topic, record.value, key=record.key, headers=record.headers)
            )
            count += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return count


@dataclass
class WorkerConfig:
    """The environment of one worker group under test: unique topics, group and ports."""

    bootstrap: str
    data_root: Path
    partitions: int = 3
    ttl_seconds: float = 3600.0
    store: str = "rocksdb://"
    routes_file: Path | None = None
    commit_interval: float = 0.2
    name: str = field(default_factory=lambda: unique_name("hs"))
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def raw_topic(self) -> str:
        return f"{self.name}.raw"

    @property
    def dlq_topic(self) -> str:
        return f"{self.name}.dlq"

    @property
    def prefix(self) -> str:
        return f"{self.name}.routed."

    def routed(self, intercom_topic: str) -> str:
        return f"{self.prefix}{intercom_topic}"

    def env(self, data_dir: Path, web_port: int) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("HOOKSTREAM_", "KAFKA_", "INTERCOM_"))
        }
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            HOOKSTREAM_RAW_TOPIC=self.raw_topic,
            HOOKSTREAM_DLQ_TOPIC=self.dlq_topic,
            HOOKSTREAM_ROUTE_PREFIX=self.prefix,
            HOOKSTREAM_WORKER_ID=self.name,
            HOOKSTREAM_TOPIC_PARTITIONS=str(self.partitions),
            HOOKSTREAM_DEDUP_TTL_SECONDS=str(self.ttl_seconds),
            HOOKSTREAM_STORE=self.store,
            HOOKSTREAM_DATA_DIR=str(data_dir),
            HOOKSTREAM_WORKER_WEB_PORT=str(web_port),
            HOOKSTREAM_WORKER_COMMIT_INTERVAL_SECONDS=str(self.commit_interval),
            HOOKSTREAM_WORKER_SESSION_TIMEOUT_SECONDS="6",
            HOOKSTREAM_LOG_FORMAT="json",
            HOOKSTREAM_LOG_LEVEL="info",
        )
        if self.routes_file is not None:
            env["HOOKSTREAM_ROUTES_FILE"] = str(self.routes_file)
        env.update(self.extra_env)
        return env


class WorkerProcess:
    """`hookstream worker` in a child process, with its own data directory and web port."""

    def __init__(
        self, config: WorkerConfig, instance: str = "w1", args: tuple[str, ...] = ()
    ) -> None:
        self.config = config
        self.args = args
        self.data_dir = config.data_root / instance
        self.web_port = localkafka.free_port()
        self.log_path = config.data_root / f"{instance}.log"
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        """Start the process (again, after a kill: same data directory, same port)."""
        if self._log is not None:
            self._log.close()
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(HOOKSTREAM), "worker", "--web-bind", "127.0.0.1", *self.args],
            env=self.config.env(self.data_dir, self.web_port),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until /readyz answers 200 (raises with the log tail if it never does)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url("/readyz"), timeout=1.0).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"worker not ready after {timeout}s:\n{self.log_tail()}")

    def metrics(self) -> dict[str, float]:
        """The worker's /metrics as {sample name with labels: value}."""
        text = httpx.get(self.url("/metrics"), timeout=5.0).text
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def wait_for_metric(self, name: str, value: float, timeout: float = 30.0) -> dict[str, float]:
        """Poll /metrics until sample `name` reaches `value`; return the last scrape."""
        deadline = time.monotonic() + timeout
        while True:
            metrics = self.metrics()
            if metrics.get(name, 0.0) >= value or time.monotonic() > deadline:
                return metrics
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no clean-up at all."""
        self._signal(signal.SIGKILL)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait for the exit; return the exit code."""
        self._signal(signal.SIGTERM)
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """Make sure the process is gone (used in teardown)."""
        if self.process is not None and self.process.poll() is None:
            self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def log_events(self) -> list[Mapping[str, Any]]:
        """The worker's JSON log lines, parsed (other lines are skipped)."""
        events = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                event = orjson.loads(line)
                if isinstance(event, dict):
                    events.append(event)
        return events

    def _signal(self, signum: int) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
            if signum == signal.SIGKILL:
                self.process.wait(timeout=30)

    def _check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"worker exited with {self.process.returncode}:\n{self.log_tail()}"
            )


@contextlib.contextmanager
def running_workers(config: WorkerConfig, count: int = 1) -> Iterator[list[WorkerProcess]]:
    """`count` workers of one group, started and ready; all stopped at the end."""
    workers = [WorkerProcess(config, f"w{i + 1}") for i in range(count)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.wait_ready()
        yield workers
    finally:
        for worker in workers:
            worker.stop()
