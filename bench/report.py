"""The whole benchmark: every figure of hookstream beside the baseline measured in the same run.

    python -m bench.report [--quick] [--saved]

Runs, one after another (each on a broker of its own unless KAFKA_BOOTSTRAP_SERVERS is set):
bench.ingest, bench.streams, bench.e2e_latency, bench.sink_budget and bench.sink_speed. Each
writes its figures to bench/results/<name>.json and exits non-zero when a run was cut
short; such a section is shown as cut short, never with figures. Then prints one table and
writes it as bench/results/report.json and bench/results/report.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import RESULTS_DIR, median, print_table, save

FULL = {
    "ingest": ["--requests", "20000", "--rounds", "3"],
    "streams": [],
    "e2e_latency": ["--rates", "1000,2500", "--seconds", "20"],
    "sink_budget": ["--windows", "5"],
    "sink_speed": ["--events", "5000", "--rounds", "3"],
}
QUICK = {
    "ingest": ["--requests", "5000", "--rounds", "1", "--rate-seconds", "4"],
    "streams": ["--notifications", "5000", "--rss-ids", "100000", "--latency-seconds", "4"],
    "e2e_latency": ["--rates", "300,1000", "--seconds", "5", "--warmup-seconds", "3"],
    "sink_budget": ["--windows", "2"],
    "sink_speed": ["--events", "1000", "--rounds", "1"],
}
Row = list[str]


def run_benchmarks(plan: dict[str, list[str]]) -> dict[str, dict[str, Any] | None]:
    """Run each benchmark; its figures, or None when it failed or was cut short."""
    figures: dict[str, dict[str, Any] | None] = {}
    for name, args in plan.items():
        result = RESULTS_DIR / f"{name}.json"
        result.unlink(missing_ok=True)
        print(f"\n=== bench.{name} {' '.join(args)}", flush=True)
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", f"bench.{name}", *args], check=False)
        print(f"=== bench.{name}: exit {done.returncode} in {time.monotonic() - started:.0f}s")
        ok = done.returncode == 0 and result.exists()
        figures[name] = json.loads(result.read_text()) if ok else None
    return figures


def saved_results(plan: dict[str, list[str]]) -> dict[str, dict[str, Any] | None]:
    """The figures each benchmark saved at the end of its last complete run, if any."""
    paths = {name: RESULTS_DIR / f"{name}.json" for name in plan}
    return {name: json.loads(p.read_text()) if p.exists() else None for name, p in paths.items()}


def _pair(figures: dict[str, Any], first: str, second: str) -> str:
    return f"{figures[first]:.0f} / {figures[second]:.0f}"


def _ingest_rows(figures: dict[str, Any]) -> list[Row]:
    peaks = figures["peaks"]
    ingest = median([r["per_second"] for r in peaks["ingest"]])
    baseline = median([r["per_second"] for r in peaks["baseline"]])
    rows = [["ingest peak webhooks/s", f"{ingest:.0f}", f"{baseline:.0f} (no-op route)",
             f"{ingest / baseline:.0%}", ">= 60%"]]  # fmt: skip
    if "asgi_noop" in peaks:
        bare = median([r["per_second"] for r in peaks["asgi_noop"]])
        rows.append(["ingest peak vs a bare ASGI no-op", f"{ingest:.0f}",
                     f"{bare:.0f} (ASGI no-op)", f"{ingest / bare:.0%}", ""])  # fmt: skip
    for_peak = {
        name: {key: median([r[key] for r in runs]) for key in ("p50_ms", "p99_ms")}
        for name, runs in peaks.items()
    }
    rows.append(["ingest p50/p99 ms at peak", _pair(for_peak["ingest"], "p50_ms", "p99_ms"),
                 _pair(for_peak["baseline"], "p50_ms", "p99_ms"), "", ""])  # fmt: skip
    for number, (rate, runs) in enumerate(figures["fixed_rates"].items()):
        mine, base = runs["ingest"], runs["baseline"]
        target = "p99 < 50 (half peak)" if number == 0 else ""
        rows.append([f"ingest p50/p99 ms at {rate}/s", _pair(mine, "p50_ms", "p99_ms"),
                     _pair(base, "p50_ms", "p99_ms"), "", target])  # fmt: skip
    return rows


def _streams_rows(figures: dict[str, Any]) -> list[Row]:
    worker, base = figures["worker"], figures["baseline"]
    share = worker["events_per_s"] / base["events_per_s"]
    rows = [["streams events/s, one worker", f"{worker['events_per_s']:.0f}",
             f"{base['events_per_s']:.0f} (aiokafka loop)", f"{share:.0%}", ">= 50%"]]  # fmt: skip
    if "rss" in figures:
        rss = figures["rss"]
        rows.append([f"worker RSS MiB, {rss['ids']:,} ids (RocksDB)", f"{rss['rss_mib_max']:.0f}",
                     "", "", "< 300, flat"])  # fmt: skip
    return rows


def _e2e_rows(figures: dict[str, Any]) -> list[Row]:
    """Per rate, the worker beside the ingest's 200 and beside each exactly-once floor."""
    rows: list[Row] = []
    for number, run in enumerate(figures["rates"]):
        label = f"end to end p50/p99 ms at {run['rate']}/s"
        worker = _pair(run, "e2e_p50_ms", "e2e_p99_ms")
        baselines = [_pair(run, "answer_p50_ms", "answer_p99_ms") + " (ingest's 200)"]
        baselines += [
            _pair(runs[number], "e2e_p50_ms", "e2e_p99_ms") + f" (aiokafka floor: {name})"
            for name, runs in figures.get("floors", {}).items()
        ]
        rows += [[label, worker, baseline, "", ""] for baseline in baselines]
    rows += [
        [f"RSS MiB, {name}", f"{mib:.0f}", "", "", ""]
        for name, mib in sorted(figures["rss_mib"].items())
    ]
    return rows


