"""Read a request body once, and never more of it than the limit."""

from __future__ import annotations

from collections.abc import AsyncIterable

from hookstream.ingest.errors import BodyTooLarge, RequestRefused


async def read_body(content_length: str | None, chunks: AsyncIterable[bytes], limit: int) -> bytes:
    """The raw body, or `BodyTooLarge` as soon as it is known to exceed `limit` bytes
    (from the Content-Length header's value, or while streaming a body that has none)."""
    if content_length is not None:
        if not content_length.isdigit():
            raise RequestRefused("Content-Length must be a whole number")
        if int(content_length) > limit:
            raise BodyTooLarge(f"the body is over the limit of {limit} bytes", limit=limit)
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"the body is over the limit of {limit} bytes", limit=limit)
    return bytes(body)
