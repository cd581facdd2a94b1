"""The sink's HTTP endpoints on `HOOKSTREAM_SINK_WEB_PORT`, a small Starlette app served by
the Faust worker on its own loop (`faust.contrib.asgi.serve_asgi`).

- `/healthz`: 200 while the process runs and has not crashed (liveness).
- `/readyz`: 200 while the sink consumes and sends; 503 with the reason otherwise
  (starting, shutting down, crashed, or Intercom refused the access token).
- `/metrics`: Prometheus text format.
"""

from __future__ import annotations

from typing import Protocol

import orjson
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


class Observable(Protocol):
    """What the endpoints ask the sink."""

    @property
    def crashed(self) -> bool:
        """The sink failed for good."""

    def not_ready_reason(self) -> str | None:
        """Why the sink does not send now, or None while it does."""

    async def exposition(self) -> bytes:
        """The metrics, refreshed."""


def _json(content: object, status_code: int) -> Response:
    return Response(orjson.dumps(content), status_code, media_type="application/json")


def create_web_app(sink: Observable) -> Starlette:
    """The endpoints of `sink`."""

    async def healthz(_request: Request) -> Response:
        alive = not sink.crashed
        return _json({"status": "ok" if alive else "crashed"}, 200 if alive else 503)

    async def readyz(_request: Request) -> Response:
        reason = sink.not_ready_reason()
        return _json({"ready": reason is None, "reason": reason}, 200 if reason is None else 503)

    async def metrics(_request: Request) -> Response:
        return Response(await sink.exposition(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )
