"""The sandbox served for real: over uvicorn in-process, and as `hookstream sandbox`."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from hookstream.devtools import localkafka
from hookstream.sandbox import SandboxConfig, create_app
from hookstream.sandbox.cli import sandbox_command
from hookstream.sandbox.server import serving

HEADERS = {
    "Authorization": "Bearer local-token",
    "Accept": "application/json",
    "Intercom-Version": "2.14",
}


def _event(created_at: int) -> dict[str, object]:
    return {"event_name": "signed-up", "created_at": created_at, "user_id": "u-1"}


async def test_a_hanging_call_makes_a_real_client_time_out() -> None:
    config = SandboxConfig(access_token="local-token", timeout_rate=1.0, hang_seconds=2.0)
    with serving(create_app(config)) as base_url:
        async with httpx.AsyncClient(base_url=base_url, headers=HEADERS) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post("/events", json=_event(1), timeout=0.2)
            await client.post("/sandbox/config", json={"timeout_rate": 0.0})
            recovered = await client.post("/events", json=_event(2))
            stats = (await client.get("/sandbox/stats")).json()

    assert recovered.status_code == 202
    assert stats["injected_timeouts"] == 1
    assert [entry["admitted"] for entry in stats["windows"]] in ([2], [1, 1])


def test_the_command_serves_the_api_with_the_given_limit_and_token(tmp_path: Path) -> None:
    port = localkafka.free_port()
    executable = shutil.which("hookstream", path=str(Path(sys.executable).parent))
    assert executable is not None
    command = [
        executable, "sandbox", "--port", str(port), "--window-limit", "2",
        "--window-seconds", "86400", "--access-token", "local-token",
    ]  # fmt: skip
    log = (tmp_path / "sandbox.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "sandbox.log").read_text()
            assert time.monotonic() < deadline, "the sandbox did not start"
            time.sleep(0.1)
        with httpx.Client(base_url=base_url, headers=HEADERS) as client:
            statuses = [client.post("/events", json=_event(n)).status_code for n in range(3)]
            wrong_token = client.post(
                "/events", json=_event(9), headers={"Authorization": "Bearer sandbox-token"}
            )
    finally:
        process.send_signal(signal.SIGINT)
        exit_code = process.wait(timeout=10)
        log.close()

    # Two calls fit the (day-long, so it does not turn mid-test) window; the third is refused.
    assert statuses == [202, 202, 429]
    assert wrong_token.status_code == 401
    assert exit_code == 0


def test_the_command_takes_one_kind_of_limit() -> None:
    result = CliRunner().invoke(sandbox_command, ["--workspace", "--unlimited"])

    assert result.exit_code == 2
    assert "give one of --window-limit, --workspace and --unlimited" in result.output
