"""Faust's table recovery, with three fixes for exactly-once.

faust-streaming 0.15 ends a recovery by resuming the source partitions and only then
seeking them to their committed offsets (faust-streaming issue #216). In between, the
fetcher may hand the agent records from the old position; the seek then rewinds under them
and a record can be skipped while the ones after it are processed. Under exactly-once that
is worse than a lost record: the consumer never acks the skipped offset, so it never
commits that partition again, and everything routed from it stays in transactions that are
never committed. Seeking while the partitions are still paused closes that window.

Under exactly-once Faust takes a changelog's end ("highwater") from the last stable offset
the consumer saw in a fetch response, which it has not seen yet for a partition just
assigned: it reads -1, and either skips the recovery (an empty dedup table) or stops on a
"persisted offset is higher than the highwater" error. `_build_highwaters` asks the broker
(ListOffsets, read_committed: the last stable offset).

Under exactly-once a changelog partition ends with a transaction marker, not a record, so
the recovery never *reads* up to the end offset; Faust notices only after two idle 5 s
waits and every restart or rebalance stalls for 10 s or more. `_end_at_markers` ends the
recovery as soon as the consumer's position has passed the end offset of every active
changelog partition and nothing arrived for two checks in a row. It only looks after this
recovery's seek of the changelogs: a recovery restarted by another rebalance resets the
offsets while the positions still show the previous attempt's end.

`resume_streams` and `on_recovery_completed` are copies of Faust's `Recovery._resume_streams`
and `Recovery.on_recovery_completed` (faust/tables/recovery.py) with the seek moved; Faust's
private names are reached through `hookstream.core.compat.faust`, whose canary test fails
when the upstream methods change.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.transport.drivers.aiokafka import ensure_aiokafka_TP
from mode import Service

from hookstream.core.compat import faust as faust_compat

_CHECK_EVERY_SECONDS = 0.5


class SeekFirstRecovery(faust_compat.Recovery):
    """`Recovery` that seeks the stream partitions, then resumes them (both when a recovery
    completes and when none was needed). The rest is Faust's code, unchanged."""

    async def resume_streams(self, generation_id: int = 0) -> None:
        """Faust's, seeking the stream partitions before resuming them (faust-streaming
        issue #216)."""
        consumer = self.app.consumer
        await self.app.on_rebalance_complete.send()
        assignment = consumer.assignment()
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        await self._seek_then_resume(assignment)
        self.completed.set()
        self.log.info("Resuming flow...")
        self.app.flow_control.resume()
        consumer.resume_flow()
        await faust_compat.fetcher(self.app).maybe_start()
        self.tables.on_actives_ready()
        self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")

    _sought = False  # the active changelogs were sought for the current recovery

    async def build_highwaters(self, consumer: Any, tps: Any, destination: Any, title: str) -> None:
        """The changelog ends from the broker (faust-streaming issue #158: Faust reads -1
        under exactly-once for a partition just assigned)."""
        if title == "active":  # a new recovery cycle: its seek has not happened yet
            self._sought = False
        ends = await faust_compat.changelog_end_offsets(
            consumer, [ensure_aiokafka_TP(tp) for tp in tps]
        )
        highwaters = {
            tp: end - 1 if (end := ends.get(ensure_aiokafka_TP(tp))) is not None else -1
            for tp in tps
        }
        self.log.info(
            "Highwater for %s changelog partitions:\n%s",
            title,
            faust_compat.highwater_logtable(self, highwaters, title=title),
        )
        destination.clear()
        destination.update(highwaters)

    async def seek_offsets(self, consumer: Any, tps: Any, offsets: Any, title: str) -> None:
        """Faust's, noting that this recovery's seek of the active changelogs happened."""
        await super().seek_offsets(consumer, tps, offsets, title)
        if title == "active":
            self._sought = True

    @Service.task
    async def _end_at_markers(self) -> None:
        quiet_checks, last_offsets = 0, None
        while not self.should_stop:
            await self.sleep(_CHECK_EVERY_SECONDS)
            rebalancing = self.signal_recovery_start.is_set()
            if rebalancing or not (self.in_recovery and self._sought and self.app.in_transaction):
                quiet_checks, last_offsets = 0, None
                continue
            offsets = dict(self.active_offsets)
            if offsets != last_offsets or not self.tables.changelog_queue.empty():
                quiet_checks, last_offsets = 0, offsets
                continue
            quiet_checks += 1
            try:
                caught_up = quiet_checks >= 2 and await self._read_past_every_marker()
            except Exception:  # a shortcut only: Faust's own (slower) check still runs
                self.log.exception("Cannot compare changelog positions; waiting for Faust")
                caught_up = False
            if caught_up:
                self.log.info("Changelogs read up to their transaction markers")
                self.flush_buffers()
                faust_compat.set_recovery_ended(self)
                self.signal_recovery_end.set()
                quiet_checks, last_offsets = 0, None

    async def _read_past_every_marker(self) -> bool:
        consumer = self.app.consumer
        offsets = self.active_offsets
        behind = {
            tp: highwater
            for tp, highwater in self.active_highwaters.items()
            if highwater is not None
            and highwater >= 0
            and (offsets.get(tp) is None or offsets[tp] < highwater)
        }
        positions = {}
        for tp, highwater in behind.items():
            position = positions[tp] = await consumer.position(tp)
            if position is None or position <= highwater:
                return False
        self.log.info(
            "Read past the markers: %r",
            {tp.partition: (offsets.get(tp), hw, positions[tp]) for tp, hw in behind.items()},
        )
        for tp, highwater in behind.items():
            self.active_offsets[tp] = highwater
        return not self.need_recovery()

    async def _seek_then_resume(self, assignment: Any) -> None:
        consumer = self.app.consumer
        if assignment:
            self.log.info("Seek stream partitions to committed offsets.")
            await faust_compat.wait_for(
                self, consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout
            )
        consumer.resume_partitions(
            {tp for tp in assignment if not faust_compat.is_changelog_tp(self, tp)}
        )

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        """Faust's, seeking the stream partitions before resuming them (as above)."""
        consumer = self.app.consumer
        self.log.info("Restore complete!")
        await self.app.on_rebalance_complete.send()
        faust_compat.set_recovery_ended(self)
        callbacks = [
            asyncio.ensure_future(
                table.on_recovery_completed(
                    self.actives_for_table[table], self.standbys_for_table[table]
                )
            )
            for table in self.tables.values()
        ]
        if callbacks:
            await asyncio.wait(callbacks)
        assignment = consumer.assignment()
        if self.app.consumer_generation_id != generation_id:
            self.log.warning(
                "Recovery rebalancing again app id %r param %r",
                self.app.consumer_generation_id,
                generation_id,
            )
            return
        await self._seek_then_resume(assignment)
        self.completed.set()
        self.app.flow_control.resume()
        consumer.resume_flow()
        await faust_compat.fetcher(self.app).maybe_start()
        self.tables.on_actives_ready()
        if not self.app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")


class TableManager(faust_compat.TableManager):
    """Faust's table manager with `SeekFirstRecovery`."""

    recovery_class = SeekFirstRecovery
