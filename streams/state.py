"""The local table state and when it can be trusted.

Faust writes table changes to RocksDB as events are processed, before their transaction
commits. After a clean stop everything written was committed; after a crash (SIGKILL, OOM)
RocksDB may hold writes of aborted transactions, and an id remembered by an aborted
transaction would make the worker drop the retry of a notification it never delivered.
So, like Kafka Streams under exactly-once, the worker keeps a marker of a clean stop and,
when it starts without one, deletes the local tables: Faust rebuilds them from the
changelog topics, which hold committed writes only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hookstream.core.logs import get_logger

CLEAN_STOP_MARKER = ".clean-stop"

log = get_logger(__name__)


class LocalState:
    """The worker's data directory: table stores plus the clean-stop marker."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.marker = data_dir / CLEAN_STOP_MARKER

    def claim(self, tables_dir: Path) -> bool:
        """Before the worker starts: delete `tables_dir` unless the last stop was clean, and
        remove the marker (a crash from now on leaves none). True when state was deleted."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        clean = self.marker.exists()
        self.marker.unlink(missing_ok=True)
        if clean or not tables_dir.exists() or not any(tables_dir.iterdir()):
            return False
        log.warning(
            "state.discarded",
            reason="no clean stop recorded; rebuilding tables from their changelogs",
            path=str(tables_dir),
        )
        shutil.rmtree(tables_dir)
        return True

    def mark_clean_stop(self) -> None:
        """After the worker stopped without a crash: its local state can be reused."""
        self.marker.touch()
