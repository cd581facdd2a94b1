"""Ingest benchmark: signed, persisted webhooks/s and latency beside a no-op baseline.

    python -m bench.ingest [--requests N] [--concurrency C] [--rounds R] [--workers W]
                           [--tracing off,1,100]

Starts a broker (or uses KAFKA_BOOTSTRAP_SERVERS), the ingest (`hookstream ingest`), the
baseline (the same uvicorn settings serving `bench.noop_app:app`, a no-op route of a FastAPI
app, as the ingest is one) and the same no-op as a bare ASGI app (`asgi_app`: uvicorn's own
ceiling; the ingest's webhook endpoint is plain ASGI, so this is the stricter comparison).
It drives them with the Go load generator (a separate process; every request a distinct,
pre-signed notification): closed-loop peak rounds, alternating the servers, then open-loop
runs of the ingest and the baseline at half the ingest's median peak and at 2,500/s (the
rate at which Intercom delivers at priority).
`--tracing` adds an ingest per sampling percentage (`--tracing off,1,100`: untraced, 1% and
100%), each with traces on, exporting OTLP/HTTP to a local collector that discards them (the
export's cost counts), in the same alternating peak rounds. `--compare-tree DIR` adds the
ingest of another source tree (`git archive main | tar -x -C DIR`) to those rounds: an A/B of
two commits on the same broker, under the same load.
Prints medians; writes bench/results/ingest.json. A run that was cut short stops the
benchmark instead of printing figures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench import _security
from bench.harness import (
    add_save_option,
    build_loadgen,
    loadgen,
    median,
    other_tree,
    print_table,
    rss_mib,
    save_figures,
    serve,
)
from hookstream.devtools import localkafka

SECRET = "bench-client-secret-0123"
TARGET_SHARE = 0.60
TARGET_P99_MS = 50.0


def command_line() -> argparse.ArgumentParser:
    """The options of this benchmark (bench.report checks its plans against them)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="per peak round")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers, both servers")
    parser.add_argument("--fixed-rate", type=int, default=2500, help="the second open-loop rate")
    parser.add_argument(
        "--rate-seconds", type=float, default=10.0, help="per open-loop run (0: peaks only)"
    )
    parser.add_argument(
        "--tracing",
        type=_tracing_modes,
        default=["off"],
        help="comma-separated: off (the ingest as deployed), or sampling percentages of "
        "extra ingests with traces on (off,1,100)",
    )
    parser.add_argument(
        "--compare-tree",
        type=Path,
        help="also run the ingest of this source tree (another commit's files) in the rounds",
    )
    _security.add_security_option(parser)
    add_save_option(parser)
    return parser


def _tracing_modes(value: str) -> list[str]:
    modes = [mode.strip() for mode in value.split(",") if mode.strip()]
    for mode in modes:
        if mode != "off" and not 0 < float(mode) <= 100:
            raise argparse.ArgumentTypeError(f"{mode}: off, or a percentage in (0, 100]")
    if "off" not in modes:
        modes.insert(0, "off")  # the untraced ingest is what every other figure is about
    return modes


_OTHER_TREE = "ingest, other tree"


def _traced_name(mode: str) -> str:
    return f"ingest, traced {mode}%"


