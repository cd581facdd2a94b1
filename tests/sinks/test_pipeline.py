"""The pipeline from taken records to acked ones, against `httpx.MockTransport` (no broker:
the dead letters go to a list; the Kafka side is covered in tests/integration)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from hookstream.core.settings import SinkSettings
from hookstream.sinks.client import IntercomClient
from hookstream.sinks.deadletter import DeadLetter, SourceRecord
from hookstream.sinks.dedup import RecentlySent
from hookstream.sinks.metrics import SinkMetrics
from hookstream.sinks.pipeline import Pipeline, RetryPolicy
from hookstream.sinks.ratelimit import RateBudget

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]
TOPIC = "intercom.data-events"


@dataclass
class Harness:
    pipeline: Pipeline
    metrics: SinkMetrics
    acked: list[tuple[int, int]] = field(default_factory=list)
    dead: list[tuple[SourceRecord, DeadLetter]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)

    def record(self, offset: int, event: object, partition: int = 0) -> SourceRecord:
        value = event if isinstance(event, bytes) else orjson.dumps(event)

        async def ack() -> None:
            self.acked.append((partition, offset))

        return SourceRecord(TOPIC, partition, offset, b"k", value, [], ack)

    def value(self, name: str) -> float:
        return self.metrics.registry.get_sample_value(name) or 0.0


class ListDeadLetters:
    def __init__(self, into: list[tuple[SourceRecord, DeadLetter]]) -> None:
        self.into = into

    async def write(self, record: SourceRecord, letter: DeadLetter) -> None:
        self.into.append((record, letter))


def event(user: str, n: int, **extra: object) -> dict[str, object]:
    return {"event_name": f"did-{n}", "created_at": 1_700_000_000 + n, "user_id": user, **extra}


@asynccontextmanager
async def harness(
    handler: Handler,
    *,
    deadline: float = 2.0,
    max_pending: int = 100,
    dedup_window: float = 3600,
    concurrency: int = 8,
) -> AsyncIterator[Harness]:
    metrics = SinkMetrics()
    dead: list[tuple[SourceRecord, DeadLetter]] = []
    sent: list[dict[str, Any]] = []

    async def recording(request: httpx.Request) -> httpx.Response:
        response = await handler(request)
        if response.status_code == 202:
            sent.append(orjson.loads(request.content))
        return response

    settings = SinkSettings(intercom_access_token="t", intercom_api_base_url="https://i.test")
    async with IntercomClient(settings, transport=httpx.MockTransport(recording)) as client:
        pipeline = Pipeline(
            sender=client,
            budget=RateBudget(calls_per_window=100_000),
            dead_letters=ListDeadLetters(dead),
            metrics=metrics,
            dedup=RecentlySent(dedup_window, 1000),
            concurrency=concurrency,
            retry=RetryPolicy(deadline=deadline, initial=0.01, maximum=0.05),
            max_pending=max_pending,
        )
        h = Harness(pipeline, metrics, dead=dead, sent=sent)
        try:
            yield h
        finally:
            await pipeline.close()


async def settle(h: Harness, count: int, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while len(h.acked) < count and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a list
        await asyncio.sleep(0.01)


async def accept(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(202)


async def test_accepted_events_are_acked_in_offset_order_though_they_finish_out_of_order() -> None:
    async def first_is_slow(request: httpx.Request) -> httpx.Response:
        if orjson.loads(request.content)["user_id"] == "slow":
            await asyncio.sleep(0.2)
        return httpx.Response(202)

    async with harness(first_is_slow) as h:
        records = [h.record(0, event("slow", 0))] + [
            h.record(i, event(f"u{i}", i)) for i in (1, 2, 3)
        ]
        await h.pipeline.submit(records)
        await asyncio.sleep(0.1)
        assert len(h.sent) == 3  # the fast ones are done ...
        assert h.acked == []  # ... but wait for offset 0 to be acked
        await settle(h, 4)
    assert h.acked == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert h.value("hookstream_sink_accepted_total") == 4


async def test_partitions_are_acked_independently() -> None:
    async def p0_is_slow(request: httpx.Request) -> httpx.Response:
        if orjson.loads(request.content)["user_id"] == "p0":
            await asyncio.sleep(0.3)
        return httpx.Response(202)

    async with harness(p0_is_slow) as h:
        await h.pipeline.submit([h.record(5, event("p0", 0), 0), h.record(9, event("p1", 1), 1)])
        await settle(h, 1)
        assert h.acked == [(1, 9)]
        await settle(h, 2)
    assert h.acked == [(1, 9), (0, 5)]


async def test_one_contacts_events_reach_intercom_in_order_even_across_retries() -> None:
    failures = {"did-0": 2}

    async def first_fails_twice(request: httpx.Request) -> httpx.Response:
        name = orjson.loads(request.content)["event_name"]
        if failures.get(name, 0) > 0:
            failures[name] -= 1
            return httpx.Response(503)
        return httpx.Response(202)

    async with harness(first_fails_twice) as h:
        await h.pipeline.submit([h.record(i, event("ann", i)) for i in range(5)])
        await settle(h, 5)
    assert [e["event_name"] for e in h.sent] == [f"did-{i}" for i in range(5)]
    assert (
        h.metrics.registry.get_sample_value(
            "hookstream_sink_retried_total", {"reason": "server_error"}
        )
        == 2
    )


async def test_an_invalid_record_is_dead_lettered_with_its_errors_and_never_sent() -> None:
    async with harness(accept) as h:
        bad = h.record(0, {"event_name": "x", "created_at": "yesterday", "user_id": "1"})
        await h.pipeline.submit([bad, h.record(1, b"not json")])
        await settle(h, 2)
    assert h.sent == []
    assert [letter.reason for _r, letter in h.dead] == ["invalid_event", "invalid_event"]
    assert orjson.loads(h.dead[0][1].detail)[0]["field"] == "created_at"
    assert h.acked == [(0, 0), (0, 1)]


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_a_refused_event_is_dead_lettered_at_once_with_intercoms_error(status: int) -> None:
    calls = 0
    body = orjson.dumps(
        {"type": "error.list", "errors": [{"code": "not_found", "message": "User Not Found"}]}
    )

    async def refuse(_request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(status, content=body)

    async with harness(refuse) as h:
        await h.pipeline.submit([h.record(0, event("ghost", 0))])
        await settle(h, 1)
    assert calls == 1
    ((_record, letter),) = h.dead
    assert (letter.reason, letter.status, letter.intercom_error) == ("rejected", status, body)
    assert h.acked == [(0, 0)]


async def test_server_errors_and_timeouts_are_retried_until_accepted() -> None:
    answers: list[str] = ["500", "timeout", "502", "connect", "202"]

    async def flaky(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if answer == "timeout":
            raise httpx.ReadTimeout("slow", request=request)
        if answer == "connect":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(int(answer))

    async with harness(flaky) as h:
        await h.pipeline.submit([h.record(0, event("ann", 0))])
        await settle(h, 1)
    assert len(h.sent) == 1
    assert h.dead == []
    assert h.value("hookstream_sink_calls_total") == 5


async def test_an_event_failing_past_the_deadline_is_dead_lettered() -> None:
    async def down(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, content=b"down")

    async with harness(down, deadline=0.3) as h:
        started = time.monotonic()
        await h.pipeline.submit([h.record(0, event("ann", 0))])
        await settle(h, 1)
    assert 0.2 < time.monotonic() - started < 2
    ((_record, letter),) = h.dead
    assert (letter.reason, letter.status) == ("retries_exhausted", 503)


async def test_a_refused_token_stops_sending_without_acking_or_dead_lettering() -> None:
    calls = 0

    async def unauthorized(_request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        body = {
            "type": "error.list",
            "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}],
        }
        return httpx.Response(401, content=orjson.dumps(body))

    async with harness(unauthorized, concurrency=1) as h:
        with capture_logs() as logs:
            await h.pipeline.submit([h.record(i, event(f"u{i}", i)) for i in range(5)])
            deadline = time.monotonic() + 5  # a loaded CI machine took longer than 0.2 s
            while h.pipeline.not_ready_reason is None and time.monotonic() < deadline:  # noqa: ASYNC110 - no event to await
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # room for a second call, which must not come
        (denied,) = [entry for entry in logs if entry["event"] == "intercom_access_denied"]
        assert denied["log_level"] == "error"
        assert denied["status"] == 401
        assert "Access Token Invalid" in denied["reason"]
        reason = h.pipeline.not_ready_reason
        assert reason is not None
        assert "401" in reason
        assert "Access Token Invalid" in reason
        assert calls == 1
        assert h.acked == []
        assert h.dead == []
        with pytest.raises(TimeoutError):  # the agent's next batch is not taken
            await asyncio.wait_for(h.pipeline.submit([h.record(9, event("z", 9))]), 0.2)
        assert h.value("hookstream_sink_ready") == 0


async def test_a_repeat_of_an_accepted_event_is_skipped_and_counted() -> None:
    async with harness(accept) as h:
        same = event("ann", 1)
        await h.pipeline.submit(
            [h.record(0, same), h.record(1, same), h.record(2, event("ann", 2))]
        )
        await settle(h, 3)
    assert len(h.sent) == 2
    assert h.value("hookstream_sink_deduplicated_total") == 1
    assert h.acked == [(0, 0), (0, 1), (0, 2)]


async def test_with_dedup_off_a_repeat_is_sent_again() -> None:
    async with harness(accept, dedup_window=0) as h:
        same = event("ann", 1)
        await h.pipeline.submit([h.record(0, same), h.record(1, same)])
        await settle(h, 2)
    assert len(h.sent) == 2


async def test_submit_waits_while_too_many_records_are_in_flight() -> None:
    gate = asyncio.Event()

    async def held(_request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return httpx.Response(202)

    async with harness(held, max_pending=3) as h:
        submit = asyncio.create_task(
            h.pipeline.submit([h.record(i, event(f"u{i}", i)) for i in range(5)])
        )
        await asyncio.sleep(0.1)
        assert not submit.done()
        gate.set()
        await asyncio.wait_for(submit, 2)
        await settle(h, 5)
    assert len(h.acked) == 5


async def test_records_released_before_they_started_leave_no_slot_taken() -> None:
    # A rebalance can revoke a partition in the same turn of the loop that took its batch,
    # so its records' tasks are cancelled before they run a line; their slots must come back
    # (before, they stayed taken and the next batch waited forever: the sink stalled).
    async with harness(accept, max_pending=3) as h:
        await h.pipeline.submit([h.record(i, event(f"u{i}", i)) for i in range(3)])
        assert await h.pipeline.release([(TOPIC, 0)]) == 3
        later = [h.record(i, event(f"v{i}", i), partition=1) for i in range(3)]
        await asyncio.wait_for(h.pipeline.submit(later), 2)
        await settle(h, 3)
    assert h.acked == [(1, 0), (1, 1), (1, 2)]
    assert h.pipeline.pending == 0


async def test_a_429_waits_for_the_reset_and_then_the_event_is_accepted() -> None:
    reset = time.time() + 0.4
    answers = [429, 202]

    async def limited(_request: httpx.Request) -> httpx.Response:
        headers = {
            "X-RateLimit-Limit": "10",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{reset:.3f}",
        }
        return httpx.Response(answers.pop(0), headers=headers)

    async with harness(limited) as h:
        await h.pipeline.submit([h.record(0, event("ann", 0))])
        await settle(h, 1)
        assert time.time() >= reset
    assert len(h.sent) == 1
    assert h.dead == []
    assert h.value("hookstream_sink_rate_limited_total") == 1


async def test_drain_waits_for_records_in_flight_and_closes_intake() -> None:
    async def slow(_request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.1)
        return httpx.Response(202)

    async with harness(slow) as h:
        await h.pipeline.submit([h.record(i, event(f"u{i}", i)) for i in range(3)])
        assert await h.pipeline.drain(within=2)
        assert h.acked == [(0, 0), (0, 1), (0, 2)]
        assert h.pipeline.not_ready_reason == "shutting down"


async def test_the_delay_from_kafka_to_intercoms_202_is_a_histogram_of_accepted_events() -> None:
    async def refuse_ghosts(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404 if orjson.loads(request.content)["user_id"] == "ghost" else 202)

    arrived = time.time() - 3  # the record's Kafka timestamp: 3 s before the sink takes it
    async with harness(refuse_ghosts) as h:
        records = [
            replace(h.record(0, event("ann", 0)), timestamp=arrived),
            replace(h.record(1, event("ghost", 1)), timestamp=arrived),  # refused: not timed
            h.record(2, event("bob", 2)),  # no timestamp: not timed
        ]
        await h.pipeline.submit(records)
        await settle(h, 3)
    (family,) = (
        f
        for f in text_string_to_metric_families(h.metrics.exposition().decode())
        if f.name == "hookstream_sink_arrival_to_accepted_seconds"
    )
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert {"0.05", "0.1", "0.25", "0.5", "1.0", "5.0"} <= buckets.keys()
    assert (buckets["2.5"], buckets["5.0"], buckets["+Inf"]) == (0, 1, 1)
