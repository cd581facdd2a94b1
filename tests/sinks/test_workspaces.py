"""Many workspaces through one pipeline: the tokens file and its watcher, routing a record by
its `intercom-app-id` header, budgets that do not block each other, parking a refused
workspace, and the bounded `workspace` label. Against `httpx.MockTransport`, no broker."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from hookstream.core.contract import HEADER_APP_ID
from hookstream.core.settings import SinkSettings
from hookstream.sinks._scheduler import Workspaces
from hookstream.sinks._workspace_metrics import WorkspaceCounters
from hookstream.sinks.client import IntercomClient
from hookstream.sinks.deadletter import DeadLetter, SourceRecord
from hookstream.sinks.dedup import RecentlySent
from hookstream.sinks.metrics import SinkMetrics
from hookstream.sinks.pipeline import Pipeline, RetryPolicy
from hookstream.sinks.ratelimit import RateBudget
from hookstream.sinks.workspaces import (
    TokenFile,
    TokenWatcher,
    Workspace,
    WorkspaceTokensInvalid,
    parse_tokens,
)
from tests.sinks import test_pipeline as pipeline_tests

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]
SECRET = "tok-very-secret-value-123"  # a test token, looked for in logs


def tokens_yaml(**workspaces: str | tuple[str, str]) -> str:
    lines = ["workspaces:"]
    for workspace_id, entry in workspaces.items():
        token, region = entry if isinstance(entry, tuple) else (entry, "us")
        lines += [f"  {workspace_id}:", f"    token: {token}", f"    region: {region}"]
    return "\n".join(lines) + "\n"


# -- the tokens file ----------------------------------------------------------------------


def test_the_tokens_file_maps_workspaces_to_token_and_regional_host() -> None:
    text = tokens_yaml(ws1="t1", ws2=("t2", "eu"), ws3=("t3", "au"))
    workspaces = parse_tokens(text, source="tokens.yaml")
    assert {w: (v.token.get_secret_value(), v.base_url) for w, v in workspaces.items()} == {
        "ws1": ("t1", "https://api.intercom.io"),
        "ws2": ("t2", "https://api.eu.intercom.io"),
        "ws3": ("t3", "https://api.au.intercom.io"),
    }
    as_json = orjson.dumps({"workspaces": {"ws1": {"token": "t1"}}}).decode()
    assert parse_tokens(as_json, source="x", base_url="http://sandbox:1/")["ws1"].base_url == (
        "http://sandbox:1"
    )


@pytest.mark.parametrize(
    "text",
    [
        f"workspaces:\n  ws1:\n    token: {SECRET}\n    region: mars\n",
        f"workspaces:\n  ws1: {{token: {SECRET}, colour: red}}\n",
        f"workspaces: [\n  {SECRET}\n",
        f"- {SECRET}\n",
    ],
)
def test_a_malformed_tokens_file_is_refused_naming_the_file_and_never_the_token(
    text: str,
) -> None:
    with pytest.raises(WorkspaceTokensInvalid) as refused:
        parse_tokens(text, source="/etc/hookstream/tokens.yaml")
    assert "/etc/hookstream/tokens.yaml" in str(refused.value)
    assert SECRET not in str(refused.value)


def test_the_watcher_follows_a_kubernetes_symlink_swap_and_keeps_the_last_good_mapping(
    tmp_path: Path,
) -> None:
    # A projected Secret: tokens.yaml -> ..data/tokens.yaml, ..data -> a timestamped dir.
    def publish(name: str, text: str) -> None:
        directory = tmp_path / name
        directory.mkdir()
        (directory / "tokens.yaml").write_text(text)
        (tmp_path / "..data_tmp").symlink_to(name)
        (tmp_path / "..data_tmp").replace(tmp_path / "..data")

    publish("v1", tokens_yaml(ws1="t1"))
    (tmp_path / "tokens.yaml").symlink_to("..data/tokens.yaml")
    file = TokenFile(tmp_path / "tokens.yaml")
    seen: list[Mapping[str, Workspace]] = []
    watcher = TokenWatcher(file, seen.append, every=1)
    seen.append(file.load())
    assert not watcher.check()  # unchanged
    publish("v2", tokens_yaml(ws1="t1-rotated", ws2="t2"))
    assert watcher.check()
    assert sorted(seen[-1]) == ["ws1", "ws2"]
    assert seen[-1]["ws1"].token.get_secret_value() == "t1-rotated"
    publish("v3", f"workspaces:\n  ws1: {{token: {SECRET}, region: xx}}\n")
    with capture_logs() as logs:
        assert not watcher.check()
    (error,) = [entry for entry in logs if entry["event"] == "workspace_tokens_invalid"]
    assert error["log_level"] == "error"
    assert error["file"] == str(tmp_path / "tokens.yaml")
    assert SECRET not in repr(logs)
    assert len(seen) == 2  # the last good mapping stays
    (tmp_path / "tokens.yaml").unlink()
    with capture_logs() as logs:
        assert not watcher.check()
        assert not watcher.check()  # logged once, not on every poll
    assert [entry["event"] for entry in logs] == ["workspace_tokens_invalid"]
    (tmp_path / "tokens.yaml").symlink_to("..data/tokens.yaml")
    publish("v4", tokens_yaml(ws3="t3"))
    assert watcher.check()
    assert sorted(seen[-1]) == ["ws3"]


# -- the pipeline with workspaces ---------------------------------------------------------


@dataclass
class Harness(pipeline_tests.Harness):
    """The pipeline tests' harness; `sent` holds (token, host, body) here."""

    sent: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # type: ignore[assignment] - another shape

    def record(
        self, offset: int, user: str, workspace: str | None, partition: int = 0
    ) -> SourceRecord:
        body = {"event_name": "did", "created_at": 1_700_000_000 + offset, "user_id": user}
        headers = [] if workspace is None else [(HEADER_APP_ID, workspace.encode())]

        async def ack() -> None:
            self.acked.append((partition, offset))

        return SourceRecord("t", partition, offset, b"k", orjson.dumps(body), headers, ack)

    def accepted_of(self, token: str) -> list[str]:
        return [body["user_id"] for t, _host, body in self.sent if t == token]


