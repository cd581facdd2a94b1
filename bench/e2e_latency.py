"""End-to-end latency: from a webhook accepted by the ingest to its record committed on the
routed topic, at fixed offered rates, through the whole pipeline on a broker of its own.

    python -m bench.e2e_latency [--rates 1000,2500] [--seconds 20]

The Go load generator offers signed webhooks (distinct ids) at each rate, open loop; a
read_committed consumer on the routed topic stamps each record when it sees it and subtracts
the ingest's `hookstream-received-at` header. A rate whose records did not all arrive within
the drain time is reported as cut short, without figures. Each router first takes
`--warmup-seconds` of the first rate, not reported: on a broker just started, the first
run's p99 was twice the next one's (the JVM compiles its hot paths as it goes).

Two baselines in the same run:
- the ingest's own answer latency (webhook sent to 200 answered), the floor the pipeline
  adds to;
- the exactly-once floor: after the worker's runs, the worker is stopped and each of
  `--floors` routes in its place at the same rates (`bench.streams_baseline`: a bare
  aiokafka loop committing a transaction per fetch, `one` for all partitions or
  `per-partition` as Faust does), so the worker's figures stand beside what a bare loop of
  Kafka transactions through aiokafka gives on the same machine, ingest and load included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from bench.harness import (
    RunCutShort,
    add_save_option,
    build_loadgen,
    loadgen,
    print_table,
    rss_mib,
    save_figures,
)
from bench.pipeline import SECRET, Pipeline
from bench.streams_baseline import TRANSACTIONS
from hookstream.core.contract import HEADER_RECEIVED_AT, decode_headers
from hookstream.core.kafka import KafkaConnection
from hookstream.core.settings import TopicSettings
from hookstream.core.topics import TopicAdmin

TOPIC = "conversation.user.created"
DRAIN_SECONDS = 120.0
FLOORS = [name for name in TRANSACTIONS if name != "none"]


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of `values` fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(pipeline: Pipeline, binary: Path, rate: int, seconds: float) -> dict[str, Any]:
    """Offer `rate` webhooks/s for `seconds`; latencies of their routed records, in ms."""
    total = int(rate * seconds)
    # Created as the worker would (it creates a routed topic on its first record): a consumer
    # that joined before the topic existed was assigned it only after the worker's first
    # commits, and read from the latest offset then, missing the records before.
    connection = KafkaConnection(pipeline.bootstrap)
    async with TopicAdmin(TopicSettings(), connection) as admin:
        await admin.ensure(pipeline.topics.routed(TOPIC))
    consumer = AIOKafkaConsumer(
        pipeline.topics.routed(TOPIC),
        **connection.client_config("hookstream-bench"),
        isolation_level="read_committed",
        auto_offset_reset="latest",
        enable_auto_commit=False,
        group_id=f"{pipeline.topics.prefix}-latency-{rate}",
    )
    await consumer.start()
    latencies: list[float] = []
    try:
        while not consumer.assignment():  # join the group before the load starts
            await consumer.getmany(timeout_ms=200)
        load = asyncio.create_task(
            asyncio.to_thread(
                loadgen, binary, pipeline.ingest_url + "/webhooks/intercom",
                rate=rate, n=total, concurrency=512, secret=SECRET, topic=TOPIC,
            )
        )  # fmt: skip
        deadline = time.monotonic() + seconds + DRAIN_SECONDS
        while len(latencies) < total and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            seen_ms = time.time() * 1000
            for records in batch.values():
                for record in records:
                    received = int(decode_headers(record.headers)[HEADER_RECEIVED_AT])
                    latencies.append(seen_ms - received)
        answers = await load
    finally:
        await consumer.stop()
    if len(latencies) < total:
        raise RunCutShort(f"{rate}/s: {len(latencies)} of {total} records arrived in time")
    return {
        "rate": rate,
        "records": total,
        "achieved_rate": answers["per_second"],
        "e2e_p50_ms": percentile(latencies, 0.50),
        "e2e_p99_ms": percentile(latencies, 0.99),
        "answer_p50_ms": answers["p50_ms"],
        "answer_p99_ms": answers["p99_ms"],
    }


async def run(rates: list[int], seconds: float, warmup: float, floors: list[str]) -> dict[str, Any]:
    """Every rate through one pipeline, then through each exactly-once floor in the worker's
    place; RSS of each process at the end of the worker's runs."""
    binary = build_loadgen()
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as work:
        async with Pipeline(
            Path(work),
            extra_env={"HOOKSTREAM_LOG_LEVEL": "warning"},
            sandbox_args=["--unlimited"],
        ) as pipeline:
            await worker_routing(pipeline)
            results = await measure_rates(pipeline, binary, rates, seconds, warmup)
            memory = {
                name: rss_mib(service.process.pid)
                for name, service in pipeline.services.items()
                if service.process is not None
            }
            by_floor: dict[str, list[dict[str, Any]]] = {}
            if floors:
                await pipeline.stop("worker")  # the floors route in its place
            for floor in floors:
                async with exactly_once_floor(pipeline, floor, Path(work)):
                    by_floor[floor] = await measure_rates(pipeline, binary, rates, seconds, warmup)
    return {"rates": results, "floors": by_floor, "rss_mib": memory, "exits": pipeline.exits}


