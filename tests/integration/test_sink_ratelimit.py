"""The sink against the sandbox's rate limit, with 1-second windows to keep the tests short
(Intercom's are 10 s; `HOOKSTREAM_SINK_RATE_WINDOW_SECONDS` and the sandbox's
`window_seconds` shrink both sides alike)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookstream.sinks.app import Sink
from tests.sinks.support import (
    SandboxControl,
    create_sink_topics,
    event,
    eventually,
    produce,
    sandbox,
    sink_settings,
)
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration


async def accepted_at_least(control: SandboxControl, count: int) -> bool:
    return int((await control.stats())["accepted"]) >= count


async def current_window_admitted_between(control: SandboxControl, least: int, most: int) -> bool:
    windows = (await control.stats())["windows"]
    return bool(windows) and least <= int(windows[-1]["admitted"]) <= most


async def test_the_headers_keep_the_sink_under_a_small_window_budget_without_a_429(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    count = 150
    async with sandbox(tmp_path, window_limit=25, window_seconds=1) as control:
        settings = sink_settings(
            kafka_bootstrap,
            tmp_path,
            control.base_url,
            hookstream_sink_rate_limit_per_minute=25
            * 60,  # the same budget: 25 per 1-second window
            hookstream_sink_rate_window_seconds=1.0,
        )
        await create_sink_topics(settings)
        await produce(
            kafka_bootstrap,
            settings.topics.data_events,
            [(f"u{n % 40}".encode(), event(f"u{n % 40}", n)) for n in range(count)],
        )
        async with Sink(settings).running():
            await eventually(
                lambda: accepted_at_least(control, count), within=60, what=f"{count} events"
            )
        stats = await control.stats()

    assert stats["rate_limited"] == 0
    assert stats["by_status"] == {"202": count}
    windows = [w for w in stats["windows"] if w["admitted"]]
    assert all(w["admitted"] <= 25 for w in windows)
    full = windows[1:-1]  # the first and last windows are partly idle
    assert full
    assert all(w["admitted"] >= 20 for w in full), windows  # and the budget is used


async def test_a_limit_lower_than_configured_draws_429s_the_sink_recovers_from_without_loss(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    count, limit, lowered = 100, 20, 8
    async with sandbox(tmp_path, window_limit=limit, window_seconds=1) as control:
        settings = sink_settings(
            kafka_bootstrap,
            tmp_path,
            control.base_url,
            hookstream_sink_rate_limit_per_minute=limit * 60,
            hookstream_sink_rate_window_seconds=1.0,
        )
        await create_sink_topics(settings)
        await produce(
            kafka_bootstrap,
            settings.topics.data_events,
            [(f"u{n % 40}".encode(), event(f"u{n % 40}", n)) for n in range(count)],
        )
        sink = Sink(settings)
        async with sink.running():
            await eventually(lambda: accepted_at_least(control, 30), within=30, what="a start")
            # Another app of the workspace takes most of the budget: the limit drops below
            # what the sink was told, in the middle of a window that has already admitted
            # more than the new limit, with time left in it for the sink's next call (the
            # sink paces 20 calls over the window: 9 to 15 admitted is 0.4-0.7 s in). Had
            # the limit dropped before the window admitted that many, the headers alone
            # would keep the sink under it, without a 429.
            await eventually(
                lambda: current_window_admitted_between(control, lowered + 1, 15),
                within=30,
                what="a window past the new limit",
                every=0.02,
            )
            await control.configure(window_limit=lowered)
            await eventually(
                lambda: accepted_at_least(control, count), within=90, what=f"{count} events"
            )
            rate_limited = sink.metrics.registry.get_sample_value(
                "hookstream_sink_rate_limited_total"
            )
        stats = await control.stats()
        entries = await control.accepted()

    assert stats["rate_limited"] >= 1  # the drop did cost 429s ...
    assert rate_limited == stats["rate_limited"]
    assert stats["rate_limited"] <= 2 * settings.sink.concurrency  # ... but no retry storm
    assert stats["accepted"] == count  # ... and nothing was lost
    assert stats["duplicates"] == 0
    assert sorted(e["event"]["created_at"] for e in entries) == [
        1_700_000_000 + n for n in range(count)
    ]
    later = [w for w in stats["windows"] if w["limit"] == lowered and w["admitted"]][1:]
    assert later
    assert all(w["rejected"] == 0 for w in later)  # once told, the headers hold it under
    assert await read_topic(kafka_bootstrap, settings.topics.data_events_dlq) == []