@contextlib.contextmanager
def _discarding_collector() -> Iterator[str]:
    """An OTLP/HTTP endpoint on this machine that answers every export 200 and keeps
    nothing; yields its base URL."""

    class Discard(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a collector

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Discard)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    args = command_line().parse_args()
    binary = build_loadgen()
    with (
        _security.broker(args.security) as bootstrap,
        tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp,
        _discarding_collector() as collector,
        contextlib.ExitStack() as traced_ingests,
    ):
        work = Path(tmp)
        ingest_port, admin_port, noop_port, asgi_port = (localkafka.free_port() for _ in range(4))
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "INTERCOM_CLIENT_SECRET": SECRET,
            "HOOKSTREAM_SPOOL_PATH": str(work / "spool.sqlite3"),
            "HOOKSTREAM_RAW_TOPIC": f"bench.raw.{uuid.uuid4().hex[:8]}",
            "HOOKSTREAM_LOG_LEVEL": "warning",
            "HOOKSTREAM_LOG_FORMAT": "json",
        }
        env = _security.service_env(bootstrap, "ingest", env)
        workers = ["--workers", str(args.workers)]
        ingest_cmd = [sys.executable, "-m", "hookstream.cli", "ingest", "--port", str(ingest_port),
                      "--admin-port", str(admin_port), *workers]  # fmt: skip
        urls = {
            "ingest": f"http://127.0.0.1:{ingest_port}",
            "baseline": f"http://127.0.0.1:{noop_port}",
            "asgi_noop": f"http://127.0.0.1:{asgi_port}",
        }
        with (
            serve(_uvicorn("bench.noop_app:app", noop_port, *workers),
                  urls["baseline"] + "/healthz", env, work / "noop.log") as noop_pid,
            serve(_uvicorn("bench.noop_app:asgi_app", asgi_port, "--lifespan", "off", *workers),
                  urls["asgi_noop"] + "/healthz", env, work / "asgi-noop.log"),
            serve(ingest_cmd, urls["ingest"] + "/healthz", env, work / "ingest.log") as pid,
        ):  # fmt: skip
            for mode in args.tracing[1:]:
                urls[_traced_name(mode)] = _serve_traced(
                    traced_ingests, mode, env, work=work, collector=collector, workers=workers
                )
            if args.compare_tree is not None:
                urls[_OTHER_TREE] = _serve_other_tree(
                    traced_ingests, args.compare_tree, env, work=work, workers=workers
                )
            peaks: dict[str, list[dict[str, Any]]] = {name: [] for name in urls}
            for url in urls.values():  # warm-up: connections, topic metadata
                loadgen(binary, url + "/webhooks/intercom", n=2000, secret=SECRET)
            names = list(urls)
            for number in range(args.rounds):  # each round starts with the next server
                for name in names[number % len(names) :] + names[: number % len(names)]:
                    url = urls[name]
                    peaks[name].append(
                        loadgen(
                            binary,
                            url + "/webhooks/intercom",
                            n=args.requests,
                            concurrency=args.concurrency,
                            secret=SECRET,
                        )
                    )
            half_rate = round(median([r["per_second"] for r in peaks["ingest"]]) / 2)
            fixed = {
                rate: {
                    name: loadgen(
                        binary,
                        urls[name] + "/webhooks/intercom",
                        rate=rate,
                        n=int(rate * args.rate_seconds),
                        concurrency=1024,
                        secret=SECRET,
                    )
                    for name in ("ingest", "baseline")
                }
                for rate in ((half_rate, args.fixed_rate) if args.rate_seconds > 0 else ())
            }
            durable = _durable_counts(f"http://127.0.0.1:{admin_port}")  # the admin port
            memory = {"ingest": rss_mib(pid), "baseline": rss_mib(noop_pid)}

    _report(args, peaks, fixed, durable=durable, memory=memory)


def _serve_traced(
    stack: contextlib.ExitStack,
    mode: str,
    env: dict[str, str],
    *,
    work: Path,
    collector: str,
    workers: list[str],
) -> str:
    """Start an ingest with traces on, sampling `mode` percent of the webhooks, exporting
    to `collector`; return its URL."""
    port, admin_port = localkafka.free_port(), localkafka.free_port()
    folder = work / f"traced-{mode}"
    folder.mkdir()
    traced_env = {
        **env,
        "HOOKSTREAM_SPOOL_PATH": str(folder / "spool.sqlite3"),
        "HOOKSTREAM_INGEST_TRANSACTIONAL_ID_PREFIX": f"bench-traced-{mode}-",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": str(float(mode) / 100),
    }
    command = [sys.executable, "-m", "hookstream.cli", "ingest", "--port", str(port),
               "--admin-port", str(admin_port), *workers]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    stack.enter_context(serve(command, url + "/healthz", traced_env, folder / "ingest.log"))
    return url


def _serve_other_tree(
    stack: contextlib.ExitStack, tree: Path, env: dict[str, str], *, work: Path, workers: list[str]
) -> str:
    """Start the ingest of the source tree `tree` (untraced); return its URL."""
    port, admin_port = localkafka.free_port(), localkafka.free_port()
    folder = work / "other-tree"
    folder.mkdir()
    hookstream, tree_env = other_tree(tree)  # its hookstream, not the installed one
    other_env = {
        **env,
        **tree_env,
        "HOOKSTREAM_SPOOL_PATH": str(folder / "spool.sqlite3"),
        "HOOKSTREAM_INGEST_TRANSACTIONAL_ID_PREFIX": "bench-other-tree-",
    }
    command = [*hookstream, "ingest", "--port", str(port), "--admin-port", str(admin_port),
               *workers]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    stack.enter_context(serve(command, url + "/healthz", other_env, folder / "ingest.log"))
    return url


