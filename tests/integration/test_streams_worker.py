"""`hookstream worker` against the real broker: dedup, routing, dead letters, TTL, routes file.

Each test runs the worker as a child process with its own topics, group and data directory,
produces raw records as the ingest would, and reads the routed topics back read_committed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from hookstream.core.contract import decode_headers
from tests.streams.support import (
    PAYLOADS,
    Raw,
    WorkerConfig,
    produce,
    raw_notification,
    running_workers,
)
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration

TOPICS = ("conversation.user.created", "contact.user.created", "conversation.admin.closed")


def _ids(records: list[object]) -> list[str]:
    return [decode_headers(r.headers)["intercom-notification-id"] for r in records]  # type: ignore[attr-defined]


async def test_1000_notifications_and_300_retries_give_exactly_1000_routed_records(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    config = WorkerConfig(bootstrap=kafka_bootstrap, data_root=tmp_path, partitions=3)
    rng = random.Random(1)  # noqa: S311 - test data, not secrets
    originals = [
        raw_notification(f"notif_{n:04d}", topic=TOPICS[n % 3], item_id=f"item-{n % 50}")
        for n in range(1000)
    ]
    stream = list(originals)
    for n in rng.sample(range(1000), 300):  # each retry after its original
        retry = raw_notification(
            f"notif_{n:04d}", topic=TOPICS[n % 3], item_id=f"item-{n % 50}", attempts=2
        )
        stream.insert(rng.randrange(stream.index(originals[n]) + 1, len(stream) + 1), retry)

    with running_workers(config) as [worker]:
        await produce(kafka_bootstrap, config.raw_topic, stream)
        for index, topic in enumerate(TOPICS):
            routed = await read_topic(
                kafka_bootstrap, config.routed(topic), expect=len(range(index, 1000, 3))
            )
            expected = {
                (f"item-{n % 50}".encode(), f"notif_{n:04d}") for n in range(index, 1000, 3)
            }
            assert len(routed) == len(expected), topic
            assert {(r.key, i) for r, i in zip(routed, _ids(routed), strict=True)} == expected
            assert {decode_headers(r.headers)["intercom-topic"] for r in routed} == {topic}
            assert {  # the CloudEvents binding's headers, on the records the worker produced
                (h["ce_id"], h["ce_type"]) for h in (decode_headers(r.headers) for r in routed)
            } == {(i, f"com.intercom.{topic}") for _, i in expected}
            assert {r.value for r in routed} <= {o.value for o in originals}  # bytes unchanged
        metrics = worker.wait_for_metric("hookstream_worker_notifications_processed_total", 1300)
        health = await asyncio.to_thread(httpx.get, worker.url("/healthz"), timeout=5)
        faust_pages = ["/", "/router/", "/table/", "/stats/", "/graph/", "/signal/"]
        answers = [await asyncio.to_thread(httpx.get, worker.url(p)) for p in faust_pages]
    # Faust's own web pages are off (web_enabled=False): its aiohttp server would answer
    # these on the web port (or fail to bind it); core.health's app does not know them.
    assert [answer.status_code for answer in answers] == [404] * len(faust_pages)
    assert metrics["hookstream_worker_notifications_processed_total"] == 1300
    assert metrics["hookstream_worker_duplicates_dropped_total"] == 300
    assert (
        sum(
            value
            for name, value in metrics.items()
            if name.startswith("hookstream_worker_routed_total")
        )
        == 1000
    )
    lag = {n: v for n, v in metrics.items() if n.startswith("hookstream_worker_consumer_lag")}
    assert len(lag) == config.partitions  # one gauge per raw partition
    assert metrics["hookstream_worker_dedup_table_keys"] >= 1000  # RocksDB's estimate
    assert (health.status_code, health.json()) == (200, {"status": "ok"})


async def test_poison_records_go_to_the_dlq_with_a_reason_and_the_next_records_are_routed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    config = WorkerConfig(bootstrap=kafka_bootstrap, data_root=tmp_path, partitions=1)
    records = [
        raw_notification("notif_good_1"),
        Raw(key=b"bad-1", value=b"<html>not json</html>", headers=[("intercom-topic", b"x")]),
        raw_notification("notif_good_2"),
        Raw(key=b"bad-2", value=None),
        Raw(key=b"bad-3", value=b'{"topic": "conversation.user.created", "id": null}'),
        Raw(key=b"bad-4", value=b"[1, 2, 3]"),
        raw_notification("notif_good_3"),
    ]
    with running_workers(config) as [worker]:
        await produce(kafka_bootstrap, config.raw_topic, records)
        routed = await read_topic(
            kafka_bootstrap, config.routed("conversation.user.created"), expect=3
        )
        letters = await read_topic(kafka_bootstrap, config.dlq_topic, expect=4)
        events = worker.log_events()
    assert _ids(routed) == ["notif_good_1", "notif_good_2", "notif_good_3"]
    headers = [decode_headers(letter.headers) for letter in letters]
    assert [(h["hookstream-dlq-reason"], h["hookstream-dlq-source-offset"]) for h in headers] == [
        ("not-json", "1"),
        ("not-json", "3"),
        ("missing-id", "4"),
        ("not-a-notification", "5"),
    ]
    assert {h["hookstream-dlq-source-topic"] for h in headers} == {config.raw_topic}
    assert headers[0]["intercom-topic"] == "x"  # the original headers are kept
    assert [(letter.key, letter.value) for letter in letters] == [
        (r.key, r.value) for r in (records[1], records[3], records[4], records[5])
    ]
    logged = [e for e in events if e.get("event") == "notification.dead_lettered"]
    assert [e["reason"] for e in logged] == [
        "not-json",
        "not-json",
        "missing-id",
        "not-a-notification",
    ]
    assert all(e["level"] == "warning" and e["partition"] == 0 for e in logged)


async def test_a_retry_within_the_ttl_is_dropped_and_one_after_it_passes(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    ttl = 4.0
    config = WorkerConfig(
        bootstrap=kafka_bootstrap, data_root=tmp_path, partitions=1, ttl_seconds=ttl
    )
    topic = config.routed("conversation.user.created")
    with running_workers(config):
        await produce(kafka_bootstrap, config.raw_topic, [raw_notification("notif_ttl")])
        assert _ids(await read_topic(kafka_bootstrap, topic, expect=1)) == ["notif_ttl"]
        first_routed = time.monotonic()  # after the worker saw it: the TTL runs from earlier
        retry_within = [raw_notification("notif_ttl", attempts=2), raw_notification("notif_mark_1")]
        await produce(kafka_bootstrap, config.raw_topic, retry_within)
        assert _ids(await read_topic(kafka_bootstrap, topic, expect=2)) == [
            "notif_ttl",
            "notif_mark_1",
        ]
        assert time.monotonic() - first_routed < ttl, "too slow to test within the TTL"
        await asyncio.sleep(ttl + 0.5 - (time.monotonic() - first_routed))
        retry_after = [raw_notification("notif_ttl", attempts=3), raw_notification("notif_mark_2")]
        await produce(kafka_bootstrap, config.raw_topic, retry_after)
        assert _ids(await read_topic(kafka_bootstrap, topic, expect=4)) == [
            "notif_ttl",
            "notif_mark_1",
            "notif_ttl",
            "notif_mark_2",
        ]


async def test_routes_file_fans_out_drops_and_ping_is_routed_by_its_record_key(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    routes = tmp_path / "routes.yaml"
    config = WorkerConfig(
        bootstrap=kafka_bootstrap, data_root=tmp_path, partitions=2, routes_file=routes
    )
    admin_copy = f"{config.name}.support.admin"
    routes.write_text(
        "routes:\n"
        "  - match: conversation.admin.*\n"
        f"    to: [{admin_copy}, '{{default}}']\n"
        "  - match: contact.*\n"
        "    drop: true\n"
    )
    ping = Raw(key=b"ping-6f1c", value=(PAYLOADS / "ping.json").read_bytes())
    records = [
        raw_notification("notif_a", topic="conversation.admin.closed", item_id="conv-1"),
        raw_notification("notif_b", topic="contact.user.created", item_id="contact-1"),
        ping,
        raw_notification("notif_c", topic="conversation.user.created", item_id="conv-2"),
    ]
    with running_workers(config) as [worker]:
        await produce(kafka_bootstrap, config.raw_topic, records)
        admin = await read_topic(kafka_bootstrap, admin_copy, expect=1)
        default_admin = await read_topic(
            kafka_bootstrap, config.routed("conversation.admin.closed"), expect=1
        )
        pings = await read_topic(kafka_bootstrap, config.routed("ping"), expect=1)
        user = await read_topic(
            kafka_bootstrap, config.routed("conversation.user.created"), expect=1
        )
        metrics = worker.wait_for_metric("hookstream_worker_notifications_processed_total", 4)
    assert [(r.key, r.value) for r in admin] == [(b"conv-1", records[0].value)]
    assert [(r.key, r.value) for r in default_admin] == [(b"conv-1", records[0].value)]
    assert [(r.key, r.value) for r in pings] == [(b"ping-6f1c", ping.value)]
    assert "intercom-notification-id" not in decode_headers(pings[0].headers)
    assert [r.key for r in user] == [b"conv-2"]
    assert metrics["hookstream_worker_notifications_dropped_total"] == 1
    routed = Counter(
        {
            name: value
            for name, value in metrics.items()
            if name.startswith("hookstream_worker_routed_total")
        }
    )
    assert sum(routed.values()) == 4
