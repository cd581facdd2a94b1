"""The catalogue of hookstream's own topics, and creating and describing them.

    role          setting                            retention  why
    raw           HOOKSTREAM_RAW_TOPIC               7 days     the worker's input
    dead-letter   HOOKSTREAM_DLQ_TOPIC               30 days    time to notice, fix and replay
    data-events   HOOKSTREAM_DATA_EVENTS_TOPIC       7 days     the sink's input
    dead-letter   HOOKSTREAM_DATA_EVENTS_DLQ_TOPIC   30 days    time to notice, fix and replay

All take HOOKSTREAM_TOPIC_PARTITIONS and HOOKSTREAM_TOPIC_REPLICATION, `cleanup.policy=delete`
and `min.insync.replicas` 2 (1 on a one-replica dev broker), as `k8s/base/topics` does for
Strimzi. The raw topic and its dead letters carry whole webhook bodies, so their
`max.message.bytes` leaves room for HOOKSTREAM_MAX_BODY_BYTES plus key and headers (Kafka's
default, 1 MiB + 12 bytes per batch, would refuse the largest body the ingest accepts).

`ensure_topics(settings)` creates the missing ones and leaves existing ones as they are (dev
mode, `hookstream topics create` and the worker at start call it);
`describe_topics(settings)` reports them, and the routed `<prefix>*` topics that exist.
`TopicAdmin` creates the worker's routed topics on first use (a routes file may name any
topic, and Intercom has more than a hundred): one admin client per process, an async context
manager. Every topic is created by the code in this module, Faust's internal topics (the
worker's table changelog) too: `restrain_faust` creates them before Faust starts.

HOOKSTREAM_CREATE_TOPICS=false (where Strimzi `KafkaTopic`s own the topics): nothing is
created. `ensure_topics` and `restrain_faust` then raise `TopicMissing` naming what is
missing, and `TopicAdmin.ensure` raises it for a routed topic that does not exist (the
worker dead-letters the notification as `routed_topic_missing`; `hookstream replay` moves
it back once the topic exists). A broker that refuses CreateTopics for want of an ACL gives
`KafkaAccessDenied` (operation, topic, principal), a configuration error, never retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import for_code

from hookstream.core import kafka
from hookstream.core.compat import aiokafka as aiokafka_compat
from hookstream.core.errors import KafkaAccessDenied, TopicAdminFailed, TopicMissing
from hookstream.core.kafka import DEFAULT_CONNECT_TIMEOUT, KafkaConnection, TopicLayout
from hookstream.core.logs import get_logger
from hookstream.core.settings import MiB, Settings, TopicSettings

DAY_MS = 24 * 3600 * 1000
RECORD_OVERHEAD_BYTES = 64 * 1024
"""Room for the key, headers and batch framing around the largest webhook body."""

KEY_CONFIGS = ("cleanup.policy", "retention.ms", "min.insync.replicas", "max.message.bytes")
"""Configs `describe` always shows, whether set on the topic or inherited."""

_TOPIC_ALREADY_EXISTS = 36
_AUTHORIZATION_FAILED = (29, 31)  # TOPIC_ and CLUSTER_AUTHORIZATION_FAILED
MISSING_RECHECK_SECONDS = 1.0
"""How long `TopicAdmin` trusts that a topic is missing before it lists the topics again."""
_CREATE_SETTING = "HOOKSTREAM_CREATE_TOPICS"
_DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs `config_source`: set on the topic itself
# The topic admin's requests: attempts and the wait of each (a dead controller or node is
# found out by the first timeout; the metadata refresh then names a live one).
_ATTEMPTS = 5
_ATTEMPT_SECONDS = 5.0

log = get_logger(__name__)
T = TypeVar("T")


def max_message_bytes(topics: TopicSettings) -> int:
    """`max.message.bytes` of the topics that carry whole webhook bodies (raw, its dead
    letters, routed): the largest body the ingest accepts plus key, headers and framing."""
    return max(2 * MiB, topics.max_body_bytes + RECORD_OVERHEAD_BYTES)


def routed_topic_configs(topics: TopicSettings) -> dict[str, str]:
    """The configs of a routed topic: room for the largest body, as the raw topic has."""
    return {"max.message.bytes": str(max_message_bytes(topics))}


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One of hookstream's topics as it should be created."""

    name: str
    role: str
    partitions: int
    replication: int
    configs: Mapping[str, str]