def named(**tokens: str) -> dict[str, Workspace]:
    return parse_tokens(tokens_yaml(**tokens), source="test", base_url="https://i.test")


@asynccontextmanager
async def harness(
    handler: Handler,
    workspaces: dict[str, Workspace] | None,
    *,
    default: bool = True,
    budget: Callable[[], RateBudget] = lambda: RateBudget(calls_per_window=100_000),
    max_pending: int = 20,
    max_queued: int = 1000,
    concurrency: int = 8,
) -> AsyncIterator[Harness]:
    metrics = SinkMetrics(workspace_labels=3)
    dead: list[tuple[SourceRecord, DeadLetter]] = []
    sent: list[tuple[str, str, dict[str, Any]]] = []

    async def recording(request: httpx.Request) -> httpx.Response:
        response = await handler(request)
        if response.status_code == 202:
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            sent.append((token, request.url.host, orjson.loads(request.content)))
        return response

    settings = SinkSettings(
        intercom_access_token="default-token" if default else None,
        intercom_api_base_url="https://i.test",
        hookstream_sink_workspace_tokens_file="/unused",
    )
    async with IntercomClient(settings, transport=httpx.MockTransport(recording)) as client:
        default_budget = budget()
        pipeline = Pipeline(
            sender=client,
            budget=default_budget,
            dead_letters=pipeline_tests.ListDeadLetters(dead),
            metrics=metrics,
            dedup=RecentlySent(0, 1),
            concurrency=concurrency,
            retry=RetryPolicy(deadline=5, initial=0.01, maximum=0.05),
            max_pending=max_pending,
            max_queued=max_queued,
            max_held=10_000,
            workspaces=Workspaces(
                default=default,
                named=workspaces,
                default_budget=default_budget,
                new_budget=budget,
                concurrency=concurrency,
            ),
        )
        h = Harness(pipeline, metrics, dead=dead, sent=sent)
        try:
            yield h
        finally:
            await pipeline.close()


