"""Many workspaces through one sink: 50 workspaces of a public app against the sandbox, one
hot workspace offered ten times its budget, the others within theirs, one workspace's token
revoked half-way (and given a new one at the end).

    .venv/bin/python -m bench.workspaces [--seconds 30] [--workspaces 50] [--window 5]

Each workspace has its own token and its own limit in the sandbox (`--limit` calls per
`--window`-second window, the sink's budget the same). Events are produced live, with the
time they were produced in their metadata; the sandbox records when it accepted each one.
One run reports:
- every workspace within its budget: the share of its events delivered and the p99 of
  their delay (production to acceptance) above the steady state (the median delay of all of
  them). Target: all delivered, p99 over the steady state under 2 s.
- the hot workspace: the share of its window budget used, in the windows it was offered
  ten times the budget (every window wholly within the traffic), and its 429s. Target: >= 97% of
  every such window, zero 429s.
- the revoked workspace: its calls after the revocation (a retry loop would make many;
  target: at most the calls it had in flight), and nothing lost: none dead-lettered and,
  once its new token is in the tokens file, every one of its events delivered.
The single-workspace sink's figures are bench.sink_budget's (99% of every window, no 429s).
Uses KAFKA_BOOTSTRAP_SERVERS, or starts a broker of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.harness import add_save_option, broker, save_figures
from bench.sink_common import Sandbox, sandbox, sink, sink_env, unique_topic, wait_until
from hookstream.core.contract import HEADER_APP_ID
from hookstream.core.kafka import KafkaConnection

HOT, REVOKED = "ws00", "ws01"
OVERLOAD = 10  # the hot workspace is offered this many times its budget
CALM_SHARE = 0.05  # the others are offered this share of theirs
P99_TARGET_SECONDS = 2.0
BUDGET_TARGET = 0.97
# Calls after the revocation that are not a loop: those in flight when the 401 came.
REVOKED_CALLS_TARGET = 5


@dataclass
class Produced:
    """What was produced, per workspace."""

    counts: Counter[str] = field(default_factory=Counter)
    hot_windows: tuple[float, float] = (0.0, 0.0)  # when the hot one was overloaded
    revoked_at: float = 0.0


def tokens_file(path: Path, workspaces: list[str], revoked_token: str) -> None:
    """The sink's HOOKSTREAM_SINK_WORKSPACE_TOKENS_FILE (written whole, then renamed)."""
    entries = {ws: {"token": f"bench-token-{ws}", "region": "us"} for ws in workspaces}
    entries[REVOKED]["token"] = revoked_token
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps({"workspaces": entries}))
    tmp.replace(path)


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(**KafkaConnection(bootstrap).client_config("hookstream-bench"))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1), NewTopic(f"{topic}.dlq", 1, 1)])
    finally:
        await admin.close()


async def produce(
    producer: AIOKafkaProducer,
    topic: str,
    *,
    rates: dict[str, float],
    seconds: float,
    produced: Produced,
    phase: str,
    on_half: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Produce each workspace's events at its rate (per second) for `seconds`."""
    started = time.time()
    debt: dict[str, float] = dict.fromkeys(rates, 0.0)
    pending = []
    half_done = on_half is None
    last = started
    while (now := time.time()) < started + seconds:
        for ws, rate in rates.items():
            debt[ws] += rate * (now - last)
            while debt[ws] >= 1:
                debt[ws] -= 1
                n = produced.counts[ws]
                produced.counts[ws] += 1
                body = {
                    "event_name": "bench-event",
                    "created_at": 1_700_000_000 + n,
                    "user_id": f"{ws}-user-{n % 10}",
                    "metadata": {"t": time.time(), "phase": phase},
                }
                pending.append(
                    await producer.send(
                        topic,
                        orjson.dumps(body),
                        key=f"{ws}-user-{n % 10}".encode(),
                        headers=[(HEADER_APP_ID, ws.encode())],
                    )
                )
        last = now
        if on_half is not None and not half_done and now >= started + seconds / 2:
            half_done = True
            await on_half()
        await asyncio.sleep(0.02)
    await asyncio.gather(*pending)


def delays(entries: list[dict[str, Any]], *, by_time: bool = False) -> dict[str, list[float]]:
    """Delay of each accepted event of the run, per workspace (duplicates left out); with
    `by_time`, per second of production instead."""
    out: dict[str, list[float]] = {}
    for entry in entries:
        meta = entry["event"].get("metadata", {})
        if entry["duplicate"] or meta.get("phase") != "run":
            continue
        key = str(int(meta["t"])) if by_time else entry["workspace"]
        out.setdefault(key, []).append(entry["received_at"] - meta["t"])
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux), or NaN."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