def topic_catalogue(topics: TopicSettings) -> list[TopicSpec]:
    """hookstream's own topics (raw, data events and their dead-letter topics)."""
    body_bytes = str(max_message_bytes(topics))
    common = {
        "cleanup.policy": "delete",
        "min.insync.replicas": str(min(2, topics.replication)),
    }
    rows = [
        (topics.raw, "raw", 7, {"max.message.bytes": body_bytes}),
        (topics.dlq, "dead-letter", 30, {"max.message.bytes": body_bytes}),
        (topics.data_events, "data-events", 7, {}),
        (topics.data_events_dlq, "dead-letter", 30, {}),
    ]
    return [
        TopicSpec(
            name=name,
            role=role,
            partitions=topics.partitions,
            replication=topics.replication,
            configs={**common, "retention.ms": str(days * DAY_MS), **extra},
        )
        for name, role, days, extra in rows
    ]


def is_routed(name: str, topics: TopicSettings) -> bool:
    """Whether `name` is one of the worker's routed topics (HOOKSTREAM_ROUTE_PREFIX*, not one
    of hookstream's own topics that may share the prefix): it exists once the worker routed
    the first notification of its Intercom topic."""
    own = {spec.name for spec in topic_catalogue(topics)}
    return name.startswith(topics.route_prefix) and name not in own


@dataclass(frozen=True, slots=True)
class EnsuredTopic:
    """A catalogue topic after `ensure_topics`: created now, or there already."""

    spec: TopicSpec
    created: bool


async def ensure_topics(
    settings: Settings,
    *,
    bootstrap: str | None = None,
    wait_seconds: float = DEFAULT_CONNECT_TIMEOUT,
) -> list[EnsuredTopic]:
    """Create the catalogue topics that do not exist; leave the others as they are. Idempotent,
    and safe against a concurrent creator. Raises `KafkaUnreachable` or `TopicAdminFailed`."""
    catalogue = topic_catalogue(settings.topics)
    created = await _create_and_await(
        settings, catalogue, bootstrap=bootstrap, wait_seconds=wait_seconds
    )
    return [EnsuredTopic(spec, spec.name in created) for spec in catalogue]


def faust_topic_options(topics: TopicSettings) -> dict[str, Any]:
    """A Faust app's settings for its own topics: no leader-election topic (no hookstream
    agent runs `on_leader`), and no internal topic (a table's changelog) created unless
    HOOKSTREAM_CREATE_TOPICS allows it."""
    return {"topic_allow_declare": topics.create, "topic_disable_leader": True}


async def restrain_faust(app: Any, settings: Settings) -> None:
    """Apply `faust_topic_options` to a built Faust app, and settle its internal topics (its
    tables' changelogs) before it starts: with creating off, `TopicMissing` names those that
    do not exist, where Faust would wait for them for ever; with it on, they are created here
    and the cluster's metadata awaited until it shows each one's partitions. Faust would
    create them itself, but its consumer could then read a new changelog's metadata before
    its partitions were there, and the worker stopped with PartitionsMismatch at the first
    table write (seen on a loaded machine in about half the starts on a fresh broker)."""
    for key, value in faust_topic_options(settings.topics).items():
        setattr(app.conf, key, value)
    tables = list(app.tables.values())
    specs = [
        TopicSpec(
            name=table.changelog_topic.get_topic_name(),
            role="changelog",
            partitions=table.partitions or app.conf.topic_partitions,
            replication=settings.topics.replication,
            # Compacted, as Faust creates a changelog, unless the table says otherwise.
            configs={"cleanup.policy": "compact", **(table.changelog_topic.config or {})},
        )
        for table in tables
    ]
    await _create_and_await(settings, specs)


