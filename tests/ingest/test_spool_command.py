"""`hookstream spool list|export PATH`: an operator sees what a spool file holds, quarantined
records with their reasons, and exports it as JSON lines."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
from click.testing import CliRunner

from hookstream.cli import main
from hookstream.ingest.spool import Spool

REASON = "MessageSizeTooLargeError('the record is too large')"


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
