"""The processor through its public interface, with in-memory stand-ins for the table, the
producer and the topic admin (no broker: the integration tests cover those)."""

from __future__ import annotations

import pytest

from hookstream.core.contract import decode_headers
from hookstream.core.errors import KafkaAccessDenied, TopicAdminFailed, TopicMissing
from hookstream.streams.dedup import Deduplicator
from hookstream.streams.errors import RouteFailed
from hookstream.streams.metrics import WorkerMetrics
from hookstream.streams.processor import Outcome, Processor
from hookstream.streams.records import OutRecord, RawRecord
from hookstream.streams.routes import RouteTable, route_table_from_mapping
from tests.streams.support import PAYLOADS, notification


class Sink:
    def __init__(self, refuse: set[str] | None = None) -> None:
        self.records: list[OutRecord] = []
        self.refuse = refuse or set()

    def send(self, record: OutRecord) -> None:
        if record.topic in self.refuse:
            raise RouteFailed("record too large")
        self.records.append(record)


class Topics:
    def __init__(self, broken: set[str] | None = None) -> None:
        self.created: list[str] = []
        self.broken = broken or set()
        self.missing: set[str] = set()
        self.denied = False
        self.unreachable = False

    async def ensure(self, name: str) -> None:
        if self.denied:
            raise KafkaAccessDenied(f"Kafka denied User:w Create on topic {name!r}")
        if name in self.missing:
            raise TopicMissing(f"topic {name!r} does not exist")
        if self.unreachable:
            raise TopicAdminFailed(f"create {name}: no answer within 5 s")
        if name in self.broken:
            raise TopicAdminFailed(f"cannot create {name}", retriable=False)
        if name not in self.created:
            self.created.append(name)


class Harness:
    def __init__(self, routes: RouteTable | None = None, **kwargs: set[str]) -> None:
        self.table: dict[bytes, bytes] = {}
        self.sink = Sink(kwargs.get("refuse"))
        self.topics = Topics(kwargs.get("broken"))
        self.metrics = WorkerMetrics()
        self.processor = Processor(
            dedup=Deduplicator(self.table, ttl_seconds=3600),
            routes=routes or RouteTable("intercom."),
            topics=self.topics,
            sink=self.sink,
            dlq_topic="dlq",
            metrics=self.metrics,
        )
        self.offset = 0

    async def feed(self, value: bytes | None, key: bytes | None = b"k") -> Outcome:
        self.offset += 1
        raw = RawRecord("raw", 0, self.offset, key, value, [], 1_700_000_000_000)
        return await self.processor.process(raw)

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


async def test_first_delivery_is_routed_and_retries_of_the_same_id_are_dropped() -> None:
    h = Harness()
    assert await h.feed(notification("notif_1", item_id="c1")) is Outcome.ROUTED
    assert await h.feed(notification("notif_1", item_id="c1", attempts=2)) is Outcome.DUPLICATE
    assert await h.feed(notification("notif_2", item_id="c1")) is Outcome.ROUTED
    assert [(r.topic, r.key) for r in h.sink.records] == [
        ("intercom.conversation.user.created", b"c1"),
        ("intercom.conversation.user.created", b"c1"),
    ]
    assert h.topics.created == ["intercom.conversation.user.created"]
    assert h.metric("hookstream_worker_duplicates_dropped_total") == 1
    assert h.metric("hookstream_worker_notifications_processed_total") == 3
    assert (
        h.metric("hookstream_worker_routed_total", destination="intercom.conversation.user.created")
        == 2
    )


async def test_ping_is_routed_every_time_it_arrives() -> None:
    h = Harness()
    ping = (PAYLOADS / "ping.json").read_bytes()
    assert await h.feed(ping, key=b"ping-1") is Outcome.ROUTED
    assert await h.feed(ping, key=b"ping-2") is Outcome.ROUTED
    assert [(r.topic, r.key) for r in h.sink.records] == [
        ("intercom.ping", b"ping-1"),
        ("intercom.ping", b"ping-2"),
    ]


