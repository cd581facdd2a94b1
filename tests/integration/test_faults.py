"""The fault-injection suite at CI scale: kills, a broker outage and a misbehaving Intercom,
with nothing accepted lost or doubled (bench.faults proves it; this test holds it to that)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faults import SCALES, run_suite

pytestmark = pytest.mark.integration


async def test_nothing_accepted_is_lost_or_doubled_under_faults(tmp_path: Path) -> None:
    verdict = await run_suite(SCALES["ci"], tmp_path)
    assert verdict.failures == [], verdict
    # the run was real: traffic flowed through every fault, and every kind of bad input came
    assert verdict.webhooks_accepted > 200
    assert verdict.webhooks_routed_once == verdict.webhooks_accepted
    assert verdict.events_accepted > 50
    assert verdict.events_delivered == verdict.events_accepted
    assert verdict.invalid_on_kafka > 5
    assert set(verdict.bad_webhooks_refused) == {
        "bad_signature",
        "not_json",
        "not_a_notification",
        "oversized",
    }
    assert len(verdict.faults) >= 12
    assert verdict.statuses.get("webhook 503", 0) + verdict.statuses["webhook 200"] > 0
