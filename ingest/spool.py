"""The ingest's durable spool: where a notification waits, fsync'd, while Kafka is away.

SQLite in WAL mode with `synchronous=FULL`: a committed append survives a crash of the
process or the machine. Appends from concurrent requests are grouped into one transaction
(one fsync for the group), so the spool keeps up with a burst. Records come out in the order
they went in and are deleted only after Kafka acknowledged them.

A record Kafka refuses for good (too large for the topic) moves to the file's quarantine
table, so it does not block the records behind it; opening the spool puts quarantined records
back in their place, so a restart after the topic is fixed retries them.

One spool file belongs to one process at a time: `Spool.open` takes the first free slot
(`<stem>.<n>.sqlite3`, held with an exclusive `flock`), so several ingest processes on one
volume each get their own, and a restarted process picks up a dead one's backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self, TypeVar

import orjson

from hookstream.core.contract import Headers
from hookstream.core.logs import get_logger
from hookstream.ingest import metrics
from hookstream.ingest.errors import NotDurable, SpoolFull, SpoolLocked

_T = TypeVar("_T")
_Row = tuple[str, bytes, bytes, bytes, float]  # topic, key, value, headers (JSON), spooled_at
log = get_logger(__name__)

MAX_SLOTS = 64
_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    headers BLOB NOT NULL,
    spooled_at REAL NOT NULL
)
"""
_QUARANTINE_SCHEMA = """
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    headers BLOB NOT NULL,
    spooled_at REAL NOT NULL,
    reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class SpooledRecord:
    """A record as the spool keeps it; `seq` orders records and names them for deletion."""

    seq: int
    topic: str
    key: bytes
    value: bytes
    headers: Headers
    spooled_at: float

    @property
    def size(self) -> int:
        """Bytes this record counts against the spool's capacity."""
        return _size(self.key, self.value)


def _size(key: bytes, value: bytes) -> int:
    return len(key) + len(value)


