"""End-to-end latency: from a webhook accepted by the ingest to its record committed on the
routed topic, at fixed offered rates, through the whole pipeline on a broker of its own.

    python -m bench.e2e_latency [--rates 1000,2500] [--seconds 20]

The Go load generator offers signed webhooks (distinct ids) at each rate, open loop; a
read_committed consumer on the routed topic stamps each record when it sees it and subtracts
the ingest's `hookstream-received-at` header. The baseline in the same run is the ingest's
own answer latency (webhook sent to 200 answered), the floor the pipeline adds to. A rate
whose records did not all arrive within the drain time is reported as cut short, without
figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
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
from hookstream.core.contract import HEADER_RECEIVED_AT, decode_headers
from hookstream.core.kafka import KafkaConnection
from hookstream.core.settings import TopicSettings
from hookstream.core.topics import TopicAdmin

TOPIC = "conversation.user.created"
DRAIN_SECONDS = 120.0


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


async def run(rates: list[int], seconds: float) -> dict[str, Any]:
    """Every rate through one pipeline; RSS of each process at the end."""
    binary = build_loadgen()
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as work:
        async with Pipeline(
            Path(work),
            extra_env={"HOOKSTREAM_LOG_LEVEL": "warning"},
            sandbox_args=["--unlimited"],
        ) as pipeline:
            await worker_routing(pipeline)
            results = [await measure(pipeline, binary, rate, seconds) for rate in rates]
            memory = {
                name: rss_mib(service.process.pid)
                for name, service in pipeline.services.items()
                if service.process is not None
            }
    return {"rates": results, "rss_mib": memory, "exits": pipeline.exits}


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
    add_save_option(parser)
    return parser


def main() -> None:
    args = command_line().parse_args()
    figures = asyncio.run(run([int(r) for r in args.rates.split(",")], args.seconds))
    rows = [["offered/s", "achieved/s", "e2e p50 ms", "e2e p99 ms", "baseline: 200 p50 ms",
             "baseline: 200 p99 ms"]]  # fmt: skip
    rows += [
        [str(r["rate"]), f"{r['achieved_rate']:.0f}", f"{r['e2e_p50_ms']:.0f}",
         f"{r['e2e_p99_ms']:.0f}", f"{r['answer_p50_ms']:.1f}", f"{r['answer_p99_ms']:.1f}"]
        for r in figures["rates"]
    ]  # fmt: skip
    print_table("end to end: webhook accepted -> committed on its routed topic", rows)
    print("RSS MiB at the end: " + json.dumps({k: round(v) for k, v in figures["rss_mib"].items()}))
    if figures["exits"]:
        print("restarted (exited on their own): " + "; ".join(figures["exits"]))
    save_figures("e2e_latency", figures, args)


if __name__ == "__main__":
    main()