async def test_fan_out_and_drop_follow_the_route_table() -> None:
    routes = route_table_from_mapping(
        "intercom.",
        {
            "routes": [
                {"match": "conversation.*", "to": ["a", "b"]},
                {"match": "ping", "drop": True},
            ]
        },
    )
    h = Harness(routes)
    assert await h.feed(notification("notif_1")) is Outcome.ROUTED
    assert await h.feed((PAYLOADS / "ping.json").read_bytes()) is Outcome.DROPPED
    assert [r.topic for r in h.sink.records] == ["a", "b"]
    assert h.metric("hookstream_worker_notifications_dropped_total") == 1


@pytest.mark.parametrize(
    ("value", "reason"),
    [(b"nope", "not-json"), (b"{}", "not-a-notification"), (b'{"topic": "x"}', "missing-id")],
)
async def test_unprocessable_records_are_dead_lettered_with_their_reason(
    value: bytes, reason: str
) -> None:
    h = Harness()
    assert await h.feed(value) is Outcome.DEAD_LETTERED
    [letter] = h.sink.records
    assert letter.topic == "dlq"
    assert letter.value == value
    assert decode_headers(letter.headers)["hookstream-dlq-reason"] == reason
    assert h.metric("hookstream_worker_dead_letters_total", reason=reason) == 1


async def test_a_topic_that_cannot_be_created_dead_letters_without_remembering_the_id() -> None:
    h = Harness(broken={"intercom.conversation.user.created"})
    assert await h.feed(notification("notif_1")) is Outcome.DEAD_LETTERED
    assert decode_headers(h.sink.records[0].headers)["hookstream-dlq-reason"] == "route-failed"
    h.topics.broken.clear()  # fixed, and the dead letter replayed: it passes
    assert await h.feed(notification("notif_1")) is Outcome.ROUTED


async def test_a_topic_the_cluster_cannot_create_now_stops_the_worker_instead() -> None:
    h = Harness()
    h.topics.unreachable = True  # a controller lost: retriable, so no dead letter
    with pytest.raises(TopicAdminFailed):
        await h.feed(notification("notif_1"))
    assert h.sink.records == []
    h.topics.unreachable = False  # the restart processes the same record again
    assert await h.feed(notification("notif_1")) is Outcome.ROUTED


async def test_a_missing_routed_topic_dead_letters_with_its_reason_until_it_exists() -> None:
    h = Harness()
    h.topics.missing.add("intercom.conversation.user.created")
    assert await h.feed(notification("notif_1")) is Outcome.DEAD_LETTERED
    (letter,) = h.sink.records
    assert decode_headers(letter.headers)["hookstream-dlq-reason"] == "routed_topic_missing"
    assert h.metric("hookstream_worker_dead_letters_total", reason="routed_topic_missing") == 1
    h.topics.missing.clear()  # the topic created, the dead letter replayed: routed once
    assert await h.feed(notification("notif_1")) is Outcome.ROUTED
    assert await h.feed(notification("notif_1")) is Outcome.DUPLICATE
    assert [r.topic for r in h.sink.records] == ["dlq", "intercom.conversation.user.created"]


async def test_a_missing_acl_stops_the_worker_instead_of_dead_lettering() -> None:
    h = Harness()
    h.topics.denied = True
    with pytest.raises(KafkaAccessDenied, match="Create on topic"):
        await h.feed(notification("notif_1"))
    assert h.sink.records == []
    assert h.metric("hookstream_worker_dead_letters_total", reason="route-failed") == 0


async def test_a_record_the_producer_refuses_is_dead_lettered() -> None:
    h = Harness(refuse={"intercom.conversation.user.created"})
    assert await h.feed(notification("notif_1")) is Outcome.DEAD_LETTERED
    assert [r.topic for r in h.sink.records] == ["dlq"]


async def test_the_same_rejected_record_processed_twice_is_dead_lettered_once() -> None:
    h = Harness()
    raw = RawRecord("raw", 0, 7, b"k", b"nope", [], 0)
    assert await h.processor.process(raw) is Outcome.DEAD_LETTERED
    assert await h.processor.process(raw) is Outcome.DUPLICATE  # e.g. after a crash
    assert len(h.sink.records) == 1
