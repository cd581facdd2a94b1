"""Moving dead letters back to their source topic (`hookstream replay`).

A dead letter keeps the original key, value and headers and adds the `hookstream-dlq-*`
headers (`hookstream.core.contract`). Replaying produces the original back (DLQ headers stripped)
to the topic named by `hookstream-dlq-source-topic`, or to an explicit target, with acks=all
and idempotence. The dead-letter topic is left as it is: records are moved by marking them
settled in the replay consumer group (one per dead-letter topic, `hookstream-replay.<dlq>`),
and the group commits only after the broker acknowledged the records it covers. A second run
therefore moves nothing new; records a filter left behind stay for a later replay
(`hookstream.ops.ledger` says how both fit in a group's committed offsets).

Guarantee: at least once. A crash between the acknowledgement and the commit of one batch
(at most `BATCH_RECORDS` records) moves that batch again on the next run; the worker's dedup
by notification id (and the sink's by event) absorbs such a repeat downstream.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from hookstream.core import kafka
from hookstream.core.contract import (
    HEADER_DLQ_REASON,
    HEADER_DLQ_SOURCE_TOPIC,
    Headers,
    decode_headers,
)
from hookstream.core.errors import ReplayFailed, TopicAdminFailed, TopicNotFound
from hookstream.core.kafka import KafkaConnection, Needed
from hookstream.ops.ledger import Ledger, PartitionPass

GROUP_PREFIX = "hookstream-replay."
BATCH_RECORDS = 500
DLQ_HEADER_PREFIX = "hookstream-dlq-"
"""Every dead-letter header of `hookstream.core.contract` (reason, source, detail, Intercom's
answer) starts with it; replay strips them all."""
_MS_THRESHOLD = 100_000_000_000  # a Unix time above this is in milliseconds (after 1973 in ms)


def default_group(dlq_topic: str) -> str:
    """The replay consumer group of a dead-letter topic."""
    return f"{GROUP_PREFIX}{dlq_topic}"


def parse_time(text: str) -> int:
    """Unix milliseconds of `text`: ISO 8601 (no zone means UTC), or a Unix time in seconds
    (fractions allowed) or milliseconds (a number above 10^11). Raises ValueError."""
    try:
        number = float(text)
    except ValueError:
        moment = datetime.fromisoformat(text.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    return int(number) if number >= _MS_THRESHOLD else int(number * 1000)


def replayed_headers(headers: Sequence[tuple[str, bytes]]) -> Headers:
    """The original headers of a dead letter: its own minus the `hookstream-dlq-*` ones."""
    return [(name, value) for name, value in headers if not name.startswith(DLQ_HEADER_PREFIX)]


@dataclass(frozen=True, slots=True)
class ReplayFilter:
    """Which dead letters to move; every given criterion must hold."""

    reasons: tuple[str, ...] = ()
    """Any of these occurs in (or, with `exact_reason`, equals) `hookstream-dlq-reason`."""
    exact_reason: bool = False
    since_ms: int | None = None
    """The record's timestamp is at or after this (Unix ms)."""
    until_ms: int | None = None
    """The record's timestamp is before this (Unix ms)."""
    keys: tuple[str, ...] = ()
    """The record's key (UTF-8) is one of these."""

    def matches(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        """Whether `record` passes the filter."""
        if self.since_ms is not None and record.timestamp < self.since_ms:
            return False
        if self.until_ms is not None and record.timestamp >= self.until_ms:
            return False
        if self.keys:
            key = None if record.key is None else record.key.decode(errors="replace")
            if key not in self.keys:
                return False
        if self.reasons:
            reason = decode_headers(record.headers).get(HEADER_DLQ_REASON, "")
            if self.exact_reason:
                return reason in self.reasons
            return any(wanted in reason for wanted in self.reasons)
        return True


@dataclass(slots=True)
class ReplaySummary:
    """What a replay run did (or, dry, would do)."""

    dlq_topic: str
    group: str
    dry_run: bool
    scanned: int = 0
    moved: Counter[str] = field(default_factory=Counter)
    """Records moved (dry run: that would move), per target topic."""
    already_replayed: int = 0
    """Records read again that match but a replay of this group moved before."""
    resumed_after: int = 0
    """Offsets not read again: below the group's committed offset (settled before)."""
    filtered_out: int = 0
    left: Counter[str] = field(default_factory=Counter)
    """Records that match but stay, per reason (no source topic, target missing, ...)."""
    notes: list[str] = field(default_factory=list)

    @property
    def total_moved(self) -> int:
        """Records moved in all (dry run: that would move)."""
        return sum(self.moved.values())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for `--json`)."""
        return {
            "dlq_topic": self.dlq_topic,
            "group": self.group,
            "dry_run": self.dry_run,
            "scanned": self.scanned,
            "moved": self.total_moved,
            "moved_by_topic": dict(sorted(self.moved.items())),
            "already_replayed": self.already_replayed,
            "resumed_after": self.resumed_after,
            "filtered_out": self.filtered_out,
            "left": dict(sorted(self.left.items())),
            "notes": self.notes,
        }


MoveCallback = Callable[[ConsumerRecord[bytes, bytes], str], None]


@dataclass(slots=True)
class _Event:
    offset: int
    settled: bool
    move: tuple[ConsumerRecord[bytes, bytes], str, asyncio.Future[Any]] | None = None


async def replay(
    connection: KafkaConnection,
    dlq_topic: str,
    *,
    record_filter: ReplayFilter,
    target: str | None = None,
    group: str | None = None,
    dry_run: bool = False,
    wait_seconds: float = kafka.DEFAULT_CONNECT_TIMEOUT,
    max_request_size: int = 2 * 1024 * 1024,
    on_move: MoveCallback | None = None,
) -> ReplaySummary:
    """Move the dead letters of `dlq_topic` that pass `record_filter` (and were not moved
    before by `group`) to their source topic or `target`, up to the end the topic had when the
    run started. `on_move(record, topic)` is called for each (once acknowledged; dry run: when
    found). Raises `KafkaUnreachable`, `KafkaAccessDenied` (a missing ACL, named),
    `TopicNotFound`, `TopicAdminFailed` or `ReplayFailed`."""
    group = group or default_group(dlq_topic)
    if target == dlq_topic:
        raise ReplayFailed(f"cannot replay {dlq_topic!r} into itself")
    summary = ReplaySummary(dlq_topic, group, dry_run)
    async with AsyncExitStack() as stack:
        admin = await stack.enter_async_context(
            kafka.admin_client(connection, wait_seconds=wait_seconds)
        )
        # A topic this principal may not describe would look missing: name the ACL instead.
        needed = [Needed("topic", dlq_topic, "Read"), Needed("group", group, "Read")]
        if target is not None and not dry_run:
            needed.append(Needed("topic", target, "Write"))
        await kafka.check_access(connection, needed, wait_seconds=wait_seconds)
        layouts = await kafka.topic_layouts(admin, wait_seconds=wait_seconds)
        if dlq_topic not in layouts:
            raise TopicNotFound(f"dead-letter topic {dlq_topic!r} does not exist")
        if target is not None and target not in layouts:
            raise TopicNotFound(f"target topic {target!r} does not exist")
        partitions = [TopicPartition(dlq_topic, p) for p in range(layouts[dlq_topic].partitions)]
        committed = await kafka.retrying(
            lambda: admin.list_consumer_group_offsets(group, partitions=partitions),
            what=f"read the offsets of group {group!r}",
            wait_seconds=wait_seconds,
        )
        consumer = await stack.enter_async_context(
            kafka.consumer(
                connection,
                wait_seconds=wait_seconds,
                group_id=group,
                isolation_level="read_committed",
                auto_offset_reset="earliest",
            )
        )
        producer = None
        if not dry_run:
            producer = await stack.enter_async_context(
                kafka.producer(
                    connection,
                    wait_seconds=wait_seconds,
                    acks="all",
                    enable_idempotence=True,
                    max_request_size=max_request_size,
                )
            )
        run = _Run(
            summary=summary,
            consumer=consumer,
            producer=producer,
            record_filter=record_filter,
            target=target,
            existing=set(layouts),
            wait_seconds=wait_seconds,
            on_move=on_move,
        )
        await run.start(partitions, committed)
        await run.walk()
    return summary


@dataclass
class _Run:
    summary: ReplaySummary
    consumer: Any
    producer: Any
    record_filter: ReplayFilter
    target: str | None
    existing: set[str]
    wait_seconds: float
    on_move: MoveCallback | None
    passes: dict[TopicPartition, PartitionPass] = field(default_factory=dict)
    """Per partition, what is settled once acknowledged (and committed)."""
    projected: dict[TopicPartition, PartitionPass] = field(default_factory=dict)
    """The same as if every record sent were acknowledged already: whether one more fits."""
    ends: dict[TopicPartition, int] = field(default_factory=dict)
    full: set[TopicPartition] = field(default_factory=set)

    async def start(self, partitions: list[TopicPartition], committed: dict[Any, Any]) -> None:
        """Assign the partitions and seek each to its ledger's floor."""
        self.consumer.assign(partitions)
        begins = await kafka.bounded(
            self.consumer.beginning_offsets(partitions),
            what="read offsets",
            wait_seconds=self.wait_seconds,
        )
        self.ends = await kafka.bounded(
            self.consumer.end_offsets(partitions),
            what="read offsets",
            wait_seconds=self.wait_seconds,
        )
        for tp in partitions:
            entry = committed.get(tp)
            ledger = Ledger.decode(entry.offset, entry.metadata) if entry is not None else Ledger()
            if ledger.floor > self.ends[tp]:
                self.summary.notes.append(
                    f"partition {tp.partition}: the group's offset {ledger.floor} is past the "
                    f"end {self.ends[tp]} (topic recreated?): starting from the beginning"
                )
                ledger = Ledger()
            ledger.raise_floor(begins[tp])
            self.summary.resumed_after += ledger.floor - begins[tp]
            self.passes[tp] = PartitionPass(ledger, ledger.floor)
            self.projected[tp] = PartitionPass(
                Ledger(ledger.floor, list(ledger.ranges)), ledger.floor
            )
            self.consumer.seek(tp, ledger.floor)

    async def walk(self) -> None:
        """Read every partition up to its end, moving what passes, committing per batch."""
        active = {tp for tp, walk in self.passes.items() if walk.cursor < self.ends[tp]}
        idle = [tp for tp in self.passes if tp not in active]
        if idle:
            self.consumer.pause(*idle)
        last_progress = time.monotonic()
        while active:
            batch = await self.consumer.getmany(timeout_ms=500, max_records=BATCH_RECORDS)
            events: dict[TopicPartition, list[_Event]] = {}
            for tp, records in batch.items():
                events[tp] = await self._examine(tp, records)
            failures = await self._settle(events)
            done = set()
            for tp in active:
                position = await self.consumer.position(tp)
                upper = min(position, self.ends[tp])
                if tp not in self.full:
                    self.passes[tp].reached(upper)
                    self.projected[tp].reached(upper)
                if tp in self.full or upper >= self.ends[tp]:
                    done.add(tp)
            if batch or done:
                last_progress = time.monotonic()
            await self._commit(set(events) | done)
            if failures:
                raise ReplayFailed(
                    f"{len(failures)} record(s) could not be produced ({failures[0]!r}); "
                    f"{self.summary.total_moved} moved and committed before that"
                )
            if done:
                self.consumer.pause(*done)
                active -= done
            stalled = 3 * self.wait_seconds
            if active and time.monotonic() - last_progress > stalled:
                raise ReplayFailed(
                    f"no progress reading {self.summary.dlq_topic} for {stalled:g} s; "
                    f"{self.summary.total_moved} moved and committed before that"
                )
        await self._commit(set(self.passes))  # also refreshes the group's offset retention

    async def _examine(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> list[_Event]:
        projected = self.projected[tp]
        events: list[_Event] = []
        for record in records:
            if record.offset >= self.ends[tp] or tp in self.full:
                break
            matched = self.record_filter.matches(record)
            if projected.ledger.is_settled(record.offset):
                self.summary.scanned += 1
                if matched:
                    self.summary.already_replayed += 1
                else:
                    self.summary.filtered_out += 1
                projected.settled(record.offset)
                events.append(_Event(record.offset, settled=True))
                continue
            destination = self._destination(record) if matched else None
            if destination is not None and self.producer is not None:
                if not projected.can_settle(record.offset):
                    self.full.add(tp)
                    self.summary.notes.append(
                        f"partition {tp.partition}: stopped at offset {record.offset}: the "
                        "records left behind lie too scattered among the moved ones to "
                        "remember; replay them (e.g. without filters) to go on"
                    )
                    break
                projected.settled(record.offset)
                future = await self._send(destination, record)
                events.append(
                    _Event(record.offset, settled=False, move=(record, destination, future))
                )
            else:
                projected.hole(record.offset)
                events.append(_Event(record.offset, settled=False))
                if destination is not None:  # dry run
                    self.summary.moved[destination] += 1
                    if self.on_move is not None:
                        self.on_move(record, destination)
            self.summary.scanned += 1
            if not matched:
                self.summary.filtered_out += 1
        return events

    def _destination(self, record: ConsumerRecord[bytes, bytes]) -> str | None:
        """Where a matching record goes; None (and counted as left) when it cannot go."""
        source = decode_headers(record.headers).get(HEADER_DLQ_SOURCE_TOPIC)
        destination = self.target or source
        reason = None
        if record.key is None and record.value is None:
            reason = "neither key nor value (the client cannot produce it)"
        elif not destination:
            reason = f"no {HEADER_DLQ_SOURCE_TOPIC} header (use --to)"
        elif destination == self.summary.dlq_topic:
            reason = "source is the dead-letter topic itself"
        elif destination not in self.existing:
            reason = f"source topic {destination} does not exist"
        if reason is not None:
            self.summary.left[reason] += 1
            return None
        return destination

    async def _send(
        self, destination: str, record: ConsumerRecord[bytes, bytes]
    ) -> asyncio.Future[Any]:
        try:
            future: asyncio.Future[Any] = await self.producer.send(
                destination,
                value=record.value,
                key=record.key,
                headers=replayed_headers(record.headers),
            )
        except KafkaError as exc:  # refused before sending (too large, ...)
            future = asyncio.get_running_loop().create_future()
            future.set_exception(exc)
        return future

    async def _settle(self, events: dict[TopicPartition, list[_Event]]) -> list[BaseException]:
        """Wait for the acknowledgements, then mark what is settled in each ledger."""
        futures = [e.move[2] for evs in events.values() for e in evs if e.move is not None]
        await asyncio.gather(*futures, return_exceptions=True)
        failures: list[BaseException] = []
        for tp, evs in events.items():
            walk = self.passes[tp]
            for event in evs:
                if event.move is None:
                    (walk.settled if event.settled else walk.hole)(event.offset)
                    continue
                record, destination, future = event.move
                error = future.exception()
                if error is not None:
                    failures.append(error)
                    self.summary.left["produce failed"] += 1
                    walk.hole(event.offset)
                    continue
                walk.settled(event.offset)
                self.summary.moved[destination] += 1
                if self.on_move is not None:
                    self.on_move(record, destination)
        return failures

    async def _commit(self, partitions: set[TopicPartition]) -> None:
        if self.producer is None or not partitions:  # a dry run commits nothing
            return
        offsets = {
            tp: (self.passes[tp].ledger.floor, self.passes[tp].ledger.encode()) for tp in partitions
        }
        try:
            await kafka.bounded(
                self.consumer.commit(offsets), what="commit", wait_seconds=self.wait_seconds
            )
        except TopicAdminFailed as exc:
            raise ReplayFailed(
                f"moved {self.summary.total_moved} record(s) but could not commit the replay "
                f"group's progress ({exc}); the next run may move the last batch again"
            ) from exc