async def measure_rates(
    pipeline: Pipeline, binary: Path, rates: list[int], seconds: float, warmup: float
) -> list[dict[str, Any]]:
    """`measure` at each rate, after `warmup` seconds of the first one, not reported."""
    if warmup > 0:
        await measure(pipeline, binary, rates[0], warmup)
    return [await measure(pipeline, binary, rate, seconds) for rate in rates]


@contextlib.asynccontextmanager
async def exactly_once_floor(
    pipeline: Pipeline, transactions: str, work: Path, within: float = 60.0
) -> AsyncIterator[None]:
    """`bench.streams_baseline --transactions <transactions>` routing the pipeline's raw
    topic from its end, as the worker would, until the block ends."""
    name = f"{pipeline.topics.prefix}-floor-{transactions}"
    ready = work / f"{name}.ready"
    command = [
        sys.executable, "-m", "bench.streams_baseline", "--bootstrap", pipeline.bootstrap,
        "--raw-topic", pipeline.topics.raw, "--group", name,
        "--prefix", f"{pipeline.topics.prefix}.", "--transactions", transactions,
        "--start", "latest", "--ready-file", str(ready),
    ]  # fmt: skip
    log = work / f"{name}.log"
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=output, stderr=asyncio.subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + within
        while not ready.exists():
            if process.returncode is not None or time.monotonic() > deadline:
                raise RunCutShort(f"the {transactions} floor did not start (see {log})")
            await asyncio.sleep(0.2)
        yield
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 30)


async def worker_routing(pipeline: Pipeline, within: float = 180.0) -> None:
    """Wait until the worker is ready (tables recovered), restarting a service that exited
    as Kubernetes would: on a loaded machine the worker has crashed at start, its dedup
    changelog created but not yet in the metadata it read (PartitionsMismatch), and the run
    then measured a pipeline without a worker."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            await pipeline.restart_exited()
            with contextlib.suppress(httpx.HTTPError):
                ready = await client.get(pipeline.url("worker") + "/readyz", timeout=2)
                if ready.status_code == 200:
                    return
            await asyncio.sleep(1)
    raise RunCutShort(f"the worker was not ready within {within:.0f} s")


def command_line() -> argparse.ArgumentParser:
    """The options of this benchmark (bench.report checks its plans against them)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1000,2500", help="offered webhooks/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="load time per rate")
    parser.add_argument(
        "--warmup-seconds", type=float, default=30.0,
        help="load at the first rate before each router's runs, not reported",
    )  # fmt: skip
    parser.add_argument(
        "--floors",
        default=",".join(FLOORS),
        help=f"exactly-once floors to measure after the worker, of {', '.join(FLOORS)}"
        " (empty: none)",
    )
    add_save_option(parser)
    return parser


def main() -> None:
    args = command_line().parse_args()
    floors = [name for name in args.floors.split(",") if name]
    if unknown := sorted(set(floors) - set(FLOORS)):
        raise SystemExit(f"--floors: unknown {', '.join(unknown)} (known: {', '.join(FLOORS)})")
    rates = [int(r) for r in args.rates.split(",")]
    figures = asyncio.run(run(rates, args.seconds, args.warmup_seconds, floors))
    rows = [["router", "offered/s", "achieved/s", "e2e p50 ms", "e2e p99 ms",
             "baseline: 200 p50 ms", "baseline: 200 p99 ms"]]  # fmt: skip
    routers = {"worker": figures["rates"]} | {
        f"floor: {name}": runs for name, runs in figures["floors"].items()
    }
    rows += [
        [router, str(r["rate"]), f"{r['achieved_rate']:.0f}", f"{r['e2e_p50_ms']:.0f}",
         f"{r['e2e_p99_ms']:.0f}", f"{r['answer_p50_ms']:.1f}", f"{r['answer_p99_ms']:.1f}"]
        for router, runs in routers.items()
        for r in runs
    ]  # fmt: skip
    print_table("end to end: webhook accepted -> committed on its routed topic", rows)
    print("RSS MiB at the end: " + json.dumps({k: round(v) for k, v in figures["rss_mib"].items()}))
    if figures["exits"]:
        print("restarted (exited on their own): " + "; ".join(figures["exits"]))
    save_figures("e2e_latency", figures, args)


if __name__ == "__main__":
    main()
