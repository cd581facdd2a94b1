"""The worker's HTTP endpoints on its web port: `/metrics`, `/healthz`, `/readyz`.

- `/healthz` answers 200 while the worker runs and has not crashed (liveness).
- `/readyz` answers 200 once the tables are recovered and while no rebalance is under way
  (readiness); 503 otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from hookstream.streams.app import WorkerApp


def add_routes(app: WorkerApp) -> None:
    """Register the endpoints on the app's web server."""

    async def metrics(view: Any, _request: Any) -> Any:
        return view.bytes(app.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(view: Any, _request: Any) -> Any:
        alive = not app.crashed and not app.should_stop
        return view.json({"status": "ok" if alive else "stopping"}, status=200 if alive else 503)

    async def readyz(view: Any, _request: Any) -> Any:
        ready = app.is_ready()
        return view.json({"ready": ready}, status=200 if ready else 503)

    app.page("/metrics", name="hookstream-metrics")(metrics)
    app.page("/healthz", name="hookstream-healthz")(healthz)
    app.page("/readyz", name="hookstream-readyz")(readyz)