async def _create_and_await(
    settings: Settings,
    specs: list[TopicSpec],
    *,
    bootstrap: str | None = None,
    wait_seconds: float = DEFAULT_CONNECT_TIMEOUT,
) -> set[str]:
    """Create those of `specs` that do not exist (with creating off: `TopicMissing` naming
    them) and wait until the metadata shows them whole; the names created."""
    connection = KafkaConnection.from_settings(settings.kafka).with_bootstrap(bootstrap)
    async with kafka.admin_client(connection, wait_seconds=wait_seconds) as admin:
        existing = await kafka.topic_layouts(admin, wait_seconds=wait_seconds)
        missing = [spec for spec in specs if spec.name not in existing]
        if not missing:
            return set()
        if not settings.topics.create:
            raise _missing([spec.name for spec in missing])
        created = await _create(admin, missing, connection, wait_seconds=wait_seconds)
        partitions = {spec.name: spec.partitions for spec in missing if spec.name in created}
        await _await_metadata(admin, partitions, wait_seconds=wait_seconds)
    return created


def _missing(names: list[str]) -> TopicMissing:
    listed = ", ".join(repr(name) for name in names)
    return TopicMissing(
        f"topic {listed} does not exist and {_CREATE_SETTING}=false: create it where the"
        f" topics are owned (a Strimzi KafkaTopic, k8s/base/topics), or set {_CREATE_SETTING}"
        "=true"
    )


async def _create(
    admin: AIOKafkaAdminClient,
    specs: list[TopicSpec],
    connection: KafkaConnection,
    *,
    wait_seconds: float,
) -> set[str]:
    new_topics = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=spec.replication,
            topic_configs=dict(spec.configs),
        )
        for spec in specs
    ]
    response = await kafka.bounded(
        admin.create_topics(new_topics, timeout_ms=int(wait_seconds * 1000)),
        what="create topics",
        wait_seconds=wait_seconds,
    )
    created: set[str] = set()
    for error in response.to_object()["topic_errors"]:
        code = error["error_code"]
        if code == 0:
            created.add(error["topic"])
        elif code in _AUTHORIZATION_FAILED:
            denied = kafka.access_denied(
                for_code(code)(), connection, operation="Create", resource=error["topic"]
            )
            raise denied or KafkaAccessDenied(f"cannot create topic {error['topic']!r}")
        elif code != _TOPIC_ALREADY_EXISTS:  # another creator won the race: fine
            message = error.get("error_message") or f"error code {code}"
            raise TopicAdminFailed(
                f"cannot create topic {error['topic']!r}: {message}",
                retriable=for_code(code).retriable,
            )
    return created


async def _await_metadata(
    admin: AIOKafkaAdminClient, partitions: Mapping[str, int], *, wait_seconds: float
) -> None:
    """Wait until the cluster's metadata lists new topics with all their `partitions`, so
    what follows finds them whole (a topic just created can be listed without them)."""

    def whole(layouts: Mapping[str, TopicLayout]) -> bool:
        return all(
            name in layouts and layouts[name].partitions >= count
            for name, count in partitions.items()
        )

    try:
        async with asyncio.timeout(wait_seconds):
            while not whole(await kafka.topic_layouts(admin, wait_seconds=wait_seconds)):  # noqa: ASYNC110 - polling the broker: no event to wait on
                await asyncio.sleep(0.1)
    except TimeoutError as exc:
        raise TopicAdminFailed(
            f"created {sorted(partitions)} but the metadata lacks them or their partitions"
        ) from exc


