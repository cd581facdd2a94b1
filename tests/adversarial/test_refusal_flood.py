"""A flood of refused requests cannot flood the logs: each reason gets at most one info line
per interval, carrying how many were refused since the last one, and the counter counts every
refusal exactly."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from pathlib import Path

from structlog.testing import capture_logs

from tests.support.ingest import (
    IngestClient,
    ingest_client,
    ingest_settings,
    intercom_signature,
    notification,
)

NO_KAFKA = "127.0.0.1:9"  # refuses connections: nothing here needs Kafka
URL = "/webhooks/intercom"
INTERVAL = 1.0
FLOOD = {"signature_invalid": 400, "signature_missing": 300, "body_too_large": 300}


def _refused(metrics: str) -> Counter[str]:
    pattern = (
        r'hookstream_ingest_requests_total\{endpoint="/webhooks/intercom",outcome="(\w+)"\} (\S+)'
    )
    return Counter({code: int(float(n)) for code, n in re.findall(pattern, metrics)})


async def _refuse(client: IngestClient, code: str) -> None:
    body = notification()
    headers = {"Content-Type": "application/json"}
    if code == "signature_invalid":
        headers["X-Hub-Signature"] = intercom_signature(body, "not-the-client-secret")
    elif code == "body_too_large":
        body = notification(padding="x" * 5000)
        headers["X-Hub-Signature"] = intercom_signature(body)
    response = await client.post(URL, content=body, headers=headers)
    assert response.json()["error"]["code"] == code


async def test_a_flood_of_refusals_logs_a_bounded_number_of_info_lines_and_counts_exactly(
    tmp_path: Path,
) -> None:
    settings = ingest_settings(
        NO_KAFKA,
        tmp_path,
        hookstream_max_body_bytes=4096,
        hookstream_refused_log_interval_seconds=INTERVAL,
    )
    codes = [code for code, n in FLOOD.items() for _ in range(n)]
    async with ingest_client(settings) as client:
        before = _refused((await client.admin.get("/metrics")).text)
        with capture_logs() as logs:
            started = time.monotonic()
            for batch in range(0, len(codes), 50):
                await asyncio.gather(*(_refuse(client, c) for c in codes[batch : batch + 50]))
            elapsed = time.monotonic() - started
            await asyncio.sleep(INTERVAL)  # then one more of each: its line sums up the rest
            await asyncio.gather(*(_refuse(client, code) for code in FLOOD))
        after = _refused((await client.admin.get("/metrics")).text)

    assert after - before == Counter({code: n + 1 for code, n in FLOOD.items()})
    lines = [entry for entry in logs if entry["event"] == "requests_refused"]
    assert {entry["log_level"] for entry in lines} == {"info"}
    for code, n in FLOOD.items():
        of_code = [entry for entry in lines if entry["code"] == code]
        # the first at once, then at most one per interval, and the one after the pause
        assert 2 <= len(of_code) <= 2 + elapsed / INTERVAL + 1, (code, elapsed, of_code)
        assert sum(entry["count"] for entry in of_code) == n + 1, of_code
        assert of_code[0]["count"] == 1
    debug = [entry for entry in logs if entry["event"] == "request_refused"]
    assert all(entry["log_level"] == "debug" for entry in debug)
    # one each, unless a test before this one (in this process) configured logging at info
    assert len(debug) in (0, sum(FLOOD.values()) + len(FLOOD))
    assert "not-the-client-secret" not in str(logs)
