"""Many workspaces through one sink, at CI scale: bench.workspaces (50 workspaces against
the sandbox, one hot at ten times its budget, one revoked half-way) held to its targets.

What must hold exactly holds exactly here: every calm workspace's events delivered, no 429,
the revoked workspace's events neither lost nor retried in a loop, /readyz naming it. The
two timing targets get a margin, since a CI machine is shared and a timed assertion must not
measure the neighbours (`python -m bench.workspaces` holds the issue's own: p99 < 2 s, 97%):
the calm workspaces' p99 over steady under 10 s still fails when they wait behind the hot
workspace's backlog (which grows by nine tenths of a second each second of the run), and the
hot workspace must use at least 80% of each window, as tests/integration/test_sink_ratelimit.py
asks of the single-workspace sink."""

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
    met = verdict(figures, p99_target=10.0, budget_target=0.8)
    assert all(met.values()), ({name: ok for name, ok in met.items() if not ok}, figures)
    assert len(figures["calm"]) == 48
    assert figures["hot_shares"], "no window of the hot workspace was measured"
