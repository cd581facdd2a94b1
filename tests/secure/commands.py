"""Running a hookstream command as one service's user of a secured broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hookstream.devtools import localkafka
from hookstream.devtools.localkafka.security import BrokerSecurity
from hookstream.ops.acls import default_user

CLIENT_SECRET = "test-client-secret"
ACCESS_TOKEN = "secure-test-access-token"  # strong enough for the sink to start


def run_as(
    service: str,
    broker: tuple[str, BrokerSecurity],
    args: list[str],
    tmp_path: Path,
    **overrides: str,
) -> subprocess.CompletedProcess[str]:
    """`hookstream ARGS` with `service`'s client settings (and free ports, its own data
    paths, an Intercom token and a client secret), the environment's own settings removed;
    `overrides` last. Returns the finished process (at most 60 s)."""
    bootstrap, security = broker
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KAFKA_", "INTERCOM_", "HOOKSTREAM_"))
    }
    env |= security.client_settings(default_user(service), bootstrap) | {
        "INTERCOM_CLIENT_SECRET": CLIENT_SECRET,
        "INTERCOM_ACCESS_TOKEN": ACCESS_TOKEN,
        "HOOKSTREAM_SPOOL_PATH": str(tmp_path / "spool.sqlite3"),
        "HOOKSTREAM_DATA_DIR": str(tmp_path / "faust"),
        "HOOKSTREAM_WORKER_WEB_PORT": str(localkafka.free_port()),
        "HOOKSTREAM_SINK_WEB_PORT": str(localkafka.free_port()),
        "HOOKSTREAM_INGEST_PORT": str(localkafka.free_port()),
        "HOOKSTREAM_INGEST_ADMIN_PORT": str(localkafka.free_port()),
        **overrides,
    }
    return subprocess.run(
        [sys.executable, "-m", "hookstream.cli", *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