def _sink_rows(budget: dict[str, Any] | None, speed: dict[str, Any] | None) -> list[Row]:
    rows: list[Row] = []
    if budget is None:
        rows.append(["sink budget used", "cut short: not reported", "", "", ""])
    else:
        rows.append(["sink budget used per window (median)", f"{budget['median_share']:.1%}",
                     "100% (a perfect client)", f"429s: {budget['rate_limited']}",
                     ">= 97%, 0 429s"])  # fmt: skip
    if speed is None:
        rows.append(["sink events/s, sandbox unlimited", "cut short: not reported", "", "", ""])
    else:
        rows.append(["sink events/s, sandbox unlimited", f"{speed['sink_median']:.0f}",
                     f"{speed['baseline_median']:.0f} (bare httpx)", f"{speed['share']:.0%}",
                     ">= 80%"])  # fmt: skip
    return rows


def compile_rows(figures: dict[str, dict[str, Any] | None]) -> list[Row]:
    """One table of every figure that was measured in full."""
    rows: list[Row] = [["figure", "hookstream", "baseline (same run)", "ratio", "target"]]
    sections = {"ingest": _ingest_rows, "streams": _streams_rows, "e2e_latency": _e2e_rows}
    for name, build in sections.items():
        found = figures.get(name)
        rows += build(found) if found else [[name, "cut short: not reported", "", "", ""]]
    rows += _sink_rows(figures.get("sink_budget"), figures.get("sink_speed"))
    return rows


def chart(figures: dict[str, dict[str, Any] | None], path: Path) -> None:
    """Throughput beside its baseline, one bar pair per component."""
    import matplotlib  # noqa: PLC0415 - only the report draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    pairs: list[tuple[str, float, float]] = []
    if ingest := figures.get("ingest"):
        pairs.append(("ingest req/s",
                      median([r["per_second"] for r in ingest["peaks"]["ingest"]]),
                      median([r["per_second"] for r in ingest["peaks"]["baseline"]])))  # fmt: skip
    if streams := figures.get("streams"):
        pairs.append(("streams events/s", streams["worker"]["events_per_s"],
                      streams["baseline"]["events_per_s"]))  # fmt: skip
    if speed := figures.get("sink_speed"):
        pairs.append(("sink events/s", speed["sink_median"], speed["baseline_median"]))
    figure, axes = plt.subplots(figsize=(8, 4))
    positions = range(len(pairs))
    axes.bar([p - 0.2 for p in positions], [p[1] for p in pairs], 0.4, label="hookstream")
    axes.bar([p + 0.2 for p in positions], [p[2] for p in pairs], 0.4, label="baseline")
    axes.set_xticks(list(positions), [p[0] for p in pairs])
    axes.set_title(f"hookstream throughput vs baselines ({os.cpu_count()} cores)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small runs, to check the wiring")
    parser.add_argument(
        "--saved",
        action="store_true",
        help="run nothing: the table of what each benchmark saved in bench/results at the end "
        "of its last complete run (for instance after re-running one of them alone)",
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    figures = saved_results(plan) if args.saved else run_benchmarks(plan)
    rows = compile_rows(figures)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print_table(f"hookstream benchmark ({machine})", rows)
    save("report", {"machine": machine, "rows": rows, "figures": figures})
    chart(figures, RESULTS_DIR / "report.png")
    print(f"\nwritten: {RESULTS_DIR / 'report.json'}, {RESULTS_DIR / 'report.png'}")


if __name__ == "__main__":
    main()
