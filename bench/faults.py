"""Fault injection: steady traffic through the whole pipeline while its parts fail, then
proof that nothing accepted was lost or doubled.

    python -m bench.faults [--scale ci|full] [--json FILE]

While webhooks and data events flow (bench.traffic), it SIGKILLs the worker, then the sink,
then the ingest, each several times; stops the Kafka broker for a while and starts it again;
makes the Intercom sandbox answer 429s (a budget below the sink's), 5xx bursts, and hang
longer than the sink's timeout. Afterwards it proves, and prints the counts:
  - every webhook that got a 200 is in its routed topic exactly once (read_committed);
  - every data event that got a 202 reached the sandbox at least once (doubles counted);
  - every invalid input was refused with the right status or is in a dead-letter topic;
  - no 5xx other than the documented 503 was answered.
Exits 1 when a claim does not hold. `tests/integration/test_faults.py` runs it at CI scale.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import ConsumerRecord, TopicPartition

from bench import _security
from bench._security import SecuredPipeline
from bench.pipeline import API_TOKEN, SECRET, Pipeline
from bench.traffic import TOPICS, Traffic
from hookstream.core import kafka
from hookstream.core.contract import HEADER_NOTIFICATION_ID, decode_headers
from hookstream.core.dataevents import parse_event
from hookstream.core.errors import TopicNotFound
from hookstream.ops.tail import TailOptions, tail
from hookstream.streams.app import DEDUP_TABLE
from hookstream.streams.dedup import id_key


@dataclass(frozen=True)
class Scale:
    """How hard and how long the suite pushes."""

    webhooks_per_second: float
    events_per_second: float
    kills_per_service: int
    broker_outage_seconds: float
    settle_seconds: float
    sandbox_fault_seconds: float


SCALES = {
    "ci": Scale(20, 8, 2, 10, 4, 5),
    "full": Scale(100, 40, 3, 30, 8, 15),
}
MAX_BODY_BYTES = 64 * 1024
SINK_TIMEOUT_SECONDS = 2.0


@dataclass
class Verdict:
    """The counts the suite proves, and which claims failed."""

    webhooks_accepted: int = 0
    webhooks_routed_once: int = 0
    webhooks_missing: list[str] = field(default_factory=list)
    missing_where: dict[str, int] = field(default_factory=dict)  # see `_diagnose_missing`
    sink_state: dict[str, Any] = field(default_factory=dict)  # see `_diagnose_sink`
    webhooks_doubled: list[str] = field(default_factory=list)
    stored_without_200: int = 0
    events_accepted: int = 0
    events_delivered: int = 0
    events_missing: int = 0
    event_doubles: int = 0
    invalid_on_kafka: int = 0
    invalid_in_dlq: int = 0
    dlq_unexpected: int = 0  # dead letters other than the invalid events sent on purpose
    bad_webhooks_refused: dict[str, int] = field(default_factory=dict)
    wrong_statuses: list[Any] = field(default_factory=list)
    unexpected_5xx: list[Any] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    service_exits: list[str] = field(default_factory=list)  # restarted, as Kubernetes would
    service_exits_zero: int = 0

    @property
    def failures(self) -> list[str]:
        """The claims that do not hold."""
        failed = []
        if self.webhooks_missing:
            failed.append(
                f"{len(self.webhooks_missing)} accepted webhooks never routed: {self.missing_where}"
            )
        if self.service_exits_zero:
            failed.append(f"{self.service_exits_zero} services gave up but exited with 0")
        if self.webhooks_doubled:
            failed.append(f"{len(self.webhooks_doubled)} webhooks routed more than once")
        if self.events_missing:
            failed.append(
                f"{self.events_missing} accepted data events never reached Intercom: "
                f"sink {self.sink_state}"
            )
        if self.invalid_in_dlq < self.invalid_on_kafka:
            failed.append(
                f"{self.invalid_on_kafka - self.invalid_in_dlq} invalid events not in DLQ: "
                f"sink {self.sink_state}"
            )
        if self.wrong_statuses:
            failed.append(f"wrong refusals: {self.wrong_statuses[:5]}")
        if self.unexpected_5xx:
            failed.append(f"5xx other than 503: {self.unexpected_5xx[:5]}")
        return failed


async def run_suite(scale: Scale, work_dir: Path, security: str = "plaintext") -> Verdict:
    """Run the pipeline under traffic and faults; return what could be proven."""
    pipeline = (SecuredPipeline if security == "sasl_ssl" else Pipeline)(
        work_dir,
        extra_env={
            "HOOKSTREAM_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
            "HOOKSTREAM_SINK_REQUEST_TIMEOUT_SECONDS": str(SINK_TIMEOUT_SECONDS),
            "HOOKSTREAM_TOPIC_PARTITIONS": "3",
        },
    )
    verdict = Verdict()
    async with pipeline:
        traffic = traffic_for(pipeline, scale.webhooks_per_second, scale.events_per_second)
        sending = asyncio.create_task(traffic.run())
        await _inject_faults(pipeline, scale, verdict.faults)
        traffic.stop()
        await sending
        await pipeline.restart_exited()
        await verify(pipeline, traffic, verdict)
        verdict.service_exits = pipeline.exits
        verdict.service_exits_zero = pipeline.exits_zero
    return verdict


def traffic_for(
    pipeline: Pipeline, webhooks_per_second: float, events_per_second: float
) -> Traffic:
    """Steady signed webhooks, data events and invalid input against `pipeline`, with the
    ledger `verify` checks (bench.cluster drives the same)."""
    return Traffic(
        ingest_url=pipeline.ingest_url,
        secret=SECRET,
        api_token=API_TOKEN,
        bootstrap=pipeline.bootstrap,
        data_events_topic=pipeline.topics.data_events,
        webhooks_per_second=webhooks_per_second,
        events_per_second=events_per_second,
        oversized_bytes=MAX_BODY_BYTES,
    )


async def _inject_faults(pipeline: Pipeline, scale: Scale, log: list[str]) -> None:
    async def note(what: str) -> None:
        log.append(f"{time.strftime('%H:%M:%S')} {what}")
        await asyncio.sleep(scale.settle_seconds)
        await pipeline.restart_exited()

    await note("steady traffic")
    for name in ("worker", "sink", "ingest"):
        for round_ in range(scale.kills_per_service):
            await pipeline.kill(name)
            await asyncio.sleep(1)
            await pipeline.start(name)
            await note(f"SIGKILLed and restarted {name} ({round_ + 1})")
    await pipeline.stop_broker()
    log.append(f"{time.strftime('%H:%M:%S')} broker stopped")
    await asyncio.sleep(scale.broker_outage_seconds)
    await pipeline.start_broker()
    await note(f"broker back after {scale.broker_outage_seconds:.0f}s")
    await pipeline.configure_sandbox(window_limit=3, window_seconds=2)
    await asyncio.sleep(scale.sandbox_fault_seconds)
    await pipeline.configure_sandbox(window_limit=None, window_seconds=10)
    await note("sandbox limited to 3 calls per 2 s (429s)")
    await pipeline.configure_sandbox(fail_next=20, error_status=503)
    await note("sandbox answered a burst of 20 x 503")
    await pipeline.configure_sandbox(error_rate=0.3, error_status=502)
    await asyncio.sleep(scale.sandbox_fault_seconds)
    await pipeline.configure_sandbox(error_rate=0.0)
    await note("sandbox answered 30% 502s")
    await pipeline.configure_sandbox(timeout_rate=0.3, hang_seconds=SINK_TIMEOUT_SECONDS * 2)
    await asyncio.sleep(scale.sandbox_fault_seconds)
    await pipeline.configure_sandbox(timeout_rate=0.0)
    await note(f"sandbox hung 30% of calls for {SINK_TIMEOUT_SECONDS * 2:.0f}s (> client timeout)")


async def verify(pipeline: Pipeline, traffic: Traffic, verdict: Verdict) -> None:
    """Fill `verdict` from the traffic's ledger and what the topics and the sandbox hold."""
    ledger = traffic.ledger
    verdict.webhooks_accepted = len(ledger.accepted)
    verdict.events_accepted = len(ledger.events_accepted)
    verdict.invalid_on_kafka = len(ledger.invalid_on_kafka)
    verdict.bad_webhooks_refused = dict(ledger.bad_webhooks)
    verdict.wrong_statuses = [*ledger.bad_webhook_wrong_status, *ledger.invalid_lists_wrong_status]
    verdict.unexpected_5xx = ledger.unexpected_5xx
    verdict.statuses = {
        **{f"webhook {k}": v for k, v in sorted(ledger.webhook_statuses.items())},
        "webhook unanswered (ingest down)": ledger.webhook_unanswered,
        **{f"event {k}": v for k, v in sorted(ledger.event_statuses.items())},
        "invalid event lists refused 422": ledger.invalid_lists_refused,
    }
    routed = await _wait_for_routed(pipeline, set(ledger.accepted))
    verdict.webhooks_routed_once = sum(1 for i in ledger.accepted if routed[i] == 1)
    verdict.webhooks_missing = [i for i in ledger.accepted if routed[i] == 0]
    verdict.webhooks_doubled = [i for i, n in routed.items() if n > 1]
    verdict.stored_without_200 = len(set(routed) - set(ledger.accepted))
    if verdict.webhooks_missing:
        verdict.missing_where = await _diagnose_missing(pipeline, verdict.webhooks_missing)

    wanted = Counter(_identity(event) for event in ledger.events_accepted)
    delivered = await _wait_for_events(pipeline, wanted)
    verdict.events_delivered = sum(1 for identity in wanted if delivered[identity] > 0)
    verdict.events_missing = sum(1 for identity in wanted if delivered[identity] == 0)
    verdict.event_doubles = sum(max(0, delivered[i] - 1) for i in wanted)
    dlq = await _read_topic(pipeline.bootstrap, pipeline.topics.data_events_dlq)
    in_dlq = {record.key for record in dlq}
    verdict.invalid_in_dlq = sum(1 for key in ledger.invalid_on_kafka if key in in_dlq)
    sent_invalid = set(ledger.invalid_on_kafka)
    notification_dlq = await _read_topic(pipeline.bootstrap, pipeline.topics.dlq)
    verdict.dlq_unexpected = len(notification_dlq) + sum(
        1 for record in dlq if record.key not in sent_invalid
    )
    if verdict.events_missing or verdict.invalid_in_dlq < verdict.invalid_on_kafka:
        verdict.sink_state = await _diagnose_sink(pipeline)


