"""Dead letters of the sink: what could not be sent, with why, on the data-events DLQ topic.

The original key, value and headers are kept (so `hookstream replay` can put a record back);
the contract's DLQ headers say where it came from and why (`hookstream.core.contract`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from hookstream.core.contract import (
    HEADER_DLQ_DETAIL,
    HEADER_DLQ_INTERCOM_ERROR,
    HEADER_DLQ_INTERCOM_STATUS,
    HEADER_DLQ_REASON,
    HEADER_DLQ_SOURCE_OFFSET,
    HEADER_DLQ_SOURCE_PARTITION,
    HEADER_DLQ_SOURCE_TOPIC,
    Headers,
)

Reason = Literal["invalid_event", "rejected", "retries_exhausted", "no_token_for_workspace"]
_OWN_HEADERS = frozenset(
    {
        HEADER_DLQ_REASON,
        HEADER_DLQ_DETAIL,
        HEADER_DLQ_INTERCOM_STATUS,
        HEADER_DLQ_INTERCOM_ERROR,
        HEADER_DLQ_SOURCE_TOPIC,
        HEADER_DLQ_SOURCE_PARTITION,
        HEADER_DLQ_SOURCE_OFFSET,
    }
)


@dataclass(slots=True)
class SourceRecord:
    """One record taken from the data-events topic, with the way to ack it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers = field(default_factory=list)
    ack: Callable[[], Awaitable[Any]] | None = None
    timestamp: float | None = None
    """The record's Kafka timestamp in Unix seconds (its producer's time, or the broker's
    with `message.timestamp.type=LogAppendTime`), where `arrival_to_accepted` starts."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why a record is dead-lettered; Intercom's status and error body when it refused."""

    reason: Reason
    detail: str
    status: int | None = None
    intercom_error: bytes = b""


def dead_letter_headers(record: SourceRecord, letter: DeadLetter) -> Headers:
    """The record's own headers (earlier DLQ headers dropped: a replayed record that fails
    again says why this time) followed by the DLQ headers."""
    headers = [(name, value) for name, value in record.headers if name not in _OWN_HEADERS]
    headers += [
        (HEADER_DLQ_REASON, letter.reason.encode()),
        (HEADER_DLQ_DETAIL, letter.detail.encode()),
        (HEADER_DLQ_SOURCE_TOPIC, record.topic.encode()),
        (HEADER_DLQ_SOURCE_PARTITION, str(record.partition).encode()),
        (HEADER_DLQ_SOURCE_OFFSET, str(record.offset).encode()),
    ]
    if letter.status is not None:
        headers.append((HEADER_DLQ_INTERCOM_STATUS, str(letter.status).encode()))
    if letter.intercom_error:
        headers.append((HEADER_DLQ_INTERCOM_ERROR, letter.intercom_error))
    return headers


class DeadLetterWriter(Protocol):
    """Writes a dead letter and returns once Kafka has acknowledged it."""

    async def write(self, record: SourceRecord, letter: DeadLetter) -> None:
        """Write `record` to the dead-letter topic with `letter`'s headers."""


class FaustDeadLetters:
    """Dead letters through the Faust app's producer, to a raw-bytes topic."""

    def __init__(self, topic: Any) -> None:
        self._topic = topic

    async def write(self, record: SourceRecord, letter: DeadLetter) -> None:
        """Send, then wait for the broker's acknowledgement (acks=all)."""
        delivered = await self._topic.send(
            key=record.key,
            value=record.value,
            headers=dead_letter_headers(record, letter),
            force=True,  # never deferred to a commit: the record is final only once written
        )
        await delivered
