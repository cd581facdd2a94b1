"""Benchmark of the streams worker against a plain aiokafka consume-and-produce loop.

    python -m bench.streams                 # 20,000 notifications + 20% retries, 1M-id RSS run
    python -m bench.streams --help

Three measurements, on KAFKA_BOOTSTRAP_SERVERS (else a broker of the benchmark's own):

1. Throughput: N notifications plus a share of retries (same id, higher delivery_attempts)
   are preloaded into a raw topic; `hookstream worker` (exactly-once, RocksDB) and the
   baseline (`bench.streams_baseline`: parse, key, produce, commit; no state, no
   transactions) each route all of it. Events/s = raw records / (last - first output
   record's timestamp), so process start-up is not counted. The worker's output is checked:
   exactly N records. With `--compare-tree DIR` (another commit's files, as for
   bench.ingest: `git archive <commit> | tar -x -C DIR`), that tree's worker routes the same
   records too, in `--rounds` alternating with this tree's, each run a fresh worker (group)
   from offset 0; the figures are the medians of the rounds.
2. End-to-end latency: with each process caught up, notifications are produced at a fixed
   rate; a read_committed consumer notes, per routed record, now - `hookstream-received-at`
   (the produce time). The worker's records become visible when its transaction commits.
3. RSS with 1 million ids in the RocksDB dedup table: small notifications with distinct ids
   are preloaded; the worker's resident memory is sampled while it works through them.

Each process is a separate OS process; figures go to stdout and bench/results/streams.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench import _security, harness
from hookstream.devtools import localkafka

HOOKSTREAM = Path(sys.executable).parent / "hookstream"
EXAMPLE = (
    Path(__file__).resolve().parent.parent / "tests/streams/payloads/conversation.user.created.json"
)
TOPICS = ("conversation.user.created", "contact.user.created", "conversation.admin.closed")

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


def _notification(template: dict[str, Any], n: int, attempts: int = 1) -> Record:
    body = dict(template)
    body["id"], body["topic"], body["delivery_attempts"] = f"notif_{n:08d}", TOPICS[n % 3], attempts
    body["data"] = {
        **template["data"],
        "item": {**template["data"]["item"], "id": f"conv-{n % 500}"},
    }
    value = orjson.dumps(body)
    headers = [
        ("intercom-topic", TOPICS[n % 3].encode()),
        ("intercom-delivery-attempts", str(attempts).encode()),
        ("intercom-notification-id", body["id"].encode()),
        ("hookstream-received-at", str(int(time.time() * 1000)).encode()),
    ]
    return body["id"].encode(), value, headers


def _tiny(n: int) -> Record:
    notification_id = f"notif_{n:09d}"
    value = orjson.dumps(
        {
            "type": "notification_event",
            "id": notification_id,
            "topic": "conversation.user.created",
            "data": {"item": {"id": f"c{n % 1000}"}},
        }
    )
    return notification_id.encode(), value, [("intercom-topic", b"conversation.user.created")]


def workload(notifications: int, duplicate_share: float, seed: int = 7) -> list[Record]:
    """N notifications, then `duplicate_share * N` retries, each after its original."""
    template = orjson.loads(EXAMPLE.read_bytes())
    rng = random.Random(seed)  # noqa: S311 - benchmark data, not secrets
    records = [_notification(template, n) for n in range(notifications)]
    for n in rng.sample(range(notifications), int(notifications * duplicate_share)):
        records.insert(rng.randrange(n + 1, len(records) + 1), _notification(template, n, 2))
    return records


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(**_security.connection(bootstrap).client_config("hookstream-bench"))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(**_security.connection(bootstrap).client_config("hookstream-bench"))
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, records: list[Record]) -> None:
    producer = AIOKafkaProducer(
        **_security.connection(bootstrap).client_config("hookstream-bench"),
        acks="all",
        linger_ms=20,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    try:
        batch = []
        for key, value, headers in records:
            batch.append(await producer.send(topic, value, key=key, headers=headers))
            if len(batch) >= 20_000:
                await asyncio.gather(*batch)
                batch = []
        await asyncio.gather(*batch)
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topics: list[str], expect: int, within: float) -> list[Any]:
    """Read `topics` from the start (read_committed) until `expect` records or `within` s."""
    consumer = AIOKafkaConsumer(
        *topics,
        **_security.connection(bootstrap).client_config("hookstream-bench"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + within
    try:
        while len(records) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


async def latency(  # noqa: PLR0917 - one call per process under test
    bootstrap: str, raw: str, outputs: list[str], rate: int, seconds: float, first: int
) -> dict[str, float]:
    """Produce `rate` notifications/s for `seconds` (ids from `first` on); percentiles of
    produce-to-visible of those."""
    template = orjson.loads(EXAMPLE.read_bytes())
    consumer = AIOKafkaConsumer(
        **_security.connection(bootstrap).client_config("hookstream-bench"),
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    await consumer._client.force_metadata_update()  # no public refresh
    partitions = [
        TopicPartition(t, p) for t in outputs for p in consumer.partitions_for_topic(t) or []
    ]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)
    producer = AIOKafkaProducer(
        **_security.connection(bootstrap).client_config("hookstream-bench"), acks="all"
    )
    await producer.start()
    total = int(rate * seconds)
    ours = {f"notif_{n:08d}".encode() for n in range(first, first + total)}
    delays: list[float] = []

    async def send_paced() -> None:
        start = time.monotonic()
        for i in range(total):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            key, value, headers = _notification(template, first + i)
            await producer.send(raw, value, key=key, headers=headers)
        await producer.flush()

    sending = asyncio.create_task(send_paced())
    deadline = time.monotonic() + seconds + 30
    try:
        while len(delays) < total and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            now = time.time() * 1000
            for part in batch.values():
                for record in part:
                    headers = dict(record.headers)
                    if headers["intercom-notification-id"] not in ours:
                        continue  # from an earlier phase, still being routed
                    sent = int(headers["hookstream-received-at"])
                    delays.append((now - sent) / 1000)
        await sending
    finally:
        await producer.stop()
        await consumer.stop()
    if len(delays) < total:
        raise harness.RunCutShort(f"latency run saw {len(delays)} of {total} records")
    cuts = statistics.quantiles(delays, n=100)
    return {"p50_s": cuts[49], "p95_s": cuts[94], "p99_s": cuts[98], "max_s": max(delays)}


def worker_env(  # noqa: PLR0917 - one call site, all positional for brevity
    bootstrap: str, name: str, raw: str, data_dir: Path, port: int, commit: float, partitions: int
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKSTREAM_", "KAFKA_"))}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        HOOKSTREAM_RAW_TOPIC=raw,
        HOOKSTREAM_DLQ_TOPIC=f"{name}.dlq",
        HOOKSTREAM_ROUTE_PREFIX=f"{name}.out.",
        HOOKSTREAM_WORKER_ID=name,
        HOOKSTREAM_STORE="rocksdb://",
        HOOKSTREAM_DATA_DIR=str(data_dir),
        HOOKSTREAM_WORKER_WEB_PORT=str(port),
        HOOKSTREAM_WORKER_COMMIT_INTERVAL_SECONDS=str(commit),
        HOOKSTREAM_TOPIC_PARTITIONS=str(partitions),
        HOOKSTREAM_LOG_LEVEL="warning",
        HOOKSTREAM_LOG_FORMAT="json",
    )
    return _security.service_env(bootstrap, "worker", env)


@contextlib.contextmanager
def worker(  # noqa: PLR0917 - as worker_env
    bootstrap: str,
    name: str,
    raw: str,
    workdir: Path,
    commit: float,
    partitions: int,
    tree: Path | None = None,
) -> Iterator[tuple[int, str]]:
    """`hookstream worker` (this tree's, else that of the source tree `tree`) until the block
    ends; yields (pid, base URL) once ready."""
    port = localkafka.free_port()
    env = worker_env(bootstrap, name, raw, workdir / name, port, commit, partitions)
    hookstream = [str(HOOKSTREAM)]
    if tree is not None:
        hookstream, tree_env = harness.other_tree(tree)
        env.update(tree_env)
    url = f"http://127.0.0.1:{port}"
    command = [*hookstream, "worker", "--web-bind", "127.0.0.1"]
    with harness.serve(command, f"{url}/readyz", env, workdir / f"{name}.log") as pid:
        yield pid, url


@contextlib.contextmanager
def baseline(bootstrap: str, name: str, raw: str, workdir: Path) -> Iterator[int]:
    command = [
        sys.executable, "-m", "bench.streams_baseline", "--bootstrap", bootstrap,
        "--raw-topic", raw, "--group", name, "--prefix", f"{name}.out.",
    ]  # fmt: skip
    env = {**os.environ, **_security.admin_env(bootstrap)}
    with (workdir / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def events_per_second(records: list[Any], raw_count: int) -> float:
    stamps: list[int] = [r.timestamp for r in records]
    return raw_count / max(0.001, (max(stamps) - min(stamps)) / 1000)


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"settings": vars(args).copy()}
    with (
        _security.broker(args.security) as bootstrap,
        tempfile.TemporaryDirectory(prefix="bench-streams-") as tmp,
    ):
        workdir = Path(tmp)
        prefix = f"bench-streams-{uuid.uuid4().hex[:8]}"
        try:
            if not args.rss_only:
                results.update(compare(bootstrap, prefix, workdir, args))
            if args.rss_ids:
                results["rss"] = rss_run(bootstrap, prefix, workdir, args)
        finally:
            asyncio.run(delete_topics(bootstrap, prefix))
    return results


def compare(bootstrap: str, prefix: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Throughput and latency of the worker and of the baseline, on the same preloaded data."""
    # the same records in a raw topic for each, so that neither sees the other's latency run
    raw, baseline_raw = f"{prefix}.raw", f"{prefix}.baseline.raw"
    records = workload(args.notifications, args.duplicate_share)
    baseline_name = f"{prefix}-baseline"
    baseline_outputs = [f"{baseline_name}.out.{t}" for t in TOPICS]
    asyncio.run(create_topics(bootstrap, [raw, baseline_raw], args.partitions))
    # as the worker creates its routed topics (HOOKSTREAM_TOPIC_PARTITIONS); early, so that
    # their leaders are settled when the baseline starts
    asyncio.run(create_topics(bootstrap, baseline_outputs, args.output_partitions))
    started = time.monotonic()
    asyncio.run(produce(bootstrap, raw, records))
    asyncio.run(produce(bootstrap, baseline_raw, records))
    print(f"preloaded 2 x {len(records)} records in {time.monotonic() - started:.1f} s")
    results: dict[str, Any] = {}

    results.update(worker_rounds(bootstrap, prefix, raw, len(records), workdir, args))
    print(f"worker: {results['worker']}")

    with baseline(bootstrap, baseline_name, baseline_raw, workdir) as pid:
        routed = asyncio.run(read_all(bootstrap, baseline_outputs, len(records), 600))
        if len(routed) < len(records):  # at-least-once: a retry may add some
            raise harness.RunCutShort(f"baseline routed {len(routed)} of {len(records)}")
        results["baseline"] = {
            "events_per_s": events_per_second(routed, len(records)),
            "routed": len(routed),
            "latency": asyncio.run(
                latency(
                    bootstrap,
                    baseline_raw,
                    baseline_outputs,
                    args.rate,
                    args.latency_seconds,
                    20_000_000,
                )
            ),
            "rss_mib": harness.rss_mib(pid),
        }
    print(f"baseline: {results['baseline']}")
    return results


def worker_rounds(  # noqa: PLR0917 - compare's state, one call site
    bootstrap: str, prefix: str, raw: str, raw_count: int, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """The worker's throughput (and that of `--compare-tree`'s), each run a new worker routing
    `raw` from its start; then the worker's latency, its last run caught up."""
    trees: dict[str, Path | None] = {"worker": None}
    if args.compare_tree is not None:
        harness.other_tree(args.compare_tree)  # refused now, not after the first rounds
        trees["other_tree"] = args.compare_tree
    runs: dict[str, list[float]] = {label: [] for label in trees}
    plan = round_plan(list(trees), args.rounds)
    results: dict[str, Any] = {}
    for n, label in enumerate(plan):
        name = f"{prefix}-{label}-{n}"
        with worker(
            bootstrap, name, raw, workdir, args.commit_interval, args.output_partitions,
            trees[label],
        ) as (pid, url):  # fmt: skip
            outputs = [f"{name}.out.{t}" for t in TOPICS]
            routed = asyncio.run(read_all(bootstrap, outputs, args.notifications, 600))
            if len(routed) != args.notifications:
                raise harness.RunCutShort(f"{label} routed {len(routed)} of {args.notifications}")
            runs[label].append(events_per_second(routed, raw_count))
            print(f"{label} round {len(runs[label])}: {runs[label][-1]:,.0f} events/s")
            if n == len(plan) - 1:  # the worker, as `round_plan` ends
                results["worker"] = {
                    "events_per_s": statistics.median(runs["worker"]),
                    "rounds": runs["worker"],
                    "routed": len(routed),
                    "duplicates_dropped": metric(url, "hookstream_worker_duplicates_dropped_total"),
                    "latency": asyncio.run(
                        latency(
                            bootstrap, raw, outputs, args.rate, args.latency_seconds, 10_000_000
                        )
                    ),
                    "rss_mib": harness.rss_mib(pid),
                }
    if args.compare_tree is not None:
        results["other_tree"] = {
            "tree": str(args.compare_tree),
            "events_per_s": statistics.median(runs["other_tree"]),
            "rounds": runs["other_tree"],
        }
    return results


def round_plan(labels: list[str], rounds: int) -> list[str]:
    """The order of the throughput runs: `rounds` rounds of every label, the order reversed
    in every other round so that neither tree always runs first (the broker's first run is
    its slowest), and the first label (this tree's worker) last, for the latency run."""
    last_round = labels[::-1]
    plan: list[str] = []
    for n in range(rounds):
        plan += last_round if (rounds - n) % 2 == 1 else labels
    return plan


def rss_run(bootstrap: str, prefix: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    raw = f"{prefix}.rss.raw"
    asyncio.run(create_topics(bootstrap, [raw], args.partitions))
    started = time.monotonic()
    for start in range(0, args.rss_ids, 100_000):
        chunk = [_tiny(n) for n in range(start, min(args.rss_ids, start + 100_000))]
        asyncio.run(produce(bootstrap, raw, chunk))
    print(f"preloaded {args.rss_ids} small notifications in {time.monotonic() - started:.1f} s")
    samples: list[tuple[float, float, float]] = []
    name = f"{prefix}-rss"
    with worker(bootstrap, name, raw, workdir, args.commit_interval, args.output_partitions) as (
        pid,
        url,
    ):
        began = time.monotonic()
        processed = 0.0
        while processed < args.rss_ids and time.monotonic() - began < args.rss_timeout:
            time.sleep(2)
            processed = metric(url, "hookstream_worker_notifications_processed_total")
            samples.append((time.monotonic() - began, processed, harness.rss_mib(pid)))
        keys = metric(url, "hookstream_worker_dedup_table_keys")
    elapsed, done, _ = samples[-1]
    at = {
        f"{int(share * 100)}%": min(
            (s for s in samples if s[1] >= share * args.rss_ids), default=samples[-1]
        )[2]
        for share in (0.1, 0.25, 0.5, 0.75, 1.0)
    }
    return {
        "ids": args.rss_ids,
        "processed": done,
        "seconds": elapsed,
        "events_per_s": done / elapsed,
        "table_keys_estimate": keys,
        "rss_mib_at": at,
        "rss_mib_max": max(s[2] for s in samples),
    }


def report(results: dict[str, Any]) -> None:
    if "worker" in results:
        report_comparison(results["worker"], results["baseline"])
    if "other_tree" in results:
        report_other_tree(results["worker"], results["other_tree"])
    if "rss" in results:
        rss = results["rss"]
        print(
            f"\nRSS with {rss['processed']:,.0f} ids in the RocksDB dedup table: "
            f"max {rss['rss_mib_max']:.0f} MiB (target < 300); at "
            + ", ".join(f"{k}: {v:.0f}" for k, v in rss["rss_mib_at"].items())
            + f"; {rss['events_per_s']:,.0f} events/s"
            + f"; table keys (estimate) {rss['table_keys_estimate']:,.0f}"
        )


def report_comparison(worker_: dict[str, Any], base: dict[str, Any]) -> None:
    rows = [
        ["", "events/s", "latency p50", "p95", "p99", "max", "RSS MiB"],
        *[
            [
                label,
                f"{r['events_per_s']:,.0f}",
                *[
                    f"{r['latency'][k] * 1000:,.0f} ms"
                    for k in ("p50_s", "p95_s", "p99_s", "max_s")
                ],
                f"{r['rss_mib']:.0f}",
            ]
            for label, r in (("worker (exactly-once)", worker_), ("baseline (plain loop)", base))
        ],
    ]
    harness.print_table("Streams worker vs plain aiokafka loop", rows)
    share = worker_["events_per_s"] / base["events_per_s"]
    print(f"worker throughput = {share:.0%} of the baseline (target >= 50%)")


def report_other_tree(worker_: dict[str, Any], other: dict[str, Any]) -> None:
    def rounds(figures: dict[str, Any]) -> str:
        return ", ".join(f"{r:,.0f}" for r in figures["rounds"])

    share = worker_["events_per_s"] / other["events_per_s"]
    print(
        f"worker throughput = {share:.0%} of the worker of {other['tree']}, medians of"
        f" {len(worker_['rounds'])} alternating rounds: {worker_['events_per_s']:,.0f}"
        f" ({rounds(worker_)}) against {other['events_per_s']:,.0f} ({rounds(other)}) events/s"
    )


def command_line() -> argparse.ArgumentParser:
    """The options of this benchmark (bench.report checks its plans against them)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.streams", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--notifications", type=int, default=20_000, help="distinct notifications")
    parser.add_argument(
        "--duplicate-share", type=float, default=0.2, help="retries per notification"
    )
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the raw topic")
    parser.add_argument(
        "--output-partitions", type=int, default=6, help="partitions of the routed topics"
    )
    parser.add_argument(
        "--commit-interval", type=float, default=0.5, help="worker commit interval (s)"
    )
    parser.add_argument(
        "--compare-tree",
        type=Path,
        help="also run the worker of this source tree (another commit's files) on the same"
        " records, in alternating rounds",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="throughput runs of each worker (the figure is the median); with --compare-tree,"
        " 5 or more: single runs vary by a third on a shared machine",
    )
    parser.add_argument("--rate", type=int, default=200, help="notifications/s in the latency run")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--rss-ids", type=int, default=1_000_000, help="0 skips the RSS run")
    parser.add_argument(
        "--rss-only", action="store_true", help="only the RSS run (no throughput, no latency)"
    )
    parser.add_argument("--rss-timeout", type=float, default=1800.0)
    _security.add_security_option(parser)
    harness.add_save_option(parser)
    return parser


def main() -> None:
    parser = command_line()
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    results = run(args)
    report(results)
    print()
    harness.save_figures(_security.results_name("streams", args), results, args)


if __name__ == "__main__":
    main()
