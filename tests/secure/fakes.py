"""Fake brokers for start-up failure tests: servers that speak TLS (or not) and then hang up,
as a Kafka listener of another protocol does."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from hookstream.devtools.localkafka import free_port


@asynccontextmanager
async def fake_server(context: ssl.SSLContext | None) -> AsyncIterator[int]:
    """A server that completes TLS (when given a context) and hangs up on the first bytes."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(OSError, ssl.SSLError):
            await reader.read(1)
        writer.close()

    port = free_port()
    server = await asyncio.start_server(hang_up, "127.0.0.1", port, ssl=context)
    try:
        yield port
    finally:
        server.close()


def tls_server_context(directory: Path, name: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / f"{name}.pem", directory / f"{name}.key")
    return context
