"""bench.report runs each benchmark with the arguments of its plans: they must be ones the
benchmark takes (a wrong flag only shows after the benchmarks before it have run)."""

from __future__ import annotations

import importlib

import pytest

from bench.report import FULL, QUICK


@pytest.mark.parametrize("plan", [FULL, QUICK], ids=["full", "quick"])
def test_every_plan_passes_its_benchmarks_options(plan: dict[str, list[str]]) -> None:
    for name, arguments in plan.items():
        benchmark = importlib.import_module(f"bench.{name}")
        benchmark.command_line().parse_args(arguments)  # exits (SystemExit) on a wrong flag
