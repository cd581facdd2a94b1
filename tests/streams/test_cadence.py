"""When the worker commits: the early-commit rule on a clock of the test's, and a worker whose
commit interval is long making its routed records visible well within it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hookstream.core.contract import HEADER_RECEIVED_AT, decode_headers
from hookstream.streams._cadence import CommitCadence
from tests.streams.support import WorkerConfig, produce, raw_notification, running_workers
from tests.support.kafka import read_topic


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def cadence(clock: Clock, early_max_records: int = 1000) -> CommitCadence:
    return CommitCadence(early_after=0.05, early_max_records=early_max_records, clock=clock)


def test_an_early_commit_is_due_once_the_last_commit_is_old_enough_and_records_wait() -> None:
    clock = Clock()
    rule = cadence(clock)
    clock.now += 0.049
    assert not rule.early_commit_due(waiting=10, behind=10)
    clock.now += 0.001
    assert rule.early_commit_due(waiting=10, behind=10)
    assert not rule.early_commit_due(waiting=0, behind=10)  # nothing to commit
    rule.committed()
    assert not rule.early_commit_due(waiting=10, behind=10)  # the interval starts again


def test_a_worker_far_behind_its_input_leaves_the_commit_to_the_interval() -> None:
    clock = Clock()
    rule = cadence(clock)
    clock.now += 1.0
    assert rule.early_commit_due(waiting=500, behind=1000)
    assert not rule.early_commit_due(waiting=500, behind=1001)


def test_no_early_commit_when_turned_off() -> None:
    clock = Clock()
    rule = cadence(clock, early_max_records=0)
    clock.now += 10.0
    assert not rule.early_commit_due(waiting=1, behind=0)


def test_the_next_check_is_when_an_early_commit_can_be_due_and_never_a_spin() -> None:
    clock = Clock()
    rule = cadence(clock)
    clock.now += 0.01
    assert rule.next_check_in() == pytest.approx(0.04)
    clock.now += 5.0
    assert rule.next_check_in() == pytest.approx(0.0125)


@pytest.mark.integration
async def test_routed_records_are_committed_well_within_a_long_commit_interval(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Faust alone commits every 5 s here: five records spaced 0.3 s apart would each wait up
    # to 5 s, and all five under 1 s by chance is unlikely (about 1 in 3,000).
    config = WorkerConfig(
        bootstrap=kafka_bootstrap, data_root=tmp_path, partitions=1, commit_interval=5.0
    )
    topic = "conversation.user.created"
    with running_workers(config) as [worker]:
        for n in range(5):
            await produce(kafka_bootstrap, config.raw_topic, [raw_notification(f"notif_{n}")])
            await asyncio.sleep(0.3)
        routed = await read_topic(kafka_bootstrap, config.routed(topic), expect=5)
        metrics = worker.wait_for_metric("hookstream_worker_receive_to_commit_seconds_count", 5)
    # a routed record's timestamp is taken when the commit produces it
    delays_ms = [r.timestamp - int(decode_headers(r.headers)[HEADER_RECEIVED_AT]) for r in routed]
    assert len(delays_ms) == 5
    assert max(delays_ms) < 1000, delays_ms
    histogram = "hookstream_worker_receive_to_commit_seconds"
    assert metrics[f"{histogram}_count"] == 5
    assert metrics[f'{histogram}_bucket{{le="1.0"}}'] == 5
    assert 0 < metrics[f"{histogram}_sum"] < 5
