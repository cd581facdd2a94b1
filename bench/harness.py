"""What the benchmarks share: a broker, processes that serve HTTP, the Go load generator,
medians, and a table that puts each figure beside its baseline."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from hookstream.devtools import localkafka

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"


class RunCutShort(RuntimeError):
    """A measured run did not finish: its figures are not printed."""


@contextlib.contextmanager
def broker() -> Iterator[str]:
    """KAFKA_BOOTSTRAP_SERVERS when set, else a local broker of the benchmark's own."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield given
        return
    with (
        tempfile.TemporaryDirectory(prefix="bench-kafka-") as data_dir,
        localkafka.running_broker(port=localkafka.free_port(), data_dir=Path(data_dir)) as address,
    ):
        yield address


def build_loadgen() -> Path:
    """Build the Go load generator (stdlib only) and return the binary's path."""
    go = shutil.which("go")
    if go is None:
        sys.exit("the load generator needs Go (go) on PATH")
    binary = Path(tempfile.gettempdir()) / "hookstream-loadgen"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=BENCH_DIR / "loadgen", check=True)
    return binary


def loadgen(binary: Path, url: str, **options: object) -> dict[str, Any]:
    """One load generator run (a separate process); RunCutShort if it did not finish."""
    args = [str(binary), "-url", url]
    for name, value in options.items():
        args += [f"-{name.replace('_', '-')}", str(value)]
    output = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(output)
    if not result["complete"] or result["ok"] != result["requests"]:
        raise RunCutShort(f"run against {url} cut short: {result}")
    return result


def other_tree(tree: Path) -> tuple[list[str], dict[str, str]]:
    """The `hookstream` command that runs the source tree `tree` (another commit's files:
    `git archive <commit> | tar -x -C DIR`) on this environment's Python and libraries, and
    the environment variables it needs: an A/B of two commits with one set of libraries."""
    if not (tree / "hookstream" / "cli.py").is_file():
        sys.exit(
            f"{tree}: no hookstream/cli.py there; unpack a commit's files into it first"
            f" (git archive <commit> | tar -x -C {tree})"
        )
    # -P: the current directory (this tree) does not go before PYTHONPATH.
    return [sys.executable, "-P", "-m", "hookstream.cli"], {"PYTHONPATH": str(tree.resolve())}


@contextlib.contextmanager
def serve(command: Sequence[str], health_url: str, env: dict[str, str], log: Path) -> Iterator[int]:
    """Run a server process until the block ends; yields its pid once `health_url` answers."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            list(command), env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(health_url, timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{command[0]} did not start; see {log}")
            time.sleep(0.2)
        yield process.pid
    finally:
        # The group is gone when the server exited on its own (then the exit above says so).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children, in MiB (from /proc)."""
    total = 0
    for candidate in [pid, *_children(pid)]:
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/{candidate}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def _children(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(FileNotFoundError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            found += [int(child), *_children(int(child))]
    return found


def median(values: Sequence[float]) -> float:
    """The median; the benchmarks repeat each run and report this."""
    return statistics.median(values)


def print_table(title: str, rows: Sequence[Sequence[str]]) -> None:
    """A plain-text table, first row the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"\n{title}")
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def save(name: str, payload: dict[str, Any]) -> Path:
    """Write a benchmark's figures as JSON under bench/results/."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


def add_save_option(parser: argparse.ArgumentParser) -> None:
    """`--no-save`, for diagnostic runs that must not replace the saved figures."""
    parser.add_argument(
        "--no-save",
        dest="save",
        action="store_false",
        help="print the figures only; leave bench/results/ as the last saved run left it",
    )


def save_figures(name: str, payload: dict[str, Any], args: argparse.Namespace) -> None:
    """`save` the figures, unless the run was told `--no-save`; say which."""
    if args.save:
        print(f"written: {save(name, payload)}")
    else:
        print(f"not written (--no-save): {RESULTS_DIR / f'{name}.json'} is unchanged")
