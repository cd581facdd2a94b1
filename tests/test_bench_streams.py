"""bench.streams against another source tree (`--compare-tree`): the order of its runs, and
the refusal of a folder that holds no hookstream."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.harness import other_tree
from bench.streams import round_plan


@pytest.mark.parametrize("rounds", [1, 2, 5, 7])
def test_each_tree_runs_once_a_round_and_the_worker_last(rounds: int) -> None:
    plan = round_plan(["worker", "other_tree"], rounds)

    assert plan.count("worker") == plan.count("other_tree") == rounds
    pairs = [plan[n : n + 2] for n in range(0, len(plan), 2)]
    assert all(sorted(pair) == ["other_tree", "worker"] for pair in pairs)
    assert plan[-1] == "worker"  # its last run stays up for the latency run


def test_the_tree_that_runs_first_alternates_between_rounds() -> None:
    plan = round_plan(["worker", "other_tree"], 6)
    firsts = plan[::2]

    assert firsts == ["worker", "other_tree"] * 3


def test_without_another_tree_the_worker_runs_each_round() -> None:
    assert round_plan(["worker"], 3) == ["worker"] * 3


def test_a_folder_without_hookstream_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no hookstream/cli.py there; .*git archive <commit>"):
        other_tree(tmp_path)


def test_another_tree_runs_on_this_python_with_its_own_sources_first(tmp_path: Path) -> None:
    (tmp_path / "hookstream").mkdir()
    (tmp_path / "hookstream" / "cli.py").touch()

    command, env = other_tree(tmp_path)

    assert command == [sys.executable, "-P", "-m", "hookstream.cli"]
    assert env == {"PYTHONPATH": str(tmp_path.resolve())}
