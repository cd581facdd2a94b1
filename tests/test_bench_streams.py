"""bench.streams against a reference tree: the order of its runs and its refusal of a checkout
it cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.streams import reference_hookstream, round_plan


@pytest.mark.parametrize("rounds", [1, 2, 5, 7])
def test_each_tree_runs_once_a_round_and_the_worker_last(rounds: int) -> None:
    plan = round_plan(["worker", "reference"], rounds)

    assert plan.count("worker") == plan.count("reference") == rounds
    pairs = [plan[n : n + 2] for n in range(0, len(plan), 2)]
    assert all(sorted(pair) == ["reference", "worker"] for pair in pairs)
    assert plan[-1] == "worker"  # its last run stays up for the latency run


def test_the_tree_that_runs_first_alternates_between_rounds() -> None:
    plan = round_plan(["worker", "reference"], 6)
    firsts = plan[::2]

    assert firsts == ["worker", "reference"] * 3


def test_without_a_reference_the_worker_runs_each_round() -> None:
    assert round_plan(["worker"], 3) == ["worker"] * 3


def test_a_reference_without_its_virtualenv_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"bootstrap that checkout first .*scripts/bootstrap"):
        reference_hookstream(tmp_path)
