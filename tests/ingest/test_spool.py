"""The spool's quarantine: set aside, still on disk and counted, back in place on reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookstream.ingest.errors import SpoolFull
from hookstream.ingest.spool import Spool

KEYS = [b"a", b"b", b"c"]


async def _spool_of_three(path: Path, max_bytes: int = 1024) -> Spool:
    spool = await Spool.open(path, max_bytes=max_bytes)
    for key in KEYS:
        await spool.append("raw", key, b"v" * 100, [("intercom-topic", b"ping")])
    return spool


async def test_a_quarantined_record_stops_waiting_and_comes_back_in_its_place(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool.sqlite3"
    async with await _spool_of_three(path) as spool:
        head = await spool.peek(3)
        await spool.quarantine(head[0], reason="MessageSizeTooLargeError")
        assert [r.key for r in await spool.peek(3)] == [b"b", b"c"]
        assert (spool.depth, spool.quarantined) == (2, 1)
    async with await Spool.open(path, max_bytes=1024) as reopened:
        records = await reopened.peek(3)
        assert [r.key for r in records] == KEYS
        assert (reopened.depth, reopened.quarantined) == (3, 0)
        assert records[0].headers == [("intercom-topic", b"ping")]
        assert reopened.oldest_age() > 0


async def test_quarantined_records_still_count_against_the_spools_capacity(
    tmp_path: Path,
) -> None:
    async with await _spool_of_three(tmp_path / "spool.sqlite3", max_bytes=350) as spool:
        await spool.quarantine((await spool.peek(1))[0], reason="MessageSizeTooLargeError")
        with pytest.raises(SpoolFull):
            await spool.append("raw", b"d", b"v" * 100, [])
        await spool.delete(await spool.peek(2))
        await spool.append("raw", b"d", b"v" * 100, [])
        assert spool.depth == 1