def _uvicorn(app: str, port: int, *options: str) -> list[str]:
    """uvicorn serving `app` with the ingest's server settings."""
    server = [
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return [sys.executable, "-m", "uvicorn", app, "--port", str(port), *server, *options]


def _durable_counts(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics").text
    return {
        via: float(value)
        for via, value in re.findall(r'hookstream_ingest_durable_total\{via="(\w+)"\} (\S+)', text)
    }


def _report(
    args: argparse.Namespace,
    peaks: dict[str, list[dict[str, Any]]],
    fixed: dict[int, dict[str, dict[str, Any]]],
    *,
    durable: dict[str, float],
    memory: dict[str, float],
) -> None:
    def peak(name: str, key: str) -> float:
        return median([r[key] for r in peaks[name]])

    share = peak("ingest", "per_second") / peak("baseline", "per_second")
    rows = [
        ["figure", "ingest", "baseline (no-op route)", "ingest/baseline", "target"],
        ["peak req/s (median)", f"{peak('ingest', 'per_second'):.0f}",
         f"{peak('baseline', 'per_second'):.0f}", f"{share:.0%}", f">= {TARGET_SHARE:.0%}"],
        ["peak p50 ms", f"{peak('ingest', 'p50_ms'):.1f}", f"{peak('baseline', 'p50_ms'):.1f}",
         "", ""],
        ["peak p99 ms", f"{peak('ingest', 'p99_ms'):.1f}", f"{peak('baseline', 'p99_ms'):.1f}",
         "", ""],
    ]  # fmt: skip
    for number, (rate, runs) in enumerate(fixed.items()):
        target = f"< {TARGET_P99_MS:.0f}" if number == 0 else ""
        ingest, baseline = runs["ingest"], runs["baseline"]
        rows += [
            [f"achieved/s at {rate}/s offered", f"{ingest['per_second']:.0f}",
             f"{baseline['per_second']:.0f}", "", ""],
            [f"p50 ms at {rate}/s", f"{ingest['p50_ms']:.1f}", f"{baseline['p50_ms']:.1f}", "", ""],
            [f"p99 ms at {rate}/s", f"{ingest['p99_ms']:.1f}", f"{baseline['p99_ms']:.1f}", "",
             target],
        ]  # fmt: skip
    bare = peak("asgi_noop", "per_second")
    rows.append(
        ["peak req/s, no-op as a bare ASGI app", f"{peak('ingest', 'per_second'):.0f}",
         f"{bare:.0f}", f"{peak('ingest', 'per_second') / bare:.0%}", ""]
    )  # fmt: skip
    extras = [(_traced_name(mode), f"peak req/s, traces on, {mode}% sampled")
              for mode in args.tracing[1:]]  # fmt: skip
    if args.compare_tree is not None:
        extras.append((_OTHER_TREE, f"peak req/s, ingest of {args.compare_tree}"))
    for name, label in extras:
        # Paired: each round's figure over the untraced ingest's of the same round, so a
        # machine whose load drifts between rounds still compares like with like.
        paired = median(
            [mine["per_second"] / untraced["per_second"]
             for mine, untraced in zip(peaks[name], peaks["ingest"], strict=True)]
        )  # fmt: skip
        rows.append(
            [label, f"{peak(name, 'per_second'):.0f}", f"{peak('baseline', 'per_second'):.0f}",
             f"{peak(name, 'per_second') / peak('baseline', 'per_second'):.0%}; "
             f"{paired:.0%} of the ingest (round by round)", ""]
        )  # fmt: skip
    rows.append(
        ["RSS MiB at the end", f"{memory['ingest']:.0f}", f"{memory['baseline']:.0f}", "", ""]
    )
    print_table(
        f"ingest: {args.rounds} rounds x {args.requests} signed webhooks, concurrency "
        f"{args.concurrency}, {args.workers} worker(s), {os.cpu_count()} cores, {args.security}",
        rows,
    )
    print(f"durable via kafka: {durable.get('kafka', 0):.0f}, via spool: "
          f"{durable.get('spool', 0):.0f}")  # fmt: skip
    save_figures(
        _security.results_name("ingest", args),
        {"peaks": peaks, "fixed_rates": fixed, "durable": durable, "rss_mib": memory,
         "share_of_baseline": share},
        args,
    )  # fmt: skip


if __name__ == "__main__":
    main()
