"""Following a topic (`hookstream tail`): a consumer without a group, assigned every partition
(or the chosen ones), from the end or the beginning, until a record count or an idle time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from hookstream.core import kafka
from hookstream.core.errors import TopicNotFound
from hookstream.core.kafka import KafkaConnection

RecordCallback = Callable[[ConsumerRecord[bytes, bytes]], None]
_POLL_SECONDS = 0.5


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
    wait_seconds: float = kafka.DEFAULT_CONNECT_TIMEOUT,
) -> TailResult:
    """Call `on_record` for each record of the topic, in each partition's order, until
    `max_records` or `idle_seconds` (forever when neither is set). `on_ready(partitions)` is
    called once positioned, before the first record. Raises `KafkaUnreachable`,
    `KafkaAccessDenied` (no Read on the topic, named), `TopicNotFound` or `TopicAdminFailed`."""
    async with kafka.admin_client(connection, wait_seconds=wait_seconds) as admin:
        read = [kafka.Needed("topic", options.topic, "Read")]  # else it would look missing
        await kafka.check_access(connection, read, wait_seconds=wait_seconds)
        layout = await kafka.require_topic(admin, options.topic, wait_seconds=wait_seconds)
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
