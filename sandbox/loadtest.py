"""How many calls a running sandbox answers per second: `python -m hookstream.sandbox.loadtest`.

So that a sink benchmark can show the sandbox is not its bottleneck. The client is a minimal
keep-alive HTTP/1.1 writer/reader on raw asyncio streams (an httpx client would cost more CPU
than the server it measures). It POSTs distinct valid events to /events, then, as a baseline
on the same server, GETs /healthz (routing and an answer, no checks) the same number of times.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson

from hookstream.sandbox.config import DEFAULT_ACCESS_TOKEN


@dataclass
class _Run:
    total: int
    issued: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)


def _event_request(index: int, token: str) -> bytes:
    body = orjson.dumps(
        {
            "event_name": "placed-order",
            "created_at": 1_700_000_000 + index,
            "user_id": f"user-{index % 1000}",
            "metadata": {"order_id": index, "source": "loadtest"},
        }
    )
    head = (
        f"POST /events HTTP/1.1\r\nHost: sandbox\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\nContent-Type: application/json\r\n"
        f"Intercom-Version: 2.14\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


_HEALTH_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: sandbox\r\n\r\n"


async def _connection(host: str, port: int, run: _Run, token: str, baseline: bool) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while run.issued < run.total:
            index = run.issued
            run.issued += 1
            started = time.perf_counter()
            writer.write(_HEALTH_REQUEST if baseline else _event_request(index, token))
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            status = head[9:12].decode()
            run.statuses[status] = run.statuses.get(status, 0) + 1
            run.latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


async def measure(
    url: str, calls: int, connections: int, token: str, *, baseline: bool = False
) -> dict[str, object]:
    """Send `calls` requests over `connections` keep-alive connections; the figures."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    run = _Run(total=calls)
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(host, port, run, token, baseline) for _ in range(connections))
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(run.latencies)
    return {
        "path": "GET /healthz" if baseline else "POST /events",
        "calls": len(ordered),
        "per_second": round(len(ordered) / elapsed),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
        "p99_ms": round(ordered[min(int(len(ordered) * 0.99), len(ordered) - 1)] * 1000, 2),
        "by_status": run.statuses,
    }


def main() -> None:
    """Command line: measure /events, then the /healthz baseline; print both as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default="http://127.0.0.1:8090")
    parser.add_argument("-n", "--calls", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--token", default=DEFAULT_ACCESS_TOKEN)
    args = parser.parse_args()
    for baseline in (False, True):
        figures = asyncio.run(
            measure(args.url, args.calls, args.connections, args.token, baseline=baseline)
        )
        print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