async def _wait_for_routed(pipeline: Pipeline, accepted: set[str]) -> Counter[str]:
    deadline = time.monotonic() + 180
    while True:
        counts: Counter[str] = Counter()
        for topic in TOPICS:
            records = await _read_topic(pipeline.bootstrap, pipeline.topics.routed(topic))
            counts.update(decode_headers(r.headers)[HEADER_NOTIFICATION_ID] for r in records)
        if accepted <= set(counts) or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(3)


async def _diagnose_missing(pipeline: Pipeline, missing: list[str]) -> dict[str, int]:
    """Where the accepted webhooks that were never routed are, by count: lost before the
    raw topic, routed only in transactions that never committed, or on the raw topic and
    remembered by the worker's dedup table (so never routed again), skipped below its
    committed offset, or not processed yet. Each one's raw position goes to
    `missing.json` in the work dir, beside the services' logs."""
    wanted = set(missing)
    uncommitted: set[str] = set()
    for topic in TOPICS:
        for record in await _read_topic(
            pipeline.bootstrap, pipeline.topics.routed(topic), read_committed=False
        ):
            uncommitted.add(decode_headers(record.headers)[HEADER_NOTIFICATION_ID])
    raw = {
        notification_id: record
        for record in await _read_topic(pipeline.bootstrap, pipeline.topics.raw)
        if (notification_id := decode_headers(record.headers).get(HEADER_NOTIFICATION_ID)) in wanted
    }
    worker_id = pipeline.env()["HOOKSTREAM_WORKER_ID"]
    changelog = await _read_topic(pipeline.bootstrap, f"{worker_id}-{DEDUP_TABLE}-changelog")
    remembered = {record.key for record in changelog}
    connection = _security.connection(pipeline.bootstrap)
    async with kafka.admin_client(connection, wait_seconds=30) as admin:
        committed = await admin.list_consumer_group_offsets(worker_id)
    where: Counter[str] = Counter()
    details = []
    for notification_id in missing:
        record = raw.get(notification_id)
        if notification_id in uncommitted:
            place = "routed in transactions never committed"
        elif record is None:
            place = "not on the raw topic"
        elif id_key(notification_id) in remembered:
            place = "on the raw topic, remembered by the dedup table"
        elif record.offset < committed[TopicPartition(record.topic, record.partition)].offset:
            place = "on the raw topic below the committed offset, not remembered"
        else:
            place = "on the raw topic above the committed offset"
        where[place] += 1
        position = None if record is None else [record.partition, record.offset]
        details.append({"id": notification_id, "where": place, "raw": position})
    (pipeline.work_dir / "missing.json").write_text(json.dumps(details, indent=1))
    return dict(where)