@dataclass(frozen=True, slots=True)
class PartitionOffsets:
    """The first and the next offset (high watermark) of a partition."""

    partition: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class TopicDescription:
    """A topic as the cluster has it. For a catalogue topic, `expected` is its spec."""

    name: str
    role: str
    exists: bool
    partitions: int = 0
    replication: int = 0
    configs: dict[str, str] = field(default_factory=dict)
    overrides: frozenset[str] = frozenset()
    offsets: list[PartitionOffsets] = field(default_factory=list)
    expected: TopicSpec | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for `--json`)."""
        result: dict[str, Any] = {
            "name": self.name,
            "role": self.role,
            "exists": self.exists,
            "partitions": self.partitions,
            "replication": self.replication,
            "configs": self.configs,
            "overrides": sorted(self.overrides),
            "offsets": [
                {"partition": o.partition, "start": o.start, "end": o.end} for o in self.offsets
            ],
        }
        if self.expected is not None:
            result["expected"] = {
                "partitions": self.expected.partitions,
                "replication": self.expected.replication,
                "configs": dict(self.expected.configs),
            }
        return result


async def describe_topics(
    settings: Settings,
    *,
    bootstrap: str | None = None,
    wait_seconds: float = DEFAULT_CONNECT_TIMEOUT,
    include_routed: bool = True,
) -> list[TopicDescription]:
    """The catalogue topics (also those missing), then the routed topics that exist (names
    starting with HOOKSTREAM_ROUTE_PREFIX), with partitions, configs and offsets."""
    connection = KafkaConnection.from_settings(settings.kafka).with_bootstrap(bootstrap)
    catalogue = topic_catalogue(settings.topics)
    async with kafka.admin_client(connection, wait_seconds=wait_seconds) as admin:
        layouts = await kafka.topic_layouts(admin, wait_seconds=wait_seconds)
        wanted: list[tuple[str, str, TopicSpec | None]] = [
            (spec.name, spec.role, spec) for spec in catalogue
        ]
        if include_routed:
            wanted += [
                (name, "routed", None)
                for name in sorted(layouts)
                if is_routed(name, settings.topics)
            ]
        present = [name for name, _role, _spec in wanted if name in layouts]
        configs = await _configs(admin, present, wait_seconds=wait_seconds) if present else {}
    offsets = await _offsets(
        connection, [layouts[name] for name in present], wait_seconds=wait_seconds
    )
    descriptions: list[TopicDescription] = []
    for name, role, spec in wanted:
        if name not in layouts:
            descriptions.append(TopicDescription(name, role, exists=False, expected=spec))
            continue
        values, overrides = configs.get(name, ({}, frozenset()))
        descriptions.append(
            TopicDescription(
                name,
                role,
                exists=True,
                partitions=layouts[name].partitions,
                replication=layouts[name].replication,
                configs=values,
                overrides=overrides,
                offsets=offsets.get(name, []),
                expected=spec,
            )
        )
    return descriptions


async def _configs(
    admin: AIOKafkaAdminClient, names: list[str], *, wait_seconds: float
) -> dict[str, tuple[dict[str, str], frozenset[str]]]:
    """Per topic: the key configs and those set on the topic, and which were set on it."""
    responses = await kafka.bounded(
        admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names]),
        what="describe topic configs",
        wait_seconds=wait_seconds,
    )
    result: dict[str, tuple[dict[str, str], frozenset[str]]] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            if resource["error_code"] != 0:
                continue
            values: dict[str, str] = {}
            overrides: set[str] = set()
            for entry in resource["config_entries"]:
                name, value = entry["config_names"], entry["config_value"]
                # v0 answers `is_default`, later versions `config_source`.
                on_topic = (
                    entry["config_source"] == _DYNAMIC_TOPIC_CONFIG
                    if "config_source" in entry
                    else not entry["is_default"]
                )
                if on_topic:
                    overrides.add(name)
                if on_topic or name in KEY_CONFIGS:
                    values[name] = "(sensitive)" if entry["is_sensitive"] else value
            result[resource["resource_name"]] = (dict(sorted(values.items())), frozenset(overrides))
    return result


async def _offsets(
    connection: KafkaConnection, layouts: list[TopicLayout], *, wait_seconds: float
) -> dict[str, list[PartitionOffsets]]:
    partitions = [TopicPartition(t.name, p) for t in layouts for p in range(t.partitions)]
    if not partitions:
        return {}
    async with kafka.consumer(connection, wait_seconds=wait_seconds) as consumer:
        starts = await kafka.bounded(
            consumer.beginning_offsets(partitions), what="read offsets", wait_seconds=wait_seconds
        )
        ends = await kafka.bounded(
            consumer.end_offsets(partitions), what="read offsets", wait_seconds=wait_seconds
        )
    result: dict[str, list[PartitionOffsets]] = {}
    for tp in partitions:
        result.setdefault(tp.topic, []).append(PartitionOffsets(tp.partition, starts[tp], ends[tp]))
    return result


class TopicAdmin:
    """Creates topics with the settings' partitions, replication and routed-topic configs,
    once each; one admin client, opened and closed as an async context manager (or
    `start`/`close`: both harmless twice). With `topics.create` off it creates nothing and
    `ensure` raises `TopicMissing` for a topic that does not exist. Raises
    `TopicAdminFailed` (retriable or not) or `KafkaAccessDenied`."""

    def __init__(
        self,
        topics: TopicSettings,
        connection: KafkaConnection,
        *,
        client_id: str = "hookstream-worker-admin",
        wait_seconds: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        self.partitions = topics.partitions
        self.replication = topics.replication
        self.configs = routed_topic_configs(topics)
        self.create = topics.create
        self._connection = connection
        self._client_id = client_id
        self._wait_seconds = wait_seconds
        self._stack: AsyncExitStack | None = None
        self._client: AIOKafkaAdminClient | None = None
        self._known: set[str] = set()
        self._missing_since: dict[str, float] = {}

    async def start(self) -> None:
        """Connect and learn which topics exist."""
        if self._stack is not None:
            return
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(
                kafka.admin_client(
                    self._connection, wait_seconds=self._wait_seconds, client_id=self._client_id
                )
            )
            layouts = await kafka.topic_layouts(client, wait_seconds=self._wait_seconds)
            self._known = set(layouts)
            self._client, self._stack = client, stack.pop_all()

    async def close(self) -> None:
        """Disconnect."""
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

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

    async def ensure(self, name: str) -> None:
        """Create topic `name` unless it exists (with `_failing_over`); with creating off,
        `TopicMissing` unless it exists."""
        if name in self._known:
            return
        if not self.create:
            await self._require(name)
            return
        spec = TopicSpec(name, "routed", self.partitions, self.replication, self.configs)
        client = self._started()
        created = await self._failing_over(
            lambda: _create(client, [spec], self._connection, wait_seconds=_ATTEMPT_SECONDS),
            what=name,
        )
        if created:
            log.info(
                "topic.created",
                topic=name,
                partitions=self.partitions,
                replication=self.replication,
            )
        self._known.add(name)

    async def _require(self, name: str) -> None:
        """`TopicMissing` unless `name` exists: the topics are listed again at most once per
        `MISSING_RECHECK_SECONDS` for a topic found missing (a burst of notifications for it
        costs one listing), so one created since is found within that time."""
        now = asyncio.get_running_loop().time()
        since = self._missing_since.get(name)
        if since is None or now - since >= MISSING_RECHECK_SECONDS:
            client = self._started()
            layouts = await self._failing_over(
                lambda: kafka.topic_layouts(client, wait_seconds=_ATTEMPT_SECONDS), what=name
            )
            self._known |= set(layouts)
            if name in self._known:
                self._missing_since.pop(name, None)
                return
            self._missing_since[name] = now
        raise _missing([name])

    @property
    def controller_id(self) -> int | None:
        """The node this admin sends CreateTopics to, from its cached metadata."""
        return aiokafka_compat.admin_controller_id(self._started())

    async def partition_count(self, name: str) -> int | None:
        """How many partitions topic `name` has; None when it does not exist (with
        `_failing_over`)."""
        client = self._started()
        layouts = await self._failing_over(
            lambda: kafka.topic_layouts(client, wait_seconds=_ATTEMPT_SECONDS), what=name
        )
        layout = layouts.get(name)
        return None if layout is None else layout.partitions

    async def _failing_over(self, call: Callable[[], Awaitable[T]], *, what: str) -> T:
        """`call()`, and again on fresh metadata after a retriable failure (no answer: a node
        the client picked may be dead), up to `_ATTEMPTS` times of `_ATTEMPT_SECONDS`; then
        the failure is raised, retriable."""
        client = self._started()
        for attempt in range(1, _ATTEMPTS):
            try:
                return await call()
            except TopicAdminFailed as exc:
                if not exc.retriable:
                    raise
                log.warning("topic_admin.retried", topic=what, attempt=attempt, error=str(exc))
                await aiokafka_compat.refresh_admin_metadata(client)
        return await call()

    def _started(self) -> AIOKafkaAdminClient:
        if self._client is None:
            raise TopicAdminFailed("the topic admin is not started")
        return self._client
