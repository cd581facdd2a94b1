"""The one Kafka client factory: how every hookstream client reaches Kafka.

`KafkaConnection` holds the connection settings (`KAFKA_*`) and builds the connection
arguments of every client: aiokafka's producers, consumers and admin clients
(`client_config`), and Faust's apps (`faust_config`). The ingest's producer, the worker, the
sink, the topic admin, the operator commands and the benchmarks all take theirs from here, so
a connection setting is added in one place.

The context managers below are the operator commands' clients: started within a bounded wait,
closed on exit, foreign errors translated once into `hookstream.core.errors`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError

from hookstream.core.errors import KafkaUnreachable, TopicAdminFailed, TopicNotFound
from hookstream.core.settings import KafkaSettings

T = TypeVar("T")

DEFAULT_CONNECT_TIMEOUT = 10.0
_RETRY_PAUSE = 0.2


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    """Where Kafka is and how to connect to it."""

    bootstrap_servers: str
    """Comma-separated `host:port` pairs."""

    @classmethod
    def from_settings(cls, kafka: KafkaSettings) -> KafkaConnection:
        """The connection the settings describe."""
        return cls(bootstrap_servers=kafka.bootstrap_servers)

    def with_bootstrap(self, bootstrap: str | None) -> KafkaConnection:
        """The same connection to other bootstrap servers (an operator's `--bootstrap`)."""
        return self if not bootstrap else replace(self, bootstrap_servers=bootstrap)

    @property
    def bootstrap_list(self) -> list[str]:
        """The bootstrap servers, one `host:port` each."""
        return [server.strip() for server in self.bootstrap_servers.split(",") if server.strip()]

    def client_config(self, client_id: str) -> dict[str, Any]:
        """The connection arguments of an aiokafka producer, consumer or admin client."""
        return {"bootstrap_servers": self.bootstrap_servers, "client_id": client_id}

    def faust_config(self) -> dict[str, Any]:
        """The connection arguments of a `faust.App`."""
        return {"broker": [f"kafka://{server}" for server in self.bootstrap_list]}


def _unreachable(
    connection: KafkaConnection, wait_seconds: float, exc: BaseException
) -> KafkaUnreachable:
    bootstrap = connection.bootstrap_servers
    if isinstance(exc, TimeoutError):
        return KafkaUnreachable(
            f"cannot reach Kafka at {bootstrap}: no answer in {wait_seconds:g} s"
        )
    return KafkaUnreachable(f"cannot reach Kafka at {bootstrap}: {exc}")


async def _start(client: Any, connection: KafkaConnection, wait_seconds: float) -> None:
    try:
        async with asyncio.timeout(wait_seconds):
            await client.start()
    except (TimeoutError, KafkaConnectionError) as exc:
        raise _unreachable(connection, wait_seconds, exc) from exc


async def bounded(awaitable: Awaitable[T], *, what: str, wait_seconds: float) -> T:
    """Await a broker call for at most `wait_seconds`; its failure is a `TopicAdminFailed`
    naming `what` was attempted."""
    try:
        async with asyncio.timeout(wait_seconds):
            return await awaitable
    except TimeoutError as exc:
        raise TopicAdminFailed(f"{what}: no answer within {wait_seconds:g} s") from exc
    except KafkaError as exc:
        raise TopicAdminFailed(f"{what}: {exc}", retriable=exc.retriable) from exc


async def retrying(call: Callable[[], Awaitable[T]], *, what: str, wait_seconds: float) -> T:
    """`bounded`, but a retriable broker error (a coordinator not elected yet on a fresh
    cluster, a leader moving) is tried again until `wait_seconds` have passed."""
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        left = deadline - asyncio.get_running_loop().time()
        try:
            return await bounded(call(), what=what, wait_seconds=max(left, 0.001))
        except TopicAdminFailed as exc:
            cause = exc.__cause__
            if not (isinstance(cause, KafkaError) and cause.retriable) or left <= _RETRY_PAUSE:
                raise
        await asyncio.sleep(_RETRY_PAUSE)


@asynccontextmanager
async def admin_client(
    connection: KafkaConnection, *, wait_seconds: float, client_id: str = "hookstream-ops"
) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client whose requests give up after `wait_seconds`."""
    client = AIOKafkaAdminClient(
        **connection.client_config(client_id),
        request_timeout_ms=max(1000, int(wait_seconds * 1000)),
    )
    try:
        await _start(client, connection, wait_seconds)
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def consumer(
    connection: KafkaConnection, *, wait_seconds: float, **config: Any
) -> AsyncIterator[Any]:
    """A started consumer (no subscription: callers assign partitions)."""
    client = AIOKafkaConsumer(
        **connection.client_config("hookstream-ops"), enable_auto_commit=False, **config
    )
    try:
        await _start(client, connection, wait_seconds)
        yield client
    finally:
        await client.stop()


@asynccontextmanager
async def producer(
    connection: KafkaConnection, *, wait_seconds: float, **config: Any
) -> AsyncIterator[Any]:
    """A started producer."""
    client = AIOKafkaProducer(**connection.client_config("hookstream-ops"), **config)
    try:
        await _start(client, connection, wait_seconds)
        yield client
    finally:
        await client.stop()


@dataclass(frozen=True, slots=True)
class TopicLayout:
    """A topic's partitions and replication factor, from the cluster's metadata."""

    name: str
    partitions: int
    replication: int


async def topic_layouts(
    admin: AIOKafkaAdminClient, *, wait_seconds: float
) -> dict[str, TopicLayout]:
    """Every topic on the cluster. A metadata request for all topics: unlike one naming a
    topic, it never makes a broker with `auto.create.topics.enable` create it."""
    described = await bounded(
        admin.describe_topics(None), what="list topics", wait_seconds=wait_seconds
    )
    layouts: dict[str, TopicLayout] = {}
    for topic in described:
        if topic["error_code"] != 0 or topic.get("is_internal"):
            continue
        partitions = topic["partitions"]
        replication = max((len(p["replicas"]) for p in partitions), default=0)
        layouts[topic["topic"]] = TopicLayout(topic["topic"], len(partitions), replication)
    return layouts


async def require_topic(
    admin: AIOKafkaAdminClient, topic: str, *, wait_seconds: float
) -> TopicLayout:
    """The layout of `topic`; `TopicNotFound` when it does not exist."""
    layouts = await topic_layouts(admin, wait_seconds=wait_seconds)
    if topic not in layouts:
        raise TopicNotFound(f"topic {topic!r} does not exist")
    return layouts[topic]
