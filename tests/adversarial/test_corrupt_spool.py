"""A damaged spool file (a broken disk, a truncated copy) does not keep the ingest down: at
start it is found (`PRAGMA quick_check`), renamed aside and kept, said in a metric and a log
line, and the ingest takes webhooks on a fresh file."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.support.ingest import ingest_client, ingest_settings, notification, signed_headers

NO_KAFKA = "127.0.0.1:9"  # refuses connections: every webhook goes to the spool
URL = "/webhooks/intercom"
PAGE = 4096


def _corrupt_total(metrics: str) -> float:
    prefix = "hookstream_ingest_spool_corrupt_total "
    (line,) = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(line.removeprefix(prefix))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def _truncate(path: Path) -> None:
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size // 2)


def _overwrite_middle(path: Path) -> None:
    middle = path.stat().st_size // 2 // PAGE * PAGE
    with path.open("r+b") as file:
        file.seek(middle)
        file.write(b"\xff" * PAGE)


@pytest.mark.parametrize("damage", [_truncate, _overwrite_middle], ids=["truncated", "overwritten"])
async def test_a_damaged_spool_is_set_aside_and_the_ingest_starts_fresh(
    damage: Callable[[Path], None], tmp_path: Path
) -> None:
    settings = ingest_settings(NO_KAFKA, tmp_path)
    async with ingest_client(settings) as client:
        for _ in range(150):
            body = notification()
            response = await client.post(URL, content=body, headers=signed_headers(body))
            assert response.json()["durable_in"] == "spool"
        before = _corrupt_total((await client.admin.get("/metrics")).text)
    spool_file = tmp_path / "spool.0.sqlite3"
    assert not spool_file.with_name(spool_file.name + "-wal").exists(), "closed cleanly"
    damage(spool_file)
    damaged = _digest(spool_file)

    with capture_logs() as logs:
        async with ingest_client(settings) as client:
            ready = (await client.admin.get("/readyz")).json()
            assert ready["spool_depth"] == 0, "a fresh spool"
            metrics = (await client.admin.get("/metrics")).text
            body = notification()
            response = await client.post(URL, content=body, headers=signed_headers(body))
            assert response.status_code == 200, response.text
            assert (await client.admin.get("/readyz")).json()["spool_depth"] == 1

    said = [e for e in logs if e["event"] == "spool_corrupt_set_aside"]
    assert len(said) == 1, logs
    assert said[0]["log_level"] == "error"
    aside = Path(said[0]["kept_as"])
    assert aside.parent == tmp_path
    assert aside.name in _names(tmp_path), "the damaged file is kept"
    assert _digest(aside) == damaged, "as it was"
    assert said[0]["problem"]
    assert _corrupt_total(metrics) == before + 1


async def test_a_sound_spool_is_not_set_aside(tmp_path: Path) -> None:
    settings = ingest_settings(NO_KAFKA, tmp_path)
    for _ in range(2):
        with capture_logs() as logs:
            async with ingest_client(settings) as client:
                body = notification()
                await client.post(URL, content=body, headers=signed_headers(body))
        assert not [e for e in logs if e["event"] == "spool_corrupt_set_aside"]
    assert _names(tmp_path) == ["spool.0.sqlite3", "spool.0.sqlite3.lock"]