async def until(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


async def accept(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(202)


async def test_a_record_is_sent_with_its_workspaces_token_and_without_a_header_as_the_default() -> (
    None
):
    async with harness(accept, named(ws1="token-1", ws2="token-2")) as h:
        await h.pipeline.submit(
            [h.record(0, "a", "ws1"), h.record(1, "b", "ws2"), h.record(2, "c", None)]
        )
        await until(lambda: len(h.acked) == 3)
    assert h.accepted_of("token-1") == ["a"]
    assert h.accepted_of("token-2") == ["b"]
    assert h.accepted_of("default-token") == ["c"]
    assert h.dead == []


async def test_without_a_tokens_file_every_record_goes_to_the_one_workspace() -> None:
    async with harness(accept, None) as h:
        await h.pipeline.submit([h.record(0, "a", "ws1"), h.record(1, "b", None)])
        await until(lambda: len(h.acked) == 2)
    assert h.accepted_of("default-token") == ["a", "b"]
    assert h.dead == []


async def test_a_workspace_without_a_token_is_dead_lettered_and_the_others_flow() -> None:
    async with harness(accept, named(ws1="token-1"), default=False) as h:
        await h.pipeline.submit(
            [h.record(0, "a", "nope"), h.record(1, "b", "ws1"), h.record(2, "c", None)]
        )
        await until(lambda: len(h.acked) == 3)
    assert h.accepted_of("token-1") == ["b"]
    assert [(r.offset, letter.reason) for r, letter in h.dead] == [
        (0, "no_token_for_workspace"),
        (2, "no_token_for_workspace"),
    ]
    assert "nope" in h.dead[0][1].detail


async def test_a_workspace_over_its_budget_waits_alone_and_intake_goes_on() -> None:
    budgets = iter(
        [
            RateBudget(calls_per_window=100_000),  # the default workspace's
            RateBudget(calls_per_window=2, window_seconds=60),  # hot: one call, then ~28 s
            RateBudget(calls_per_window=100_000),  # calm
        ]
    )
    async with harness(
        accept, named(hot="token-hot", calm="token-calm"), budget=lambda: next(budgets)
    ) as h:
        hot = [h.record(n, f"h{n}", "hot") for n in range(40)]  # over max_pending: queued
        await asyncio.wait_for(h.pipeline.submit(hot), 1)  # not blocking the intake
        calm = [h.record(40 + n, f"c{n}", "calm") for n in range(30)]
        await asyncio.wait_for(h.pipeline.submit(calm), 1)
        await until(lambda: len(h.accepted_of("token-calm")) == 30, within=2)
        assert h.accepted_of("token-hot") == ["h0"]
        assert h.acked == [(0, 0)]  # in offset order: the hot one's second holds the rest


async def test_workspaces_with_a_backlog_take_turns_at_the_connection_slots() -> None:
    async def slow(_request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)
        return httpx.Response(202)

    async with harness(slow, named(a="token-a", b="token-b"), concurrency=1) as h:
        records = [h.record(n, f"a{n}", "a") for n in range(10)]
        records += [h.record(10 + n, f"b{n}", "b") for n in range(10)]
        await h.pipeline.submit(records)  # a's whole backlog first, then b's
        await until(lambda: len(h.acked) == 20)
    order = [token for token, _host, _body in h.sent]
    assert order[:6] == ["token-a", "token-b"] * 3  # b did not wait for a's backlog


async def test_a_full_queue_of_one_workspace_pauses_intake() -> None:
    def budget() -> RateBudget:
        return RateBudget(calls_per_window=1, window_seconds=60)

    async with harness(accept, named(hot="t"), budget=budget, max_pending=2, max_queued=5) as h:
        await asyncio.wait_for(h.pipeline.submit([h.record(n, "u", "hot") for n in range(7)]), 1)
        more = [h.record(n, "u", "hot") for n in range(7, 10)]  # 2 in flight, 6 queued
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(h.pipeline.submit(more), 0.3)


def refusing(refused_token: str) -> Handler:
    calls: Counter[str] = Counter()

    async def handler(request: httpx.Request) -> httpx.Response:
        token = request.headers["authorization"].removeprefix("Bearer ")
        calls[token] += 1
        if token == refused_token:
            body = {"type": "error.list", "errors": [{"code": "unauthorized"}]}
            return httpx.Response(401, content=orjson.dumps(body))
        return httpx.Response(202)

    handler.calls = calls  # type: ignore[attr-defined] - read by the test
    return handler


async def test_a_refused_workspace_is_parked_alone_and_resumes_when_its_token_changes() -> None:
    handler = refusing("bad")
    async with harness(handler, named(ws1="bad", ws2="good"), default=False) as h:
        with capture_logs() as logs:
            await h.pipeline.submit([h.record(n, f"u{n}", "ws1") for n in range(5)])
            await until(lambda: h.pipeline.parked() == ["ws1"])
            await h.pipeline.submit([h.record(5 + n, f"v{n}", "ws2") for n in range(5)])
            await until(lambda: len(h.accepted_of("good")) == 5)
            await asyncio.sleep(0.2)
        assert handler.calls["bad"] == 1  # type: ignore[attr-defined] - no retry loop
        assert h.dead == []
        assert h.acked == []  # ws1's records hold the partition: none lost, none skipped
        assert h.pipeline.not_ready_reason is None
        assert "bad" not in repr(logs)  # the token is never logged
        (denied,) = [e for e in logs if e["event"] == "intercom_access_denied"]
        assert denied["workspace"] == "ws1"
        assert h.metrics.registry.get_sample_value("hookstream_sink_workspaces_parked") == 1

        h.pipeline.update_workspaces(named(ws1="bad", ws2="good"))  # same token: still parked
        await asyncio.sleep(0.1)
        assert h.pipeline.parked() == ["ws1"]
        h.pipeline.update_workspaces(named(ws1="new", ws2="good"))
        await until(lambda: len(h.acked) == 10)
        assert sorted(h.accepted_of("new")) == [f"u{n}" for n in range(5)]
        assert h.pipeline.parked() == []
        assert h.metrics.registry.get_sample_value("hookstream_sink_workspaces_parked") == 0


async def test_the_pipeline_stops_only_when_every_workspace_is_refused() -> None:
    async with harness(refusing("bad"), named(ws1="bad", ws2="bad"), default=False) as h:
        await h.pipeline.submit([h.record(0, "a", "ws1")])
        await until(lambda: h.pipeline.parked() == ["ws1"])
        assert h.pipeline.not_ready_reason is None
        await h.pipeline.submit([h.record(1, "b", "ws2")])
        await until(lambda: h.pipeline.not_ready_reason is not None)
        assert "every workspace" in str(h.pipeline.not_ready_reason)
        assert h.metrics.registry.get_sample_value("hookstream_sink_ready") == 0
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(h.pipeline.submit([h.record(2, "c", "ws2")]), 0.2)


async def test_a_parked_workspace_removed_from_the_file_is_dead_lettered() -> None:
    async with harness(refusing("bad"), named(ws1="bad", ws2="good"), default=False) as h:
        await h.pipeline.submit([h.record(0, "a", "ws1"), h.record(1, "b", "ws2")])
        await until(lambda: h.pipeline.parked() == ["ws1"])
        h.pipeline.update_workspaces(named(ws2="good"))
        await until(lambda: len(h.acked) == 2)
    assert [(r.offset, letter.reason) for r, letter in h.dead] == [(0, "no_token_for_workspace")]


# -- the bounded workspace label ----------------------------------------------------------


def series(counters: WorkspaceCounters) -> dict[tuple[str, str], float]:
    registry = CollectorRegistry()
    registry.register(counters)
    families = text_string_to_metric_families(generate_latest(registry).decode())
    return {
        (s.labels["workspace"], s.labels["outcome"]): s.value
        for family in families
        for s in family.samples
        if s.name.endswith("_total")
    }


def test_ten_thousand_workspaces_make_at_most_top_n_labels_plus_other() -> None:
    counters = WorkspaceCounters(top=5)
    for n in range(10_000):
        counters.count(f"ws{n}", "accepted", amount=1 + (n % 7 == 0) * 1000 * (n < 40))
    first = series(counters)
    names = {workspace for workspace, _outcome in first}
    assert len(names) == 6
    assert "other" in names
    assert names - {"other"} <= {f"ws{n}" for n in range(0, 40, 7)}  # the busiest
    assert sum(first.values()) == sum(1 + 1000 * (n % 7 == 0 and n < 40) for n in range(10_000))
    for n in range(10_000):  # later traffic: the labels stay, the counters only grow
        counters.count(f"ws{n}", "accepted", amount=5)
    second = series(counters)
    assert {w for w, _o in second} == names
    assert all(second[key] >= first[key] for key in first)


async def test_the_sink_metrics_carry_the_workspace_label() -> None:
    async with harness(accept, named(ws1="t1", ws2="t2")) as h:
        await h.pipeline.submit([h.record(0, "a", "ws1"), h.record(1, "b", "ws2")])
        await until(lambda: len(h.acked) == 2)
        value = h.metrics.registry.get_sample_value
        assert (
            value(
                "hookstream_sink_workspace_events_total",
                {"workspace": "ws1", "outcome": "accepted"},
            )
            == 1
        )
        # Each workspace has a budget of its own: the default's and the file's two.
        assert value("hookstream_sink_budget_calls_per_window") == 3 * 100_000


async def test_a_401_for_a_token_replaced_meanwhile_does_not_park_the_new_one() -> None:
    holder: list[Harness] = []

    async def rotate_then_refuse(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer old":
            holder[0].pipeline.update_workspaces(named(ws1="new"))  # rotated mid-call
            return httpx.Response(401, content=b'{"type": "error.list", "errors": []}')
        return httpx.Response(202)

    async with harness(rotate_then_refuse, named(ws1="old"), default=False) as h:
        holder.append(h)
        await h.pipeline.submit([h.record(0, "a", "ws1")])
        await until(lambda: len(h.acked) == 1)
        assert h.pipeline.parked() == []
    assert h.accepted_of("new") == ["a"]
