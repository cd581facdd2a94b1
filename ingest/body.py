"""Read a request body once, never more of it than the limit, and never for longer than the
deadline (a client that sends slowly holds a request slot only that long)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable

from hookstream.ingest.errors import BodyTimeout, BodyTooLarge, RequestRefused


async def read_body(
    content_length: str | None, chunks: AsyncIterable[bytes], limit: int, deadline: float
) -> bytes:
    """The raw body, or `BodyTooLarge` as soon as it is known to exceed `limit` bytes
    (from the Content-Length header's value, or while streaming a body that has none), or
    `BodyTimeout` when it has not all arrived within `deadline` seconds."""
    if content_length is not None:
        if not content_length.isdigit():
            raise RequestRefused("Content-Length must be a whole number")
        if int(content_length) > limit:
            raise BodyTooLarge(f"the body is over the limit of {limit} bytes", limit=limit)
    body = bytearray()
    try:
        async with asyncio.timeout(deadline):
            async for chunk in chunks:
                body += chunk
                if len(body) > limit:
                    raise BodyTooLarge(f"the body is over the limit of {limit} bytes", limit=limit)
    except TimeoutError:
        raise BodyTimeout(
            f"the body did not arrive within {deadline:g} s", deadline_seconds=deadline
        ) from None
    return bytes(body)
