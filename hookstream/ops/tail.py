"""Following a topic (`hookstream tail`): a consumer without a group, assigned every partition
(or the chosen ones), from the end or the beginning, until a record count or an idle time.

A routed topic exists only once the worker has routed the first notification of its Intercom
topic, so `wait_for_topic` waits for a missing topic to be created (for at most the idle time)
instead of calling it missing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from hookstream.core import kafka
from hookstream.core.errors import TopicNotFound
from hookstream.core.kafka import KafkaConnection, TopicLayout

RecordCallback = Callable[[ConsumerRecord[bytes, bytes]], None]
_POLL_SECONDS = 0.5
_TOPIC_POLL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class TailOptions:
    """What `tail` follows and when it stops."""

    topic: str
    from_beginning: bool = False
    partitions: tuple[int, ...] = ()
    """Only these partitions (all when empty)."""
    max_records: int | None = None
    """Stop after this many records."""
    idle_seconds: float | None = None
    """Stop when no record arrived for this long."""
    read_committed: bool = True
    wait_for_topic: bool = False
    """A missing topic is waited for (at most `idle_seconds`), not an error at once."""


@dataclass(frozen=True, slots=True)
class TailResult:
    """How a tail ended."""

    records: int
    stopped_by: str  # "max" or "timeout"


async def tail(
    connection: KafkaConnection,
    options: TailOptions,
    *,
    on_record: RecordCallback,
    on_ready: Callable[[list[int]], None] | None = None,
    on_waiting: Callable[[], None] | None = None,
    wait_seconds: float = kafka.DEFAULT_CONNECT_TIMEOUT,
) -> TailResult:
    """Call `on_record` for each record of the topic, in each partition's order, until
    `max_records` or `idle_seconds` (forever when neither is set). `on_waiting()` is called
    once if the topic is missing and waited for; `on_ready(partitions)` once positioned,
    before the first record. Raises `KafkaUnreachable`, `KafkaAccessDenied` (no Read on the
    topic, named), `TopicNotFound` or `TopicAdminFailed`."""
    async with kafka.admin_client(connection, wait_seconds=wait_seconds) as admin:
        read = [kafka.Needed("topic", options.topic, "Read")]  # else it would look missing
        await kafka.check_access(connection, read, wait_seconds=wait_seconds)
        layout = await _layout(admin, options, on_waiting, wait_seconds=wait_seconds)
    chosen = list(options.partitions) or list(range(layout.partitions))
    unknown = sorted(set(chosen) - set(range(layout.partitions)))
    if unknown:
        raise TopicNotFound(
            f"topic {options.topic!r} has partitions 0-{layout.partitions - 1}, not {unknown}"
        )
    isolation = "read_committed" if options.read_committed else "read_uncommitted"
    async with kafka.consumer(
        connection, wait_seconds=wait_seconds, isolation_level=isolation
    ) as consumer:
        assigned = [TopicPartition(options.topic, p) for p in chosen]
        consumer.assign(assigned)
        if options.from_beginning:
            await consumer.seek_to_beginning(*assigned)
        else:
            await consumer.seek_to_end(*assigned)
        for tp in assigned:  # resolve the lazy seek now, so `on_ready` means ready
            await kafka.bounded(consumer.position(tp), what="seek", wait_seconds=wait_seconds)
        if on_ready is not None:
            on_ready(chosen)
        return await _follow(consumer, options, on_record)


async def _layout(
    admin: Any,
    options: TailOptions,
    on_waiting: Callable[[], None] | None,
    *,
    wait_seconds: float,
) -> TopicLayout:
    """The topic's layout; a missing topic is waited for when `options.wait_for_topic` (as
    `core.topics` waits for a created topic's metadata), at most `options.idle_seconds`."""
    layouts = await kafka.topic_layouts(admin, wait_seconds=wait_seconds)
    if options.topic in layouts:
        return layouts[options.topic]
    if not options.wait_for_topic:
        raise TopicNotFound(f"topic {options.topic!r} does not exist")
    if on_waiting is not None:
        on_waiting()
    started = time.monotonic()
    try:
        async with asyncio.timeout(options.idle_seconds):
            while options.topic not in layouts:  # polling the broker: no event to wait on
                await asyncio.sleep(_TOPIC_POLL_SECONDS)
                layouts = await kafka.topic_layouts(admin, wait_seconds=wait_seconds)
    except TimeoutError as exc:
        waited = time.monotonic() - started
        raise TopicNotFound(
            f"topic {options.topic!r} does not exist (waited {waited:.0f} s for it)"
        ) from exc
    return layouts[options.topic]


async def _follow(consumer: Any, options: TailOptions, on_record: RecordCallback) -> TailResult:
    count = 0
    last_record = time.monotonic()
    while True:
        wait = _POLL_SECONDS
        if options.idle_seconds is not None:
            left = options.idle_seconds - (time.monotonic() - last_record)
            if left <= 0:
                return TailResult(count, "timeout")
            wait = min(wait, left)
        limit = None if options.max_records is None else options.max_records - count
        batch = await consumer.getmany(timeout_ms=max(1, int(wait * 1000)), max_records=limit)
        for records in batch.values():
            for record in records:
                on_record(record)
                count += 1
        if batch:
            last_record = time.monotonic()
        if options.max_records is not None and count >= options.max_records:
            return TailResult(count, "max")
