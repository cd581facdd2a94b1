"""Budget use of the sink: against the sandbox at Intercom's default app limit (1,666 calls
per 10-second window), sustained calls per window as a share of the limit.
Target: at least 97% of the budget used, zero 429s.

    .venv/bin/python -m bench.sink_budget [--windows 5] [--latency 0.05]

The sink runs with its defaults (10,000 calls/min, one replica, 32 calls in flight) on a
backlog large enough to keep it busy for the whole run. The sandbox counts every window;
the first and the last (partly idle: start-up, end of the backlog) are left out. The
baseline is the limit itself: a perfect client uses 100% of every window and draws no 429.
Uses KAFKA_BOOTSTRAP_SERVERS, or starts a broker of its own.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import uvloop

from bench.harness import add_save_option, broker, save_figures
from bench.sink_common import (
    produce_backlog,
    sandbox,
    sink,
    sink_env,
    unique_topic,
    wait_until,
)

LIMIT = 1666  # Intercom: 10,000 calls a minute, enforced per 10-second window


async def run(args: argparse.Namespace) -> None:
    logs = Path(tempfile.mkdtemp(prefix="bench-sink-budget-"))
    backlog = LIMIT * (args.windows + 3)
    with broker() as bootstrap:
        topic = unique_topic("bench.data-events")
        print(f"producing a backlog of {backlog} events ...", flush=True)
        await produce_backlog(bootstrap, topic, backlog, partitions=6)
        async with sandbox("--latency", str(args.latency)) as box:
            env = sink_env(bootstrap, box.url, topic, log_level="warning")
            async with sink(env, logs / "sink.log") as process:

                async def enough() -> bool:
                    if process.returncode is not None:
                        raise RuntimeError(f"the sink exited with {process.returncode}")
                    stats = await box.stats()
                    windows = [w for w in stats["windows"] if w["admitted"]]
                    return len(windows) >= int(args.windows) + 2

                await wait_until(
                    enough, within=30 + 12 * (args.windows + 2), what="the windows", every=1
                )
            stats = await box.stats()
    windows = [w for w in stats["windows"] if w["admitted"]][1 : args.windows + 1]
    shares = [w["admitted"] / w["limit"] for w in windows]
    rejected = sum(w["rejected"] for w in stats["windows"])
    print()
    print(f"limit {LIMIT} calls per 10 s window; sandbox latency {args.latency * 1000:.0f} ms")
    print(f"{'window start':>14}{'admitted':>10}{'429s':>6}{'share':>8}")
    for window, share in zip(windows, shares, strict=True):
        print(f"{window['start']:14.0f}{window['admitted']:10}{window['rejected']:6}{share:8.1%}")
    print(f"baseline (a perfect client): {LIMIT} per window, 100.0%, 0 429s")
    print(
        f"sink: median {statistics.median(shares):.1%}, lowest {min(shares):.1%} of the "
        f"budget; 429s in the whole run: {rejected}"
    )
    met = min(shares) >= 0.97 and rejected == 0
    print(f"target (>= 97% of every window, zero 429s): {'met' if met else 'missed'}")
    figures = {"limit": LIMIT, "windows": windows, "shares": shares, "rate_limited": rejected}
    figures |= {"median_share": statistics.median(shares), "lowest_share": min(shares)}
    save_figures("sink_budget", {**figures, "met": met}, args)
    print(f"sink log: {logs / 'sink.log'}")


def command_line() -> argparse.ArgumentParser:
    """The options of this benchmark (bench.report checks its plans against them)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=5, help="Full windows to measure.")
    parser.add_argument(
        "--latency", type=float, default=0.05, help="Seconds the sandbox adds to each call."
    )
    add_save_option(parser)
    return parser


def main() -> None:
    uvloop.run(run(command_line().parse_args()))


if __name__ == "__main__":
    main()