class Spool:
    """An append-only, fsync'd queue of Kafka records in one SQLite file."""

    def __init__(self, path: Path, lock_file: IO[bytes], max_bytes: int, slot: int = 0) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.slot = slot
        self._lock_file = lock_file
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[list[_Row], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._bytes = 0
        self._reserved = 0
        self._count = 0
        self._oldest: float | None = None
        self._quarantined = 0
        self._quarantined_bytes = 0
        self._refused_since_delete = False

    @classmethod
    async def open(cls, base_path: Path, max_bytes: int) -> Spool:
        """Open the first spool slot no other process holds (creating it if needed)."""
        base_path.parent.mkdir(parents=True, exist_ok=True)
        for slot in range(MAX_SLOTS):
            path = base_path.with_name(f"{base_path.stem}.{slot}{base_path.suffix}")
            lock_file = path.with_name(path.name + ".lock").open("ab")
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock_file.close()
                continue
            spool = cls(path, lock_file, max_bytes, slot)
            await spool._run(spool._connect)
            return spool
        raise NotDurable(f"all {MAX_SLOTS} spool slots beside {base_path} are taken")

    @classmethod
    async def open_file(cls, path: Path, max_bytes: int) -> Spool:
        """Open the existing spool file at `path` (an operator draining one a removed pod
        left behind); `SpoolLocked` while a live process holds it."""
        lock_file = path.with_name(path.name + ".lock").open("ab")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise SpoolLocked(
                f"{path} is held by a running process (a lock on {lock_file.name}): a live "
                "ingest drains its own spool"
            ) from None
        spool = cls(path, lock_file, max_bytes)
        try:
            await spool._run(spool._connect)
        except BaseException:
            spool._executor.shutdown(wait=False)
            lock_file.close()  # releases the lock
            raise
        return spool

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def depth(self) -> int:
        """Records waiting in the spool."""
        return self._count

    @property
    def size_bytes(self) -> int:
        """Key and value bytes waiting in the spool."""
        return self._bytes

    @property
    def quarantined(self) -> int:
        """Records Kafka refused for good, kept aside until the spool is next opened."""
        return self._quarantined

    @property
    def is_full(self) -> bool:
        """Whether a record was refused for want of room since the spool last shrank."""
        return self._refused_since_delete or self._used_bytes >= self.max_bytes

    @property
    def _used_bytes(self) -> int:
        return self._bytes + self._quarantined_bytes

    def oldest_age(self, now: float | None = None) -> float:
        """Seconds the oldest waiting record has waited (0 when empty)."""
        if self._oldest is None:
            return 0.0
        return max(0.0, (now or time.time()) - self._oldest)

    async def append(self, topic: str, key: bytes, value: bytes, headers: Headers) -> None:
        """Return once the record is committed to disk; `SpoolFull` past capacity,
        `NotDurable` when the disk refuses it."""
        await self.append_all([(topic, key, value, headers)])

    async def append_all(self, records: Sequence[tuple[str, bytes, bytes, Headers]]) -> None:
        """Commit `records` (topic, key, value, headers) to disk in one transaction: all of
        them, or (`SpoolFull` past capacity, `NotDurable` when the disk refuses) none."""
        size = sum(_size(key, value) for _topic, key, value, _headers in records)
        if self._used_bytes + self._reserved + size > self.max_bytes:
            self._refused_since_delete = True
            raise SpoolFull(f"the spool holds {self._used_bytes} of {self.max_bytes} bytes")
        self._reserved += size
        now = time.time()
        rows = [
            (topic, key, value, orjson.dumps([[n, v.decode()] for n, v in headers]), now)
            for topic, key, value, headers in records
        ]
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((rows, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        try:
            await done
        finally:
            self._reserved -= size

    async def peek(self, limit: int) -> list[SpooledRecord]:
        """The oldest `limit` records, in the order they were appended."""
        return await self._run(self._select, limit)

    async def delete(self, records: Sequence[SpooledRecord]) -> None:
        """Forget records that Kafka acknowledged."""
        if records:
            await self._run(self._delete, records)

    async def quarantine(self, record: SpooledRecord, reason: str) -> None:
        """Set aside a record Kafka refuses for good (it no longer waits in the spool)."""
        await self._run(self._quarantine, record, reason)

    async def close(self) -> None:
        """Commit what is pending and release the file. Closing twice is harmless."""
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
            self._executor.shutdown(wait=True)
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._run(self._insert, [row for rows, _done in batch for row in rows])
            except sqlite3.Error:
                log.exception("spool_write_failed", requests=len(batch))
                for _row, done in batch:
                    if not done.done():
                        done.set_exception(NotDurable("the spool could not be written; retry"))
                continue
            for _row, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _run(self, function: Callable[..., _T], *args: object) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    # -- in the spool's own thread ---------------------------------------------------------

    def _set_aside_if_corrupt(self) -> None:
        """Check the file (`PRAGMA quick_check`); a damaged one (a broken disk, a truncated
        copy) is renamed aside with its WAL, kept for an operator, so the ingest starts on a
        fresh file rather than not at all."""
        if not self.path.exists():
            return
        try:
            with contextlib.closing(sqlite3.connect(self.path)) as db:
                rows = db.execute("PRAGMA quick_check").fetchall()
            problem = None if rows == [("ok",)] else "; ".join(str(row[0]) for row in rows[:5])
        except sqlite3.DatabaseError as exc:
            problem = str(exc)
        if problem is None:
            return
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            companion = self.path.with_name(self.path.name + suffix)
            if companion.exists():
                companion.rename(aside.with_name(aside.name + suffix))
        metrics.SPOOL_CORRUPT.inc()
        log.error(
            "spool_corrupt_set_aside", spool=str(self.path), kept_as=str(aside), problem=problem
        )

    def _connect(self) -> None:
        self._set_aside_if_corrupt()
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(_SCHEMA)
        db.execute(_QUARANTINE_SCHEMA)
        with db:  # quarantined records get another chance, in their place
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO spool (seq, topic, key, value, headers, spooled_at) "
                "SELECT seq, topic, key, value, headers, spooled_at FROM quarantine"
            )
            db.execute("DELETE FROM quarantine")
        count, total, oldest = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0), MIN(spooled_at) "
            "FROM spool"
        ).fetchone()
        self._db, self._count, self._bytes, self._oldest = db, count, total, oldest

    def _insert(self, rows: list[_Row]) -> None:
        assert self._db is not None  # noqa: S101 - opened in Spool.open
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO spool (topic, key, value, headers, spooled_at) VALUES (?,?,?,?,?)",
                rows,
            )
        self._count += len(rows)
        self._bytes += sum(_size(row[1], row[2]) for row in rows)
        if self._oldest is None:
            self._oldest = rows[0][4]

    def _select(self, limit: int) -> list[SpooledRecord]:
        assert self._db is not None  # noqa: S101 - opened in Spool.open
        rows = self._db.execute(
            "SELECT seq, topic, key, value, headers, spooled_at FROM spool ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [_spooled_record(*row) for row in rows]

    def _delete(self, records: Sequence[SpooledRecord]) -> None:
        self._remove(records)
        self._refused_since_delete = False

    def _quarantine(self, record: SpooledRecord, reason: str) -> None:
        self._remove([record], quarantine_reason=reason)
        self._quarantined += 1
        self._quarantined_bytes += record.size

    def _remove(
        self, records: Sequence[SpooledRecord], quarantine_reason: str | None = None
    ) -> None:
        """Take `records` out of the spool in one transaction; with a reason, into the
        quarantine."""
        assert self._db is not None  # noqa: S101 - opened in Spool.open
        seqs = [(record.seq,) for record in records]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if quarantine_reason is not None:
                self._db.executemany(
                    "INSERT INTO quarantine "
                    "(seq, topic, key, value, headers, spooled_at, reason, quarantined_at) "
                    "SELECT seq, topic, key, value, headers, spooled_at, ?, ? "
                    "FROM spool WHERE seq = ?",
                    [(quarantine_reason, time.time(), seq) for (seq,) in seqs],
                )
            self._db.executemany("DELETE FROM spool WHERE seq = ?", seqs)
            first = self._db.execute("SELECT spooled_at FROM spool ORDER BY seq LIMIT 1").fetchone()
        self._count -= len(records)
        self._bytes -= sum(record.size for record in records)
        self._oldest = first[0] if first else None


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as a spool file holds it: waiting, or quarantined with the reason."""

    record: SpooledRecord
    quarantine_reason: str | None = None
    quarantined_at: float | None = None


def read_spool_file(path: Path) -> list[StoredRecord]:
    """Every record in the spool file at `path`, read-only (an ingest may hold it): the
    waiting ones in order, then the quarantined ones. `sqlite3.DatabaseError` when it is not
    a sound spool file."""
    uri = f"file:{path.resolve()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        waiting = db.execute(
            "SELECT seq, topic, key, value, headers, spooled_at, NULL, NULL FROM spool ORDER BY seq"
        ).fetchall()
        quarantined = db.execute(
            "SELECT seq, topic, key, value, headers, spooled_at, reason, quarantined_at "
            "FROM quarantine ORDER BY seq"
        ).fetchall()
    return [
        StoredRecord(_spooled_record(*row), reason, quarantined_at)
        for *row, reason, quarantined_at in [*waiting, *quarantined]
    ]


def _spooled_record(  # noqa: PLR0917 - a spool row's columns, in order
    seq: int, topic: str, key: bytes, value: bytes, headers: str, spooled_at: float
) -> SpooledRecord:
    """The record of a `spool` (or `quarantine`) row: its headers are stored as JSON text."""
    return SpooledRecord(
        seq=seq,
        topic=topic,
        key=key,
        value=value,
        headers=[(name, text.encode()) for name, text in orjson.loads(headers)],
        spooled_at=spooled_at,
    )