async def _diagnose_sink(pipeline: Pipeline) -> dict[str, Any]:
    """What the sink says of itself (/readyz) and how far its group is behind on each
    partition of the data-events topic: a stalled sink and a slow one look alike otherwise."""
    state: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            ready = await client.get(pipeline.url("sink") + "/readyz")
        state["readyz"] = f"{ready.status_code} {ready.text[:300]}"
    except httpx.HTTPError as exc:
        state["readyz"] = repr(exc)
    ends: dict[int, int] = {}
    for record in await _read_topic(pipeline.bootstrap, pipeline.topics.data_events):
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    group = pipeline.env()["HOOKSTREAM_SINK_ID"]
    connection = _security.connection(pipeline.bootstrap)
    async with kafka.admin_client(connection, wait_seconds=30) as admin:
        committed = await admin.list_consumer_group_offsets(group)
    topic = pipeline.topics.data_events
    done = {
        tp.partition: max(meta.offset, 0) for tp, meta in committed.items() if tp.topic == topic
    }
    state["lag"] = {
        partition: end - done.get(partition, 0) for partition, end in sorted(ends.items())
    }
    return state


async def _read_topic(
    bootstrap: str, topic: str, *, read_committed: bool = True
) -> list[ConsumerRecord[bytes, bytes]]:
    """The topic's records so far (only committed ones unless told): read from the start
    until none came for 2 s (none when the topic does not exist yet)."""
    records: list[ConsumerRecord[bytes, bytes]] = []
    options = TailOptions(
        topic, from_beginning=True, idle_seconds=2.0, read_committed=read_committed
    )
    with contextlib.suppress(TopicNotFound):
        await tail(
            _security.connection(bootstrap), options, on_record=records.append, wait_seconds=30
        )
    return records


def _identity(event: dict[str, Any]) -> tuple[str, str, int]:
    return (str(event["user_id"]), str(event["event_name"]), int(event["created_at"]))


async def _wait_for_events(
    pipeline: Pipeline, wanted: Counter[tuple[str, str, int]]
) -> Counter[tuple[str, str, int]]:
    deadline = time.monotonic() + 240
    while True:
        delivered: Counter[tuple[str, str, int]] = Counter()
        for entry in await pipeline.sandbox_accepted():
            event = parse_event(json.dumps(entry["event"]))
            delivered[(event.identifier, event.event_name, event.created_at)] += 1
        if all(delivered[i] for i in wanted) or time.monotonic() > deadline:
            return delivered
        await asyncio.sleep(3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--json", type=Path, help="also write the verdict here")
    _security.add_security_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hookstream-faults-") as work:
        verdict = asyncio.run(run_suite(SCALES[args.scale], Path(work), args.security))
    report = {**asdict(verdict), "failures": verdict.failures}
    for key in ("webhooks_missing", "webhooks_doubled"):
        report[key] = len(report[key])
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    sys.exit(1 if verdict.failures else 0)


if __name__ == "__main__":
    main()
