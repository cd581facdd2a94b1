"""Faust's monitor without the per-event statistics the worker does not use.

Faust's `Monitor` is the app's one sensor: for every message and event it counts, timestamps
and keeps rolling lists (events by stream and by task, runtimes, send latencies, table
gets and sets) for its `/stats` page and sensor exporters, which the worker serves neither
of. What the worker does use stays: the committed offsets (`tp_committed_offsets`, the lag
gauge on `/metrics`), the end offsets, the time each partition's stream last took an event
(Faust's warning of a stream that stopped processing) and the commit, rebalance and web
hooks (rare).
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from faust.sensors import Monitor


class LeanMonitor(Monitor):
    """`faust.sensors.Monitor` with no-op per-message, per-event, per-send and table hooks."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        """Nothing: per-message counts feed only Faust's statistics."""

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        """Note when `tp`'s stream last took an event (Faust warns when that gets old)."""
        self.stream_inbound_time[tp] = monotonic()

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        """Nothing: event runtimes feed only Faust's statistics."""

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        """Nothing (see `on_message_in`)."""

    def on_table_get(self, table: Any, key: Any) -> None:
        """Nothing: table key counts feed only Faust's statistics."""

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        """Nothing (see `on_table_get`)."""

    def on_table_del(self, table: Any, key: Any) -> None:
        """Nothing (see `on_table_get`)."""

    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> None:
        """Nothing: send counts and latencies feed only Faust's statistics."""

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        """Nothing (see `on_send_initiated`)."""
