"""The ingest benchmark's baseline: the same framework and ASGI server as the ingest, on the
same path, reading the body and answering 200 with no verification and no Kafka."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.post("/webhooks/intercom")
async def noop(request: Request) -> Response:
    await request.body()
    return Response(orjson.dumps({"status": "accepted"}), media_type="application/json")


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")
