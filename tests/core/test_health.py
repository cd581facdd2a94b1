"""The health endpoints every Faust service serves (`hookstream.core.health`), through the
ASGI app with a source whose answers the test sets."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from hookstream.core.health import create_health_app


@dataclass
class Source:
    problem: str | None = None
    reason: str | None = None

    def liveness_problem(self) -> str | None:
        return self.problem

    def not_ready_reason(self) -> str | None:
        return self.reason

    async def exposition(self) -> bytes:
        return b"# HELP up 1\nup 1.0\n"


async def _get(source: Source, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_health_app(source))
    async with httpx.AsyncClient(transport=transport, base_url="http://health") as client:
        return await client.get(path)


async def test_a_live_ready_service_answers_200_on_both() -> None:
    source = Source()
    assert (await _get(source, "/healthz")).json() == {"status": "ok"}
    ready = await _get(source, "/readyz")
    assert (ready.status_code, ready.json()) == (200, {"ready": True, "reason": None})


@pytest.mark.parametrize("problem", ["crashed", "stopping"])
async def test_liveness_fails_with_the_problem(problem: str) -> None:
    response = await _get(Source(problem=problem), "/healthz")
    assert (response.status_code, response.json()) == (503, {"status": problem})


async def test_not_ready_says_why_and_stays_alive() -> None:
    source = Source(reason="recovering tables")
    ready = await _get(source, "/readyz")
    assert (ready.status_code, ready.json()) == (
        503,
        {"ready": False, "reason": "recovering tables"},
    )
    assert (await _get(source, "/healthz")).status_code == 200


async def test_metrics_are_the_sources_exposition() -> None:
    response = await _get(Source(), "/metrics")
    assert response.status_code == 200
    assert response.text == "# HELP up 1\nup 1.0\n"
    assert response.headers["content-type"].startswith("text/plain")


@dataclass
class SourceWithDetail(Source):
    detail: dict[str, object] | None = None

    def ready_detail(self) -> dict[str, object] | None:
        return self.detail


async def test_a_ready_service_may_add_a_detail_such_as_the_sinks_parked_workspaces() -> None:
    parked = {"parked_workspaces": ["ws1"], "parked": 1}
    ready = await _get(SourceWithDetail(detail=parked), "/readyz")
    assert (ready.status_code, ready.json()) == (
        200,
        {"ready": True, "reason": None, "detail": parked},
    )
    assert "detail" not in (await _get(SourceWithDetail(), "/readyz")).json()
