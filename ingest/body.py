"""Read a request body once, and never more of it than the limit."""

from __future__ import annotations

from starlette.requests import Request

from ingest.errors import BodyTooLarge, RequestRefused


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, or `BodyTooLarge` as soon as it is known to exceed `limit` bytes
    (from Content-Length, or while streaming a body that has none)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestRefused("Content-Length must be a whole number")
        if int(declared) > limit:
            raise BodyTooLarge(f"the body is over the limit of {limit} bytes", limit=limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"the body is over the limit of {limit} bytes", limit=limit)
    return bytes(body)
