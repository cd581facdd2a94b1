"""`hookstream spool list|export|drain PATH`: an operator sees what a spool file holds,
quarantined records with their reasons, exports it as JSON lines, and drains a file a removed
ingest left behind into Kafka."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from hookstream.cli import main
from hookstream.core.settings import Settings
from hookstream.ingest.spool import Spool, read_spool_file
from tests.support.ingest import ingest_client, ingest_settings, notification, signed_headers
from tests.support.kafka import read_topic

REASON = "MessageSizeTooLargeError('the record is too large')"
URL = "/webhooks/intercom"


async def _spool_file(tmp_path: Path) -> Path:
    async with await Spool.open(tmp_path / "spool.sqlite3", max_bytes=1 << 20) as spool:
        await spool.append("raw", b"k1", b'{"id":"one"}', [("intercom-topic", b"ping")])
        await spool.append("raw", b"k2", b"x" * 300, [])
        await spool.append("events", b"k3", b"\xff\xfe", [])
        await spool.quarantine((await spool.peek(2))[1], reason=REASON)
        return spool.path


async def test_list_shows_waiting_and_quarantined_records_with_the_reason(tmp_path: Path) -> None:
    path = await _spool_file(tmp_path)
    result = CliRunner().invoke(main, ["spool", "list", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{path}: 2 waiting (18 bytes), 1 quarantined"
    assert lines[1].startswith("waiting     seq=1 ")
    assert "raw key=k1 bytes=14" in lines[1]
    assert lines[2].startswith("waiting     seq=3 ")
    assert lines[3].startswith("quarantined seq=2 ")
    assert lines[3].endswith(f"reason={REASON}")
    limited = CliRunner().invoke(main, ["spool", "list", "--limit", "1", str(path)])
    assert limited.output.splitlines()[-1] == "... 2 more (--limit, or export)"


async def test_export_writes_every_record_as_json_lines(tmp_path: Path) -> None:
    path = await _spool_file(tmp_path)
    out = tmp_path / "spool.jsonl"
    result = CliRunner().invoke(main, ["spool", "export", str(path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [(line["state"], line["seq"]) for line in lines] == [
        ("waiting", 1),
        ("waiting", 3),
        ("quarantined", 2),
    ]
    assert lines[0]["value"] == '{"id":"one"}'
    assert lines[0]["headers"] == {"intercom-topic": "ping"}
    assert lines[1]["value_base64"] == "//4="
    assert "value" not in lines[1]
    assert lines[2]["value"] == "x" * 300
    assert lines[2]["reason"] == REASON
    assert lines[2]["quarantined_at"] >= lines[2]["spooled_at"]
    # Read-only: the file still holds the quarantine, for the ingest to retry on its next start.
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM quarantine").fetchone() == (1,)


def test_a_file_that_is_not_a_spool_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "not-a-spool.sqlite3"
    path.write_bytes(b"garbage" * 100)
    result = CliRunner().invoke(main, ["spool", "list", str(path)])
    assert result.exit_code == 1
    assert "is not a readable spool file" in result.output


def _unreachable() -> str:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{listener.getsockname()[1]}"


async def _orphaned_spool(tmp_path: Path, bodies: list[bytes]) -> Settings:
    """The spool file an ingest leaves behind after taking `bodies` while Kafka was away."""
    settings = ingest_settings(_unreachable(), tmp_path)
    async with ingest_client(settings) as client:
        for body in bodies:
            response = await client.post(URL, content=body, headers=signed_headers(body))
            assert response.json()["durable_in"] == "spool", response.text
    return settings


def _drain(path: Path, bootstrap: str) -> Result:
    return CliRunner().invoke(
        main,
        ["spool", "drain", str(path), "--bootstrap", bootstrap, "--timeout", "30"],
        env={"HOOKSTREAM_LOG_LEVEL": "warning"},
    )


@pytest.mark.integration
def test_drain_sends_an_orphaned_spool_to_kafka_once_even_when_run_twice(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    bodies = [notification() for _ in range(25)]
    settings = asyncio.run(_orphaned_spool(tmp_path, bodies))
    path = tmp_path / "spool.0.sqlite3"
    first = _drain(path, kafka_bootstrap)
    assert first.exit_code == 0, first.output
    assert f"{path}: 25 records sent to Kafka, 0 waiting, 0 quarantined" in first.output
    second = _drain(tmp_path, kafka_bootstrap)  # a directory: each spool file in it
    assert second.exit_code == 0, second.output
    assert f"{path}: 0 records sent to Kafka" in second.output
    records = asyncio.run(read_topic(kafka_bootstrap, settings.topics.raw, expect=25))
    assert [r.value for r in records] == bodies, "all of them, in order, once"
    assert read_spool_file(path) == []


@pytest.mark.integration
async def test_drain_refuses_a_spool_file_a_live_ingest_holds(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingest_settings(_unreachable(), tmp_path)
    body = notification()
    async with ingest_client(settings) as client:
        await client.post(URL, content=body, headers=signed_headers(body))
        path = tmp_path / "spool.0.sqlite3"
        drain = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hookstream.cli", "spool", "drain", str(path),
            "--bootstrap", kafka_bootstrap,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _out, err = await drain.communicate()
        assert drain.returncode == 1
        assert "is held by a running process" in err.decode()
        assert len(read_spool_file(path)) == 1, "the live ingest's record stays"


def test_drain_refuses_a_file_that_is_not_a_sound_spool(tmp_path: Path) -> None:
    path = tmp_path / "spool.0.sqlite3"
    path.write_bytes(b"garbage" * 100)
    result = _drain(path, _unreachable())
    assert result.exit_code == 1
    assert "is not a sound spool file" in result.output
    assert path.read_bytes() == b"garbage" * 100, "left as it was"
