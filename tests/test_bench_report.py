"""bench.report runs each benchmark with the arguments of its plans: they must be ones the
benchmark takes (a wrong flag only shows after the benchmarks before it have run)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from bench import report
from bench.report import FULL, QUICK


@pytest.mark.parametrize("plan", [FULL, QUICK], ids=["full", "quick"])
def test_every_plan_passes_its_benchmarks_options(plan: dict[str, list[str]]) -> None:
    for name, arguments in plan.items():
        benchmark = importlib.import_module(f"bench.{name}")
        benchmark.command_line().parse_args(arguments)  # exits (SystemExit) on a wrong flag


def test_the_saved_table_shows_what_completed_and_marks_the_rest_cut_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path)
    run = {"per_second": 3000.0, "p50_ms": 2.0, "p99_ms": 9.0}
    ingest = {
        "peaks": {"ingest": [run], "baseline": [{**run, "per_second": 4000.0}]},
        "fixed_rates": {"1500": {"ingest": run, "baseline": run}},
    }
    (tmp_path / "ingest.json").write_text(json.dumps(ingest))
    rows = report.compile_rows(report.saved_results(FULL))
    assert ["ingest peak webhooks/s", "3000", "4000 (no-op route)", "75%", ">= 60%"] in rows
    cut_short = {row[0] for row in rows if row[1] == "cut short: not reported"}
    assert cut_short == {
        "streams",
        "e2e_latency",
        "sink budget used",
        "sink events/s, sandbox unlimited",
    }


def test_the_end_to_end_rows_set_the_worker_beside_each_exactly_once_floor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path)

    def run(rate: int, p50: float, p99: float) -> dict[str, float]:
        return {"rate": rate, "e2e_p50_ms": p50, "e2e_p99_ms": p99,
                "answer_p50_ms": 5.0, "answer_p99_ms": 60.0}  # fmt: skip

    e2e = {
        "rates": [run(1000, 190, 700), run(2500, 230, 930)],
        "floors": {"one": [run(1000, 120, 440), run(2500, 150, 600)]},
        "rss_mib": {"worker": 150.0},
    }
    (tmp_path / "e2e_latency.json").write_text(json.dumps(e2e))
    rows = report.compile_rows(report.saved_results(FULL))
    at_2500 = [row[1:3] for row in rows if row[0] == "end to end p50/p99 ms at 2500/s"]
    assert at_2500 == [
        ["230 / 930", "5 / 60 (ingest's 200)"],
        ["230 / 930", "150 / 600 (aiokafka floor: one)"],
    ]
