"""The health and metrics endpoints of the Faust services (the worker and the sink): one
Starlette app, served on the service's own loop from the moment it starts.

- `/healthz` (liveness): 200 `{"status": "ok"}` while the process is worth keeping; 503 with
  the problem (crashed, stopping) when a restart would help.
- `/readyz` (readiness): 200 `{"ready": true, "reason": null}` while the service does its
  work; 503 with the reason otherwise (starting, recovering tables, rebalancing, ...). A
  source with a `ready_detail()` adds its answer as `detail` when not None (the sink: its
  parked workspaces).
- `/metrics`: Prometheus text format.

`health_service` wraps the app in faust's `AsgiService` (uvicorn on the running loop, with
uvicorn's own signal handling off so Faust keeps SIGTERM). A service starts it in its own
`on_start`, before table recovery, so liveness and metrics answer during a long recovery:
Faust's `serve_asgi` would start it only after recovery. Faust's own aiohttp web pages
(`/table`, `/router`, ...) stay off (`web_enabled=False`).
"""

from __future__ import annotations

from typing import Protocol

import orjson
from faust.contrib.asgi import AsgiService
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


class HealthSource(Protocol):
    """What the endpoints ask the service."""

    def liveness_problem(self) -> str | None:
        """Why the process should be restarted or is going away, or None while it is alive."""

    def not_ready_reason(self) -> str | None:
        """Why the service does not do its work now, or None while it does."""

    async def exposition(self) -> bytes:
        """The metrics, refreshed."""


def _json(content: object, status_code: int) -> Response:
    return Response(orjson.dumps(content), status_code, media_type="application/json")


def create_health_app(source: HealthSource) -> Starlette:
    """The endpoints of `source`."""

    async def healthz(_request: Request) -> Response:
        problem = source.liveness_problem()
        return _json({"status": problem or "ok"}, 200 if problem is None else 503)

    async def readyz(_request: Request) -> Response:
        reason = source.not_ready_reason()
        body: dict[str, object] = {"ready": reason is None, "reason": reason}
        detail = getattr(source, "ready_detail", None)  # optional: what a ready service lacks
        if detail is not None and (extra := detail()) is not None:
            body["detail"] = extra
        return _json(body, 200 if reason is None else 503)

    async def metrics(_request: Request) -> Response:
        return Response(await source.exposition(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )


def health_service(source: HealthSource, *, host: str, port: int) -> AsgiService:
    """A mode service serving `source`'s endpoints on `host:port` on the running loop; start
    it with the owning service's `add_runtime_dependency`, which also stops it."""
    return AsgiService(
        create_health_app(source),
        host=host,
        port=port,
        uvicorn_options={"lifespan": "off", "access_log": False},
    )
