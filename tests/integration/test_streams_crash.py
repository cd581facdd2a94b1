"""The worker killed with SIGKILL mid-stream, again and again: every notification still comes
out exactly once (read_committed), none lost, none doubled."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest

from hookstream.devtools import localkafka
from hookstream.streams.state import CLEAN_STOP_MARKER
from tests.streams.support import (
    WorkerConfig,
    WorkerProcess,
    produce,
    raw_notification,
)
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration

DISTINCT = 1500
DUPLICATES = 300
KILLS = 3


async def _feed(bootstrap: str, topic: str, seconds: float) -> set[str]:
    """Produce DISTINCT notifications plus DUPLICATES retries over `seconds`; return the ids."""
    ids = [f"notif_crash_{i:05d}" for i in range(DISTINCT)]
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    stream = [raw_notification(i, item_id=f"conv-{n % 97}") for n, i in enumerate(ids)]
    for _ in range(DUPLICATES):  # a retry lands a little after its original
        n = rng.randrange(DISTINCT)
        stream.insert(
            min(len(stream), n + rng.randrange(1, 50)),
            raw_notification(ids[n], item_id=f"conv-{n % 97}", attempts=2),
        )
    chunks = 20
    size = len(stream) // chunks + 1
    for start in range(0, len(stream), size):
        await produce(bootstrap, topic, stream[start : start + size])
        await asyncio.sleep(seconds / chunks)
    return set(ids)


async def test_sigkilled_worker_restarted_delivers_every_notification_exactly_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    config = WorkerConfig(bootstrap=kafka_bootstrap, data_root=tmp_path, partitions=3)
    worker = WorkerProcess(config)
    try:
        worker.start()
        await asyncio.to_thread(worker.wait_ready)
        feeding = asyncio.create_task(_feed(kafka_bootstrap, config.raw_topic, seconds=12))
        rng = random.Random(3)  # noqa: S311 - test timing, not secrets
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(1.0, 2.5))
            worker.kill()
            worker.start()
        ids = await feeding
        await asyncio.to_thread(worker.wait_ready, 90)
        routed = await read_topic(
            kafka_bootstrap,
            config.routed("conversation.user.created"),
            expect=DISTINCT,
            wait_seconds=90,
        )
        seen = Counter(
            dict(record.headers)["intercom-notification-id"].decode() for record in routed
        )
        doubled = {i: n for i, n in seen.items() if n > 1}
        assert not doubled, f"{len(doubled)} notifications routed more than once"
        assert set(seen) == ids, f"{len(ids - set(seen))} notifications lost"
    finally:
        worker.stop()


async def test_sigterm_stops_cleanly_and_the_restarted_worker_keeps_its_local_state(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    config = WorkerConfig(bootstrap=kafka_bootstrap, data_root=tmp_path, partitions=2)
    topic = config.routed("conversation.user.created")
    first = [raw_notification(f"notif_term_{n:03d}") for n in range(200)]
    worker = WorkerProcess(config)
    try:
        worker.start()
        await asyncio.to_thread(worker.wait_ready)
        await produce(kafka_bootstrap, config.raw_topic, first)
        await read_topic(kafka_bootstrap, topic, expect=len(first))
        assert worker.terminate() == 0
        stopped = [e for e in worker.log_events() if e.get("event") == "worker.stopped"]
        assert stopped
        assert stopped[-1]["clean"] is True

        worker.start()
        await asyncio.to_thread(worker.wait_ready)
        retries = [raw_notification(f"notif_term_{n:03d}", attempts=2) for n in range(200)]
        fresh = [raw_notification(f"notif_term_{n:03d}") for n in range(200, 300)]
        await produce(kafka_bootstrap, config.raw_topic, retries + fresh)
        routed = await read_topic(kafka_bootstrap, topic, expect=300)
        metrics = worker.wait_for_metric("hookstream_worker_notifications_processed_total", 300)
        events = worker.log_events()
    finally:
        worker.stop()
    ids = Counter(dict(r.headers)["intercom-notification-id"].decode() for r in routed)
    assert set(ids) == {f"notif_term_{n:03d}" for n in range(300)}
    assert max(ids.values()) == 1
    assert metrics["hookstream_worker_duplicates_dropped_total"] == 200
    assert not [e for e in events if e.get("event") == "state.discarded"]


@dataclass(frozen=True)
class StopOutcome:
    """How a worker's SIGTERM stop ended."""

    code: int
    seconds: float
    timed_out: list[float]  # the `worker.stop_timed_out` events' timeouts
    stopped_clean: list[bool]  # the `worker.stopped` events' `clean`
    marked_clean: bool  # the clean-stop marker is on disk


@contextlib.contextmanager
def _broker_stopped(broker_dir: Path) -> Iterator[None]:
    localkafka.stop(broker_dir)
    yield


async def _sigterm_once_kafka_is_unavailable(
    bootstrap: str, tmp_path: Path, unavailable: AbstractContextManager[None]
) -> StopOutcome:
    """Route one notification, make Kafka unavailable, then SIGTERM the worker."""
    config = WorkerConfig(bootstrap=bootstrap, data_root=tmp_path, partitions=1)
    worker = WorkerProcess(config, args=("--shutdown-timeout", "3"))
    try:
        worker.start()
        await asyncio.to_thread(worker.wait_ready)
        await produce(bootstrap, config.raw_topic, [raw_notification("notif_unavailable")])
        await read_topic(bootstrap, config.routed("conversation.user.created"), expect=1)
        with unavailable:
            started = time.monotonic()
            code = await asyncio.to_thread(worker.terminate, 60)
            seconds = time.monotonic() - started
        events = worker.log_events()
    finally:
        worker.stop()
    return StopOutcome(
        code=code,
        seconds=seconds,
        timed_out=[e["seconds"] for e in events if e.get("event") == "worker.stop_timed_out"],
        stopped_clean=[e["clean"] for e in events if e.get("event") == "worker.stopped"],
        marked_clean=(worker.data_dir / CLEAN_STOP_MARKER).exists(),
    )


async def test_sigterm_while_kafka_hangs_exits_at_the_shutdown_timeout(
    private_broker: tuple[str, Path], tmp_path: Path
) -> None:
    """A frozen broker (a network partition) answers nothing, so the stop cannot finish:
    the worker gives up at its timeout, leaving its local state to be rebuilt."""
    bootstrap, broker_dir = private_broker
    outcome = await _sigterm_once_kafka_is_unavailable(
        bootstrap, tmp_path, localkafka.paused(broker_dir)
    )
    assert 3 <= outcome.seconds < 3 + 10
    assert (outcome.code, outcome.timed_out, outcome.stopped_clean) == (1, [3.0], [])
    assert not outcome.marked_clean


async def test_sigterm_while_kafka_is_down_exits_within_the_shutdown_timeout(
    private_broker: tuple[str, Path], tmp_path: Path
) -> None:
    """With the broker stopped, connections are refused: the stop either finishes (nothing
    was left to commit, so the state is marked clean) or gives up at the timeout (not marked)."""
    bootstrap, broker_dir = private_broker
    outcome = await _sigterm_once_kafka_is_unavailable(
        bootstrap, tmp_path, _broker_stopped(broker_dir)
    )
    assert outcome.seconds < 3 + 10
    if outcome.code == 0:
        assert (outcome.timed_out, outcome.stopped_clean, outcome.marked_clean) == (
            [],
            [True],
            True,
        )
    else:
        assert (outcome.code, outcome.timed_out, outcome.stopped_clean) == (1, [3.0], [])
        assert not outcome.marked_clean
