"""Many workspaces through one sink, at CI scale: bench.workspaces (50 workspaces against
the sandbox, one hot at ten times its budget, one revoked half-way) held to its targets."""

from __future__ import annotations

import pytest

from bench.workspaces import command_line, measure, verdict

pytestmark = pytest.mark.integration


async def test_fifty_workspaces_one_hot_and_one_revoked_meet_the_targets(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)  # the session's broker
    args = command_line().parse_args(["--seconds", "20", "--no-save"])
    figures = await measure(args)
    met = verdict(figures)
    assert all(met.values()), ({name: ok for name, ok in met.items() if not ok}, figures)
    assert len(figures["calm"]) == 48
    assert figures["hot_shares"], "no window of the hot workspace was measured"
