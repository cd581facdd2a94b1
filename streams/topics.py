"""Creating the worker's routed topics on first use (a routes file may name any topic, and
Intercom has more than a hundred); the raw and dead-letter topics come from hookstream's
catalogue (`hookstream.core.topics.ensure_topics`), created at start.

One admin client per process, owned by `TopicAdmin` (an async context manager).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from hookstream.core.logs import get_logger
from hookstream.streams.errors import TopicAdminError

_TOPIC_ALREADY_EXISTS = 36

log = get_logger(__name__)


class TopicAdmin:
    """Creates topics with the configured partitions and replication, once each."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        partitions: int,
        replication: int,
        configs: Mapping[str, str] | None = None,
        client_id: str = "hookstream-worker-admin",
    ) -> None:
        self.partitions = partitions
        self.replication = replication
        self.configs = dict(configs or {})
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._client: AIOKafkaAdminClient | None = None
        self._known: set[str] = set()

    async def start(self) -> None:
        """Connect and learn which topics exist. Starting twice is harmless."""
        if self._client is not None:
            return
        client = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap_servers, client_id=self._client_id
        )
        try:
            await client.start()
            self._known = set(await client.list_topics())
        except KafkaError as exc:
            await client.close()
            raise TopicAdminError(f"cannot reach Kafka at {self._bootstrap_servers}") from exc
        self._client = client

    async def close(self) -> None:
        """Disconnect. Closing twice is harmless."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def ensure(self, name: str, *, config: Mapping[str, str] | None = None) -> None:
        """Create topic `name` unless it exists (raises `TopicAdminError`)."""
        if name in self._known:
            return
        response = await self._call(
            "create_topics",
            [
                NewTopic(
                    name,
                    num_partitions=self.partitions,
                    replication_factor=self.replication,
                    topic_configs={**self.configs, **(config or {})},
                )
            ],
        )
        for error in response.to_object()["topic_errors"]:
            code, message = error["error_code"], error["error_message"]
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                raise TopicAdminError(f"cannot create topic {name!r}: {message} ({code})")
            if code == 0:
                log.info(
                    "topic.created",
                    topic=name,
                    partitions=self.partitions,
                    replication=self.replication,
                )
        self._known.add(name)

    async def partition_count(self, name: str) -> int | None:
        """How many partitions topic `name` has; None when it does not exist."""
        described = await self._call("describe_topics", [name])
        for topic in described:
            if topic["topic"] == name and topic["error_code"] == 0:
                return len(topic["partitions"])
        return None

    async def _call(self, method: str, *args: Any) -> Any:
        if self._client is None:
            raise TopicAdminError("the topic admin is not started")
        try:
            return await getattr(self._client, method)(*args)
        except KafkaError as exc:
            raise TopicAdminError(f"{method} failed: {exc!r}") from exc