async def dead_letters(bootstrap: str, topic: str) -> int:
    """How many records the dead-letter topic holds."""
    consumer = AIOKafkaConsumer(
        f"{topic}.dlq",
        **KafkaConnection(bootstrap).client_config("hookstream-bench"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=2000)
        return sum(len(records) for records in batches.values())
    finally:
        await consumer.stop()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark; its figures."""
    logs = Path(tempfile.mkdtemp(prefix="bench-workspaces-"))
    workspaces = [f"ws{n:02d}" for n in range(args.workspaces)]
    per_second = args.limit / args.window
    rates = dict.fromkeys(workspaces, per_second * CALM_SHARE)
    rates[HOT] = per_second * args.overload
    path = logs / "tokens.json"
    tokens_file(path, workspaces, f"bench-token-{REVOKED}")
    produced = Produced()
    with broker() as bootstrap:
        topic = unique_topic("bench.data-events")
        await create_topic(bootstrap, topic, partitions=6)
        sandbox_args = ["--window-seconds", str(args.window), "--window-limit", str(args.limit)]
        async with sandbox(*sandbox_args, "--workspaces-file", str(path)) as box:
            env = sink_env(
                bootstrap,
                box.url,
                topic,
                log_level="warning",
                sink_rate_window_seconds=args.window,
                sink_rate_limit_per_minute=int(args.limit * 60 / args.window),
                sink_workspace_tokens_file=path,
                sink_workspace_tokens_poll_seconds=0.5,
            )
            producer = AIOKafkaProducer(
                **KafkaConnection(bootstrap).client_config("hookstream-bench"), linger_ms=5
            )
            await producer.start()
            try:
                async with sink(env, logs / "sink.log") as process:
                    figures = await _run(
                        args,
                        box,
                        producer=producer,
                        topic=topic,
                        rates=rates,
                        produced=produced,
                        path=path,
                        process=process,
                        web=f"http://127.0.0.1:{env['HOOKSTREAM_SINK_WEB_PORT']}",
                    )
            finally:
                await producer.stop()
            figures["dead_lettered"] = await dead_letters(bootstrap, topic)
    figures["logs"] = str(logs)
    return figures


async def _run(
    args: argparse.Namespace,
    box: Sandbox,
    *,
    producer: AIOKafkaProducer,
    topic: str,
    rates: dict[str, float],
    produced: Produced,
    path: Path,
    process: asyncio.subprocess.Process,
    web: str,
) -> dict[str, Any]:
    workspaces = list(rates)

    async def alive() -> None:
        if process.returncode is not None:
            raise RuntimeError(f"the sink exited with {process.returncode}")

    async def accepted_at_least(count: int) -> bool:
        await alive()
        return int((await box.stats())["unique_accepted"]) >= count

    # Warm-up: one event per workspace, so the group has joined and every budget is known.
    warm_up = dict.fromkeys(workspaces, 1.0)
    await produce(producer, topic, rates=warm_up, seconds=1.05, produced=produced, phase="warm-up")
    await wait_until(lambda: accepted_at_least(len(workspaces)), within=60, what="the warm-up")

    async def revoke() -> None:
        produced.revoked_at = time.time()
        (await box.client.post(f"/sandbox/workspaces/{REVOKED}/revoke")).raise_for_status()

    started = time.time()
    before = Counter(produced.counts)
    print(f"producing for {args.seconds} s ...", flush=True)
    await produce(
        producer,
        topic,
        rates=rates,
        seconds=args.seconds,
        produced=produced,
        phase="run",
        on_half=revoke,
    )
    produced.hot_windows = (started, time.time())
    run_counts = {ws: produced.counts[ws] - before[ws] for ws in workspaces}

    calm = [ws for ws in workspaces if ws not in (HOT, REVOKED)]

    async def calm_delivered() -> bool:
        await alive()
        got = delays(await box.accepted())
        return all(len(got.get(ws, [])) >= run_counts[ws] for ws in calm)

    await wait_until(calm_delivered, within=30, what="the calm workspaces' events", every=0.5)
    stats = await box.stats()
    revoked_calls = int(stats["workspaces"][REVOKED]["by_status"].get("401", 0))
    readyz = (await box.client.get(f"{web}/readyz")).json()

    # A new token for the revoked workspace, in the sandbox and in the sink's file.
    new_token = "bench-token-rotated"
    rotated = {"token": new_token, "revoked": False}
    (await box.client.post(f"/sandbox/workspaces/{REVOKED}", json=rotated)).raise_for_status()
    tokens_file(path, workspaces, new_token)

    async def revoked_delivered() -> bool:
        await alive()
        return len(delays(await box.accepted()).get(REVOKED, [])) >= run_counts[REVOKED]

    await wait_until(revoked_delivered, within=30, what="the revoked workspace's events")
    entries = await box.accepted()
    got = delays(entries)
    calm_entries = [e for e in entries if e["workspace"] not in (HOT, REVOKED)]
    by_second = delays(calm_entries, by_time=True)
    print(
        "calm median delay by second of production: "
        + " ".join(f"{statistics.median(v):.2f}" for _k, v in sorted(by_second.items())),
        flush=True,
    )
    figures = _figures(
        args,
        stats,
        got=got,
        run_counts=run_counts,
        produced=produced,
        revoked_calls=revoked_calls,
        calm=calm,
    )
    return {**figures, "readyz_while_revoked": readyz, "sink_cpu_seconds": cpu_seconds(process.pid)}


def _figures(
    args: argparse.Namespace,
    stats: dict[str, Any],
    *,
    got: dict[str, list[float]],
    run_counts: dict[str, int],
    produced: Produced,
    revoked_calls: int,
    calm: list[str],
) -> dict[str, Any]:
    steady = statistics.median(d for ws in calm for d in got.get(ws, []))
    calm_rows = {
        ws: {
            "delivered": len(got.get(ws, [])) / run_counts[ws] if run_counts[ws] else 1.0,
            "p99_over_steady": p99(got[ws]) - steady if got.get(ws) else float("nan"),
        }
        for ws in calm
    }
    start, end = produced.hot_windows
    hot = stats["workspaces"][HOT]
    # The windows wholly within the traffic: the hot workspace had a backlog in each.
    windows = [w for w in hot["windows"] if w["start"] >= start and w["start"] + args.window <= end]
    shares = [w["admitted"] / w["limit"] for w in windows]
    return {
        "workspaces": args.workspaces,
        "limit": args.limit,
        "window_seconds": args.window,
        "seconds": args.seconds,
        "steady_delay": steady,
        "calm": calm_rows,
        "calm_lowest_delivered": min(r["delivered"] for r in calm_rows.values()),
        "calm_worst_p99_over_steady": max(r["p99_over_steady"] for r in calm_rows.values()),
        "hot_offered": run_counts[HOT],
        "hot_shares": shares,
        "hot_429s": int(hot["by_status"].get("429", 0)),
        "revoked_produced": run_counts[REVOKED],
        "revoked_delivered": len(got.get(REVOKED, [])),
        "revoked_calls_after_revocation": revoked_calls,
        "all_429s": int(stats["rate_limited"]),
    }


def verdict(
    figures: dict[str, Any],
    *,
    p99_target: float = P99_TARGET_SECONDS,
    budget_target: float = BUDGET_TARGET,
) -> dict[str, bool]:
    """Each target, met or not. The timing targets (`p99_target` seconds over steady for the
    calm workspaces, `budget_target` of every window for the hot one) are the issue's by
    default; the CI test loosens them, not the others."""
    shares = figures["hot_shares"]
    return {
        "calm_all_delivered": figures["calm_lowest_delivered"] >= 1.0,
        "calm_p99": figures["calm_worst_p99_over_steady"] < p99_target,
        "hot_budget": bool(shares) and min(shares) >= budget_target,
        "hot_no_429": figures["hot_429s"] == 0,
        "revoked_nothing_lost": figures["revoked_delivered"] >= figures["revoked_produced"]
        and figures["dead_lettered"] == 0,
        "revoked_no_loop": figures["revoked_calls_after_revocation"] <= REVOKED_CALLS_TARGET,
        "revoked_named_in_readyz": figures["readyz_while_revoked"].get("ready") is True
        and REVOKED
        in figures["readyz_while_revoked"].get("detail", {}).get("parked_workspaces", []),
    }


def report(figures: dict[str, Any]) -> None:
    """Print the figures and the targets."""
    met = verdict(figures)
    calm = figures["calm"]
    print()
    print(
        f"{figures['workspaces']} workspaces, {figures['limit']} calls per "
        f"{figures['window_seconds']} s window each, {figures['seconds']} s of traffic"
    )
    print(f"steady-state delay (median of the calm workspaces): {figures['steady_delay']:.3f} s")
    print(f"the sink's CPU time over the whole run: {figures['sink_cpu_seconds']:.1f} s")
    worst = sorted(calm.items(), key=lambda item: -item[1]["p99_over_steady"])[:5]
    print(f"{'calm workspace':>16}{'delivered':>11}{'p99 - steady':>14}   (the 5 worst)")
    for ws, row in worst:
        print(f"{ws:>16}{row['delivered']:11.1%}{row['p99_over_steady']:13.3f}s")
    print(
        f"calm ({len(calm)}): lowest delivered {figures['calm_lowest_delivered']:.1%}, worst p99 "
        f"over steady {figures['calm_worst_p99_over_steady']:.3f} s (target 100%, < 2 s)"
    )
    shares = figures["hot_shares"]
    print(
        f"hot {HOT}: offered {figures['hot_offered']} events; budget used per window "
        f"{', '.join(f'{s:.1%}' for s in shares)}; 429s {figures['hot_429s']} "
        "(target >= 97% of every window, 0 429s)"
    )
    print(
        f"revoked {REVOKED}: calls after revocation {figures['revoked_calls_after_revocation']} "
        f"(target <= {REVOKED_CALLS_TARGET}); delivered after its new token "
        f"{figures['revoked_delivered']}/{figures['revoked_produced']}; dead letters "
        f"{figures['dead_lettered']} (target: all delivered, none dead-lettered); the sink's "
        f"/readyz meanwhile: {orjson.dumps(figures['readyz_while_revoked']).decode()}"
    )
    print("single workspace (bench.sink_budget): 99% of every window, 0 429s")
    print(
        "targets: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in met.items())
    )
    print(f"logs: {figures['logs']}")


async def run(args: argparse.Namespace) -> None:
    figures = await measure(args)
    report(figures)
    save_figures("workspaces", {**figures, "met": verdict(figures)}, args)


def command_line() -> argparse.ArgumentParser:
    """The options of this benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30, help="Seconds of traffic.")
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--window", type=int, default=5, help="Rate-limit window, seconds.")
    parser.add_argument("--limit", type=int, default=100, help="Calls per window and workspace.")
    parser.add_argument(
        "--overload",
        type=float,
        default=OVERLOAD,
        help="The hot workspace's offered load, in budgets (1: a control run without one).",
    )
    add_save_option(parser)
    return parser


def main() -> None:
    uvloop.run(run(command_line().parse_args()))


if __name__ == "__main__":
    main()
