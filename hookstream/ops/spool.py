"""`hookstream spool list|export|drain PATH`: what an ingest's spool file holds (waiting
records, and quarantined ones with the reason Kafka refused them), read-only; and the drain of
a file a removed pod left behind into Kafka, by the ingest's own drain (`DurableWriter`):
a record is deleted from the file only once Kafka acknowledged it, so a drain cut short, or
run twice, loses nothing (a record acknowledged just before a crash may reach Kafka twice;
the worker and the sink drop the double). A file a live ingest holds is refused."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import sqlite3
import time
from pathlib import Path
from typing import Any

import click
import orjson

from hookstream.core.errors import HookstreamError
from hookstream.core.kafka import KafkaConnection
from hookstream.core.settings import Settings, load_settings
from hookstream.core.topics import RECORD_OVERHEAD_BYTES
from hookstream.ingest.durable import DurableWriter, WriterConfig
from hookstream.ingest.spool import Spool, StoredRecord, read_spool_file
from hookstream.ops.options import bootstrap_option

_SPOOL_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("spool")
def spool_group() -> None:
    """Look into an ingest's spool file (e.g. /var/lib/hookstream/spool/spool.0.sqlite3):
    the records waiting for Kafka and the quarantined ones (list, export: read-only, safe
    while the ingest runs); drain one whose ingest is gone into Kafka (drain)."""


@spool_group.command("list")
@click.argument("path", type=_SPOOL_FILE)
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True)
def list_command(path: Path, limit: int) -> None:
    """A summary of PATH and its first records (waiting, then quarantined, with reasons)."""
    records = _read(path)
    waiting = [r for r in records if r.quarantine_reason is None]
    quarantined = [r for r in records if r.quarantine_reason is not None]
    click.echo(
        f"{path}: {len(waiting)} waiting ({sum(r.record.size for r in waiting)} bytes), "
        f"{len(quarantined)} quarantined"
    )
    for stored in records[:limit]:
        record = stored.record
        state = "quarantined" if stored.quarantine_reason is not None else "waiting"
        line = (
            f"{state:<11} seq={record.seq} {_time(record.spooled_at)} {record.topic} "
            f"key={record.key.decode(errors='replace')} bytes={record.size}"
        )
        if stored.quarantine_reason is not None:
            line += f" reason={stored.quarantine_reason}"
        click.echo(line)
    if len(records) > limit:
        click.echo(f"... {len(records) - limit} more (--limit, or export)")


@spool_group.command("export")
@click.argument("path", type=_SPOOL_FILE)
@click.option(
    "-o",
    "--output",
    type=click.File("wb"),
    default="-",
    help="Where the JSON lines go [default: standard output].",
)
def export_command(path: Path, output: Any) -> None:
    """Every record of PATH as JSON lines: state, seq, topic, key, value (text, or
    value_base64 when not UTF-8), headers, spooled_at, and reason and quarantined_at for
    quarantined records."""
    for stored in _read(path):
        output.write(orjson.dumps(_as_json(stored)) + b"\n")


@spool_group.command("drain")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@bootstrap_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=600.0,
    show_default=True,
    metavar="SECONDS",
    help="Give up (exit 1, the rest stays in the file) when not drained by then.",
)
def drain_command(path: Path, bootstrap: str | None, timeout: float) -> None:
    """Send every waiting record of PATH to Kafka, in order, deleting each from the file once
    Kafka acknowledged it: for a spool file left behind by a removed ingest pod (PATH a
    directory: each `*.sqlite3` file in it, e.g. a retained spool volume). Refused while an
    ingest holds the file. Safe to run again; exit 0 once the files hold nothing
    (quarantined records, which Kafka refuses for good, stay in them: exit 1)."""
    paths = sorted(path.glob("*.sqlite3")) if path.is_dir() else [path]
    for file in paths:
        problem = _quick_check(file)
        if problem is not None:
            raise click.ClickException(f"{file} is not a sound spool file: {problem}")
    try:
        settings = load_settings()
    except ValueError as exc:
        raise click.ClickException(f"invalid settings: {exc}") from exc
    connection = KafkaConnection.from_settings(settings.kafka).with_bootstrap(bootstrap)
    holding = 0
    for file in paths:
        try:
            sent, left, quarantined = asyncio.run(_drain(file, settings, connection, timeout))
        except HookstreamError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(
            f"{file}: {sent} records sent to Kafka, {left} waiting, {quarantined} quarantined"
        )
        holding += left + quarantined
    if not paths:
        click.echo(f"{path}: no spool file (*.sqlite3)")
    if holding:
        raise click.ClickException(
            f"{holding} records are still in the spool (quarantined ones: `hookstream spool "
            "export` shows why; waiting ones: run the drain again once Kafka answers)"
        )


async def _drain(
    path: Path, settings: Settings, connection: KafkaConnection, wait_seconds: float
) -> tuple[int, int, int]:
    """Drain `path` with the ingest's own writer: (sent, still waiting, quarantined)."""
    config = WriterConfig(
        connection=connection,
        max_request_bytes=settings.topics.max_body_bytes + RECORD_OVERHEAD_BYTES,
        shutdown_timeout=5.0,
    )
    async with await Spool.open_file(path, settings.ingest.spool_max_bytes) as spool:
        before = spool.depth
        if before:
            async with DurableWriter(config, spool) as writer:
                deadline = time.monotonic() + wait_seconds
                while spool.depth and time.monotonic() < deadline:
                    if writer.refused is not None:
                        raise writer.refused
                    await asyncio.sleep(0.1)
        return before - spool.depth - spool.quarantined, spool.depth, spool.quarantined


def _quick_check(path: Path) -> str | None:
    """What `PRAGMA quick_check` finds wrong with `path` (read-only), or None."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)) as db:
            rows = db.execute("PRAGMA quick_check").fetchall()
            db.execute("SELECT COUNT(*) FROM spool").fetchone()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None if rows == [("ok",)] else "; ".join(str(row[0]) for row in rows[:5])


def _read(path: Path) -> list[StoredRecord]:
    try:
        return read_spool_file(path)
    except sqlite3.DatabaseError as exc:
        raise click.ClickException(f"{path} is not a readable spool file: {exc}") from exc


def _as_json(stored: StoredRecord) -> dict[str, Any]:
    record = stored.record
    line: dict[str, Any] = {
        "state": "waiting" if stored.quarantine_reason is None else "quarantined",
        "seq": record.seq,
        "topic": record.topic,
        **_bytes("key", record.key),
        **_bytes("value", record.value),
        "headers": {name: value.decode(errors="replace") for name, value in record.headers},
        "spooled_at": _time(record.spooled_at),
    }
    if stored.quarantine_reason is not None:
        line["reason"] = stored.quarantine_reason
        line["quarantined_at"] = _time(stored.quarantined_at)
    return line


def _bytes(name: str, value: bytes) -> dict[str, str]:
    try:
        return {name: value.decode()}
    except UnicodeDecodeError:
        return {f"{name}_base64": base64.b64encode(value).decode()}


def _time(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds")
