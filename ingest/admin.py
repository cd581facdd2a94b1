"""The ingest's admin port (HOOKSTREAM_INGEST_ADMIN_PORT): what Kubernetes, Prometheus and
an operator ask, kept off the webhook port that a public ingress exposes.

- `/readyz`: readiness, with the state of Kafka and the spool (`?allow_spool=true`: also
  ready while Kafka is away but the spool has room).
- `/healthz`: liveness with the reason when it fails (the webhook port's is bare).
- `/metrics`: Prometheus text format.
- `/openapi.json`, `/docs`: the webhook port's API, described.

The endpoints read the writer that the webhook app's lifespan puts in its `state`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi.openapi.docs import get_swagger_ui_html
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from hookstream.ingest.durable import DurableWriter


def _json(content: object, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code, media_type="application/json")


def create_admin_app(state: State, openapi: Callable[[], dict[str, Any]]) -> Starlette:
    """The admin endpoints over the webhook app's `state` (its `writer`) and its OpenAPI
    schema (`openapi`)."""

    def writer() -> DurableWriter:
        current: DurableWriter = state.writer
        return current

    async def readyz(request: Request) -> Response:
        allow_spool = request.query_params.get("allow_spool", "").lower() in {"true", "1", "yes"}
        current = writer()
        spool = current.spool
        has_room = not spool.is_full
        ready = current.kafka_up or (allow_spool and has_room)
        body: dict[str, object] = {
            "ready": ready,
            "kafka": "up" if current.kafka_up else "refused" if current.refused else "down",
            "spool_depth": spool.depth,
            "spool_has_room": has_room,
            "quarantined": spool.quarantined,
        }
        if current.refused is not None:
            body["kafka_refused"] = str(current.refused)
        return _json(body, 200 if ready else 503)

    async def healthz(_request: Request) -> Response:
        reason = writer().unhealthy
        if reason is not None:
            return _json({"status": "unhealthy", "reason": reason}, 503)
        return _json({"status": "ok"})

    async def prometheus_metrics(_request: Request) -> Response:
        writer().refresh_gauges()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def openapi_json(_request: Request) -> Response:
        return _json(openapi())

    async def docs(_request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="hookstream ingest")

    return Starlette(
        routes=[
            Route("/readyz", readyz, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", prometheus_metrics, methods=["GET"]),
            Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
        ]
    )
