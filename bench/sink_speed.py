"""Raw speed of the sink: events/s through `hookstream sink` against an unlimited sandbox,
beside a bare httpx loop with the same concurrency posting the same bodies (target: >= 80%).

    .venv/bin/python -m bench.sink_speed [--events 5000] [--concurrency 32] [--rounds 3]

Both are measured the same way, by the sandbox: events accepted / (last arrival - first
arrival). The sink starts on a backlog already in Kafka, so the figure excludes its start
and its group join. Rounds alternate baseline and sink, so machine noise hits both; the
medians are compared. Uses KAFKA_BOOTSTRAP_SERVERS, or starts a broker of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop

from bench.harness import add_save_option, broker, save_figures
from bench.sink_common import (
    TOKEN,
    Sandbox,
    event,
    produce_backlog,
    sandbox,
    sink,
    sink_env,
    unique_topic,
    wait_until,
)
from hookstream.core.settings import SinkSettings
from hookstream.sinks.client import limits_from, request_headers, timeout_from


def arrival_rate(entries: list[dict[str, Any]]) -> float:
    """Events per second between the first and the last arrival."""
    first, last = entries[0]["received_at"], entries[-1]["received_at"]
    return (len(entries) - 1) / (last - first) if last > first else float("nan")


async def bare_loop(box: Sandbox, count: int, concurrency: int) -> float:
    """POST `count` bodies with `concurrency` workers over one client set up as the sink's."""
    settings = SinkSettings(
        intercom_access_token=TOKEN,
        intercom_api_base_url=box.url,
        hookstream_sink_concurrency=concurrency,
    )
    bodies = [orjson.dumps(event(n)) for n in range(count)]
    bodies.reverse()
    await box.reset()
    async with httpx.AsyncClient(
        base_url=box.url,
        headers=request_headers(settings),
        timeout=timeout_from(settings),
        limits=limits_from(settings),
    ) as client:

        async def worker() -> None:
            while bodies:
                response = await client.post("/events", content=bodies.pop())
                if response.status_code != 202:
                    raise RuntimeError(f"baseline call answered {response.status_code}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return arrival_rate(await box.accepted())


async def through_sink(
    box: Sandbox, bootstrap: str, count: int, concurrency: int, logs: Path
) -> float:
    """Produce `count` events, run `hookstream sink` until the sandbox has them all."""
    await box.reset()
    topic = unique_topic("bench.data-events")
    await produce_backlog(bootstrap, topic, count, partitions=6)
    env = sink_env(
        bootstrap,
        box.url,
        topic,
        sink_concurrency=concurrency,
        sink_rate_limit_per_minute=10**9,
        log_level="warning",
    )
    started = time.monotonic()
    async with sink(env, logs / f"{topic}.log") as process:

        async def done() -> bool:
            if process.returncode is not None:
                raise RuntimeError(f"the sink exited with {process.returncode}")
            return int((await box.stats())["accepted"]) >= count

        await wait_until(done, within=60 + count / 20, what=f"{count} events", every=0.5)
    print(f"    (sink process ran {time.monotonic() - started:.1f} s in all)", flush=True)
    entries = await box.accepted()
    if len(entries) != count:
        raise RuntimeError(f"the sandbox accepted {len(entries)} events, not {count}")
    return arrival_rate(entries)


async def run(args: argparse.Namespace) -> None:
    logs = Path(tempfile.mkdtemp(prefix="bench-sink-speed-"))
    baseline: list[float] = []
    through: list[float] = []
    with broker() as bootstrap:
        async with sandbox("--unlimited") as box:
            for round_ in range(1, args.rounds + 1):
                baseline.append(await bare_loop(box, args.events, args.concurrency))
                print(f"round {round_}: bare httpx loop {baseline[-1]:8.0f} events/s", flush=True)
                through.append(
                    await through_sink(box, bootstrap, args.events, args.concurrency, logs)
                )
                print(f"round {round_}: hookstream sink {through[-1]:8.0f} events/s", flush=True)
    base, mine = statistics.median(baseline), statistics.median(through)
    print()
    print(f"events per run: {args.events}, concurrency: {args.concurrency}, rounds: {args.rounds}")
    print(f"{'':24}{'median events/s':>16}{'runs':>40}")
    print(f"{'bare httpx loop':24}{base:16.0f}    {', '.join(f'{r:.0f}' for r in baseline)}")
    print(f"{'hookstream sink':24}{mine:16.0f}    {', '.join(f'{r:.0f}' for r in through)}")
    share = mine / base
    verdict = "meets" if share >= 0.8 else "misses"
    print(f"sink / baseline: {share:.0%} ({verdict} the 80% target); sink logs in {logs}")
    figures = {"events": args.events, "concurrency": args.concurrency, "share": share}
    figures |= {"baseline_runs": baseline, "sink_runs": through}
    save_figures("sink_speed", {**figures, "baseline_median": base, "sink_median": mine}, args)


def command_line() -> argparse.ArgumentParser:
    """The options of this benchmark (bench.report checks its plans against them)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    add_save_option(parser)
    return parser


def main() -> None:
    uvloop.run(run(command_line().parse_args()))


if __name__ == "__main__":
    main()
