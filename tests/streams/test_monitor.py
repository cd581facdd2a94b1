from __future__ import annotations

from faust.types import TP

from hookstream.streams._monitor import LeanMonitor


def test_lean_monitor_keeps_committed_offsets_and_stream_activity_only() -> None:
    monitor = LeanMonitor()
    tp = TP("intercom.notifications", 0)
    state = monitor.on_stream_event_in(tp, 7, stream=object(), event=object())
    monitor.on_stream_event_out(tp, 7, stream=object(), event=object(), state=state)
    monitor.on_tp_commit({tp: 8})
    assert monitor.tp_committed_offsets == {tp: 8}  # the lag gauge reads these
    assert tp in monitor.stream_inbound_time  # Faust's idle-stream warning reads this
    assert monitor.events_total == 0  # per-event statistics are not kept
