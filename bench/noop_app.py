"""The ingest benchmark's baselines: the same ASGI server as the ingest, on the same path,
reading the body and answering 200 with no verification and no Kafka.

`app` is a no-op route of a FastAPI app, as the ingest is one; `asgi_app` is the same no-op
as a bare ASGI app, as the ingest's webhook endpoint is one: uvicorn's own ceiling."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request, Response
from starlette.types import Receive, Scope, Send

ACCEPTED = orjson.dumps({"status": "accepted"})

app = FastAPI()


@app.post("/webhooks/intercom")
async def noop(request: Request) -> Response:
    await request.body()
    return Response(ACCEPTED, media_type="application/json")


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the body, answer 200 (any path: /healthz too). Serve with `--lifespan off`."""
    more_body = True
    while more_body:
        message = await receive()
        more_body = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(ACCEPTED)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": ACCEPTED})
