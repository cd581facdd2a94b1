"""`hookstream dev` driven as a user would: start it (plaintext, and `--secure`: TLS, SCRAM,
ACLs), send signed webhooks with `send-webhook`, see them routed with `tail`, post a data
event and see the sandbox accept it, then Ctrl-C, and nothing of it is left running."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from hookstream.devtools import localkafka

pytestmark = pytest.mark.integration


def _hookstream(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hookstream.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _processes_mentioning(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            text = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in text:
            found.append(int(proc.name))
    return found


def _wait_for_line(log: Path, pattern: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if re.search(pattern, log.read_text()):
            return
        assert process.poll() is None, log.read_text()
        time.sleep(0.5)
    raise AssertionError(f"no {pattern!r} in:\n{log.read_text()}")


@pytest.mark.parametrize("secure", [False, True], ids=["plaintext", "secure"])
def test_dev_mode_runs_the_pipeline_and_ctrl_c_leaves_nothing(tmp_path: Path, secure: bool) -> None:
    data_dir = tmp_path / "devdata"
    names = ("kafka", "ingest", "ingest-admin", "sandbox", "worker", "sink")
    ports = {name: localkafka.free_port() for name in names}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERCOM_", "HOOKSTREAM_"))}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    log = tmp_path / "dev.out"
    with log.open("wb") as output:
        dev = subprocess.Popen(
            [sys.executable, "-m", "hookstream.cli", "dev", "--data-dir", str(data_dir)]
            + [arg for name, port in ports.items() for arg in (f"--{name}-port", str(port))]
            + (["--secure"] if secure else []),
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_line(log, r"Ctrl-C stops everything", dev)
        printed = log.read_text()
        send_command = re.search(r"  (hookstream send-webhook .*)", printed)
        assert send_command, printed
        bootstrap = f"127.0.0.1:{ports['kafka']}"
        assert f"kafka     {bootstrap}" in printed
        admin = f"http://127.0.0.1:{ports['ingest-admin']}"
        assert f"admin port {admin}" in printed
        assert httpx.get(f"{admin}/readyz").json()["kafka"] == "up"

        # the printed command, as a user would paste it
        args = [*send_command.group(1).split()[1:], "--topic", "contact.user.created"]
        sent = _hookstream(*args, "--json", env=env)
        assert sent.returncode == 0, sent.stderr
        summary = orjson.loads(sent.stdout)
        assert summary["by_status"] == {"200": 10}

        # secured, the operator's settings as printed (a TLS listener only: plaintext fails)
        exports = dict(re.findall(r"^  export (KAFKA_\w+)=(\S+)$", printed, re.MULTILINE))
        assert bool(exports) == secure, printed
        if secure:
            assert exports["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
            assert exports["KAFKA_SASL_USERNAME"] == "hookstream-operator"
        operator_env = env | {name: shlex.split(value)[0] for name, value in exports.items()}
        tailed = _hookstream(
            "tail", "intercom.contact.user.created", "--bootstrap", bootstrap,
            "--from-beginning", "--max", "10", "--timeout", "30", "--json", env=operator_env,
        )  # fmt: skip
        assert tailed.returncode == 0, tailed.stderr
        records = [orjson.loads(line) for line in tailed.stdout.splitlines()]
        assert len(records) == 10
        assert {r["headers"]["intercom-topic"] for r in records} == {"contact.user.created"}

        event = {"event_name": "updated-plan", "created_at": int(time.time()), "user_id": "u-1"}
        token = re.search(r"Authorization: Bearer (\S+)'", printed)
        assert token, printed
        posted = httpx.post(
            f"http://127.0.0.1:{ports['ingest']}/events",
            json=event,
            headers={"Authorization": f"Bearer {token.group(1)}"},
        )
        assert posted.status_code == 202, posted.text
        deadline = time.monotonic() + 60
        accepted: list[dict[str, object]] = []
        while time.monotonic() < deadline and not accepted:
            page = httpx.get(f"http://127.0.0.1:{ports['sandbox']}/sandbox/accepted").json()
            accepted = page["events"]
            time.sleep(0.5)
        assert [entry["event"] for entry in accepted] == [event]
    finally:
        dev.send_signal(signal.SIGINT)
        returncode = dev.wait(timeout=120)
    assert returncode == 0, log.read_text()
    assert "stopped; nothing left running" in log.read_text()
    assert _processes_mentioning(str(data_dir)) == []
    assert not localkafka.status(data_dir / "kafka").running
