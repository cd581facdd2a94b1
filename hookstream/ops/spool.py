"""`hookstream spool list|export PATH`: what an ingest's spool file holds (waiting records,
and quarantined ones with the reason Kafka refused them), read-only."""

from __future__ import annotations

import base64
import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import click
import orjson

from hookstream.ingest.spool import StoredRecord, read_spool_file

_SPOOL_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("spool")
def spool_group() -> None:
    """Look into an ingest's spool file (e.g. /var/lib/hookstream/spool/spool.0.sqlite3):
    the records waiting for Kafka and the quarantined ones. Read-only: safe while the ingest
    runs."""


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
