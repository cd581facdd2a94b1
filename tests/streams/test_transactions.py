"""A source partition's transaction is committed with its records acknowledged first: with
them in flight Kafka answered the offset commit COORDINATOR_NOT_AVAILABLE now and then, and
aiokafka slept 100 ms before trying again."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from hookstream.streams._transactions import commit_with_offsets


class RecordingProducer:
    """A transactional producer that notes its calls; `flush` returns once `acked` is set."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.acked = asyncio.Event()

    async def flush(self) -> None:
        self.calls.append("flush")
        await self.acked.wait()
        self.calls.append("acked")

    async def send_offsets_to_transaction(self, offsets: Mapping[Any, int], group_id: str) -> None:
        self.calls.append(f"offsets {dict(offsets)} of {group_id}")

    async def commit_transaction(self) -> None:
        self.calls.append("commit")

    async def begin_transaction(self) -> None:
        self.calls.append("begin")


async def test_the_offsets_go_only_once_the_records_are_acknowledged() -> None:
    producer = RecordingProducer()
    committing = asyncio.create_task(
        commit_with_offsets(producer, {"raw-0": 42}, "worker", begin_next=True)
    )
    await asyncio.sleep(0.01)
    assert producer.calls == ["flush"]  # waiting for the acks, nothing else sent
    producer.acked.set()
    await committing
    assert producer.calls == [
        "flush", "acked", "offsets {'raw-0': 42} of worker", "commit", "begin",
    ]  # fmt: skip


@pytest.mark.parametrize("begin_next", [True, False])
async def test_the_next_transaction_begins_only_when_asked(begin_next: bool) -> None:
    producer = RecordingProducer()
    producer.acked.set()
    await commit_with_offsets(producer, {"raw-1": 7}, "worker", begin_next=begin_next)
    assert (producer.calls[-1] == "begin") is begin_next
    assert producer.calls.count("commit") == 1
