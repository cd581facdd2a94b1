"""faust-streaming's and mode's private names, behind public ones (faust-streaming 0.15.3,
pinned; mode-streaming 0.7.1, as installed: pyproject.toml does not pin it).

The worker and the sink subclass Faust's app, worker, consumer, producer, transaction
manager, recovery and table manager, and reach into their state. Every private name they
need is used here and nowhere else: a private method a subclass overrides is forwarded to a
public hook of the same name without the underscore (`_on_agent_error` -> `on_agent_error`),
and private state is read and written through the functions below.
`tests/compat/test_upstream_canary.py` checks each name against the installed Faust and mode
(`PRIVATE_NAMES`), and each upstream method hookstream copied or replaced against the digest
of the source it was copied from (`COPIED`): an upgrade that changes one fails there, naming
the file to re-read.

Private names (F#n: a faust-streaming/faust issue; "no upstream issue found" means searches of
faust-streaming/faust's issues and pull requests for the symptom turned up none):

==========================================  ==================================================
name (owner)                                why; upstream issue; what would let it go
==========================================  ==================================================
`App._on_agent_error`                       crash instead of restarting an agent past its
                                            event (worker and sink); no upstream issue found
                                            (searched "agent error restarts agent crash");
                                            a public setting for the agent supervisor's error
`App._new_transport`                        install the worker's transport (fixed producer,
                                            transaction manager, consumer); no upstream issue
                                            found; a `Transport` setting or fixed upstream
                                            classes
`App._fetcher`                              restart the fetcher after the fixed recovery seek;
                                            F#216 (closed, still so in 0.15.3); its fix
`mode.Worker._on_sigterm`, `._on_sigint`    bound the stop on a signal (the worker); nearest
                                            F#324 (closed, wontfix: a worker left in
                                            "Stopping"); a stop timeout in mode
`Consumer._drain_messages`                  the fetch loop, replaced to hand over whole
                                            batches; no faust-streaming issue found (nearest:
                                            robinhood/faust#563, slow consumption, before
                                            the fork); batch delivery in Faust
`Consumer._wait_next_records`,              used by the copied `getmany` as Faust's does;
`._to_message`, `._buffered_partitions`     goes with the copy
`Consumer._read_offset`, `._add_gap`,       the offset bookkeeping of the replaced fetch loop;
`._commit_every`, `._n_acked`               goes with the replacement
`mode.Service._stopped`                     the fetch loop's stop test (Faust's too); goes
                                            with the replacement
`Conductor._tp_index`,                      hand a message over without `wait_first` when
`._tp_to_callback_lock`                     nothing can wait; no upstream issue found; goes
                                            with the replacement
`ThreadDelegateConsumer._thread`,           ask the broker for a changelog's end under
`AIOKafkaConsumerThread._ensure_consumer`   exactly-once (Faust reads -1); F#158; a correct
                                            highwater upstream
`Recovery._resume_streams`                  seek the stream partitions before resuming them;
                                            F#216 (closed, still so in 0.15.3); its fix
`Recovery._build_highwaters`                the changelog ends from ListOffsets; F#158; as
                                            above
`Recovery._seek_offsets`                    note that this recovery's seek happened, for the
                                            end-at-transaction-markers shortcut; nearest
                                            F#47 (closed: a recovery stuck under
                                            exactly-once); ending at the markers upstream
`Recovery._highwater_logtable`,             used by the replaced methods as Faust's are; go
`._is_changelog_tp`, `._wait`,              with them
`._set_recovery_ended`
`TableManager._recovery`                    install the fixed recovery; goes with it
`TransactionManager._tps_to_transactional_  stop the transactional producers of partitions
ids`, `._stop_transactions`                 no longer ours (Faust's `revoked` came out empty);
                                            F#323; its fix upstream
`Producer._transaction_producers`,          class attributes upstream, shared by every
`._trn_locks`                               producer: made per instance, and the outbox
                                            produces into a source partition's transaction;
                                            F#440 (the destination partition's topic group);
                                            no upstream issue found for the sharing
                                            (searched "_transaction_producers class
                                            attribute"); per-source-partition transactions
`SerializedStore._get`, `._encode_key`,     one store read per dedup lookup instead of two
`._decode_value`                            and a KeyError; no upstream issue found; a
                                            `get` with a default upstream
`Store._dbs` (RocksDB)                      the dedup table's key estimate; no upstream issue
                                            found; a size estimate upstream
`Collection._on_changelog_sent`             the changelog offset of a write produced through
                                            the outbox (compare F#177, records produced
                                            outside the transaction); its fix upstream
==========================================  ==================================================
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

import faust
from faust.tables.manager import TableManager as FaustTableManager
from faust.tables.recovery import Recovery as FaustRecovery
from faust.transport.drivers import aiokafka as aiokafka_driver

from hookstream.core.compat import Copied, Private

__all__ = [
    "COPIED",
    "PRIVATE_NAMES",
    "App",
    "Consumer",
    "Recovery",
    "TableManager",
    "Worker",
    "add_gap",
    "buffered_partitions",
    "changelog_end_offsets",
    "changelog_sent_callback",
    "channels_of",
    "fetcher",
    "highwater_logtable",
    "is_changelog_tp",
    "read_offsets",
    "resubscribing",
    "rocksdb_databases",
    "separate_transaction_state",
    "set_recovery_ended",
    "stop_transactions",
    "stopped",
    "store_get",
    "take_commit_due",
    "to_message",
    "transaction_locks",
    "transaction_producers",
    "transactional_ids_of",
    "wait_for",
    "wait_next_records",
]

_CONSUMER = "faust.transport.consumer:Consumer"
_RECOVERY = "faust.tables.recovery:Recovery"
_TXN_MANAGER = "faust.transport.consumer:TransactionManager"
_PRODUCER = "faust.transport.drivers.aiokafka:Producer"
_SIG_4 = "self, consumer, tps, destination, title"

PRIVATE_NAMES: tuple[Private, ...] = (
    Private("faust.app.base:App", "_on_agent_error", "self, agent, exc"),
    Private("faust.app.base:App", "_new_transport", "self"),
    Private("faust.app.base:App", "_fetcher"),
    Private("mode.worker:Worker", "_on_sigterm", "self"),
    Private("mode.worker:Worker", "_on_sigint", "self"),
    Private("mode.services:Service", "_stopped"),
    Private(_CONSUMER, "_drain_messages", "self, fetcher"),
    Private(_CONSUMER, "_wait_next_records", "self, timeout"),
    Private("faust.transport.drivers.aiokafka:Consumer", "_to_message", "self, tp, record"),
    Private(_CONSUMER, "_buffered_partitions"),
    Private(_CONSUMER, "_read_offset"),
    Private(_CONSUMER, "_add_gap", "self, tp, offset_from, offset_to"),
    Private(_CONSUMER, "_commit_every"),
    Private(_CONSUMER, "_n_acked"),
    Private("faust.transport.conductor:Conductor", "_tp_index"),
    Private("faust.transport.conductor:Conductor", "_tp_to_callback_lock"),
    Private("faust.transport.drivers.aiokafka:ThreadDelegateConsumer", "_thread"),
    Private("faust.transport.drivers.aiokafka:AIOKafkaConsumerThread", "_ensure_consumer", "self"),
    Private(_RECOVERY, "_resume_streams", "self, generation_id=0"),
    Private(_RECOVERY, "_build_highwaters", _SIG_4),
    Private(_RECOVERY, "_seek_offsets", "self, consumer, tps, offsets, title"),
    Private(_RECOVERY, "_highwater_logtable", "self, highwaters, *, title"),
    Private(_RECOVERY, "_is_changelog_tp", "self, tp"),
    Private(_RECOVERY, "_wait", "self, coro, timeout=None"),
    Private(_RECOVERY, "_set_recovery_ended", "self"),
    Private("faust.tables.manager:TableManager", "_recovery"),
    Private(_TXN_MANAGER, "_tps_to_transactional_ids", "self, tps"),
    Private(_TXN_MANAGER, "_stop_transactions", "self, tids"),
    Private(_PRODUCER, "_transaction_producers"),
    Private(_PRODUCER, "_trn_locks"),
    Private("faust.stores.base:SerializedStore", "_get", "self, key"),
    Private("faust.stores.base:SerializedStore", "_encode_key", "self, key"),
    Private("faust.stores.base:SerializedStore", "_decode_value", "self, value"),
    Private("faust.stores.rocksdb:Store", "_dbs"),
    Private("faust.tables.base:Collection", "_on_changelog_sent", "self, fut"),
)
"""Every private name of Faust and mode used here, with the parameters of the methods."""

COPIED: tuple[Copied, ...] = (
    Copied(
        f"{_CONSUMER}.getmany",
        "1936842581381d27d5f5d0e30d195a37770f9bc81f81e0bd793b4c5991db9b73",
        "streams/_consumer.py (Consumer.getmany)",
    ),
    Copied(
        f"{_CONSUMER}._drain_messages",
        "534d036692b697d33350c620e63638af239dd5c2cb71307651d8139c97348062",
        "streams/_consumer.py (Consumer.drain_messages and _hand_over)",
    ),
    Copied(
        f"{_RECOVERY}._resume_streams",
        "bde618122767c8755a1e882bbd15685395f8cbbb0a8aa76705ed33ebf1e9ce78",
        "streams/_recovery.py (SeekFirstRecovery.resume_streams)",
    ),
    Copied(
        f"{_RECOVERY}.on_recovery_completed",
        "f101c61e28a0dfcc4ba9d175d138465736c21a201c71950a3b2fb2b127413607",
        "streams/_recovery.py (SeekFirstRecovery.on_recovery_completed)",
    ),
    Copied(
        f"{_RECOVERY}._build_highwaters",
        "471032a91b67fe288888dc49abd138acd506e6ce943ef5924876af76543a811a",
        "streams/_recovery.py (SeekFirstRecovery.build_highwaters, a replacement)",
    ),
    Copied(
        "faust.tables.manager:TableManager.recovery",
        "068e5e263c245282c39d751e412c127a2079219adb806d3691fc1a6925f6629a",
        "hookstream/core/compat/faust.py (TableManager.recovery)",
    ),
    Copied(
        f"{_PRODUCER}.commit_transactions",
        "4172b771a2a50987a16bd60cc33817559f1bd7f79ffd00e6bd795c9fe0d1a293",
        "streams/_transactions.py (Producer.commit_transactions and _commit_one)",
    ),
    Copied(
        f"{_PRODUCER}.maybe_begin_transaction",
        "14a8fb6f9b842821b10a7905bdda35182279401b500b6396c8da7b08885581c8",
        "streams/_transactions.py (Producer.maybe_begin_transaction)",
    ),
    Copied(
        "faust.tables.base:Collection.send_changelog",
        "0f4c39e8dfcbf0c6a2bf3e8595a6ae1c98b0320dc05aa09bc34e98269b28bf0e",
        "streams/_table.py (EagerChangelogTable.send_changelog, a replacement)",
    ),
    Copied(
        "faust.tables.table:Table.on_key_set",
        "3abe59bd1b0359746cdb1834712b81c108d94fca61ab9981ed7bfa06caaa0b7e",
        "streams/_table.py (EagerChangelogTable.on_key_set, a replacement)",
    ),
)
"""Upstream methods hookstream copied (with changes) or replaced: re-read them on a change."""


# -- classes whose private hooks call public ones ------------------------------------------


class App(faust.App):
    """`faust.App` with `on_agent_error` and `new_transport` for its private hooks."""

    async def _on_agent_error(self, agent: Any, exc: BaseException) -> None:
        await self.on_agent_error(agent, exc)

    async def on_agent_error(self, agent: Any, exc: BaseException) -> None:
        """An agent raised `exc` (Faust's default: log it and restart the agent)."""
        await super()._on_agent_error(agent, exc)

    def _new_transport(self) -> Any:
        return self.new_transport()

    def new_transport(self) -> Any:
        """The app's transport (Faust's default: the one its broker URL names)."""
        return super()._new_transport()


class Worker(faust.Worker):
    """`faust.Worker` with `on_stop_signal`, called on SIGTERM and SIGINT."""

    def _on_sigterm(self) -> None:
        self.on_stop_signal()
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self.on_stop_signal()
        super()._on_sigint()

    def on_stop_signal(self) -> None:
        """SIGTERM or SIGINT arrived; mode begins the stop once this returns."""


class Consumer(aiokafka_driver.Consumer):
    """Faust's aiokafka consumer with `drain_messages`, the fetcher's loop."""

    async def _drain_messages(self, fetcher: Any) -> None:
        await self.drain_messages(fetcher)

    async def drain_messages(self, fetcher: Any) -> None:
        """Fetch and hand over messages until `fetcher` or the consumer stops."""
        await super()._drain_messages(fetcher)


class Recovery(FaustRecovery):
    """Faust's table recovery with public hooks for the three private steps it overrides."""

    async def _resume_streams(self, generation_id: int = 0) -> None:
        await self.resume_streams(generation_id)

    async def resume_streams(self, generation_id: int = 0) -> None:
        """Resume the stream partitions once no recovery was needed."""
        await super()._resume_streams(generation_id)

    async def _build_highwaters(
        self, consumer: Any, tps: Any, destination: Any, title: str
    ) -> None:
        await self.build_highwaters(consumer, tps, destination, title)

    async def build_highwaters(self, consumer: Any, tps: Any, destination: Any, title: str) -> None:
        """Fill `destination` with the last offset of each changelog partition in `tps`."""
        await super()._build_highwaters(consumer, tps, destination, title)

    async def _seek_offsets(self, consumer: Any, tps: Any, offsets: Any, title: str) -> None:
        await self.seek_offsets(consumer, tps, offsets, title)

    async def seek_offsets(self, consumer: Any, tps: Any, offsets: Any, title: str) -> None:
        """Seek the changelog partitions `tps` to where their recovery starts."""
        await super()._seek_offsets(consumer, tps, offsets, title)


class TableManager(FaustTableManager):
    """Faust's table manager, with the class of its recovery a class attribute."""

    recovery_class: type[FaustRecovery] = FaustRecovery

    @property
    def recovery(self) -> Any:
        """The recovery service (Faust's property, with `recovery_class`)."""
        if self._recovery is None:
            self._recovery = self.recovery_class(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


# -- the app, the conductor and mode services ---------------------------------------------


def fetcher(app: Any) -> Any:
    """The app's fetcher service (started again after a recovery)."""
    return app._fetcher


def stopped(service: Any) -> Callable[[], bool]:
    """Whether a mode service was told to stop, as a function (as Faust's loop reads it)."""
    is_set: Callable[[], bool] = service._stopped.is_set
    return is_set


def resubscribing(conductor: Any) -> bool:
    """Whether the conductor holds its lock to change subscriptions."""
    return bool(conductor._tp_to_callback_lock.locked())


def channels_of(conductor: Any, tp: Any) -> Iterable[Any]:
    """The channels (topics) that the messages of `tp` are handed to."""
    channels: Iterable[Any] = conductor._tp_index.get(tp, ())
    return channels


# -- the consumer -------------------------------------------------------------------------


async def wait_next_records(consumer: Any, timeout: float) -> tuple[Any, Any]:  # noqa: ASYNC109 - Faust's
    """(records per partition or None, active partitions or None), as `getmany` gets them."""
    result: tuple[Any, Any] = await consumer._wait_next_records(timeout)
    return result


def to_message(consumer: Any, tp: Any, record: Any) -> Any:
    """Faust's message of an aiokafka record."""
    return consumer._to_message(tp, record)


def buffered_partitions(consumer: Any) -> set[Any]:
    """The partitions paused because their buffers are full."""
    partitions: set[Any] = consumer._buffered_partitions
    return partitions


def read_offsets(consumer: Any) -> MutableMapping[Any, int | None]:
    """The offset of the last message handed over, per partition (None: none yet)."""
    offsets: MutableMapping[Any, int | None] = consumer._read_offset
    return offsets


async def add_gap(consumer: Any, tp: Any, offset_from: int, offset_to: int) -> None:
    """Note offsets `offset_from`..`offset_to` of `tp` as done once a later one is acked."""
    await consumer._add_gap(tp, offset_from, offset_to)


def take_commit_due(consumer: Any) -> bool:
    """Whether `broker_commit_every` messages were acked since the last such commit; if so
    the count starts again (the caller commits)."""
    every = consumer._commit_every
    if every is not None and consumer._n_acked >= every:
        consumer._n_acked = 0
        return True
    return False


async def changelog_end_offsets(consumer: Any, tps: list[Any]) -> Mapping[Any, int]:
    """The end offsets of the aiokafka partitions `tps` (read_committed: the last stable
    offsets), asked of the broker from Faust's consumer thread."""
    thread = consumer._thread  # the aiokafka consumer lives in Faust's consumer thread
    ends: Mapping[Any, int] = await thread.call_thread(thread._ensure_consumer().end_offsets, tps)
    return ends


# -- recovery and the transaction manager -------------------------------------------------


def highwater_logtable(recovery: Any, highwaters: Mapping[Any, int], title: str) -> str:
    """Faust's log table of changelog ends."""
    table: str = recovery._highwater_logtable(highwaters, title=title)
    return table


def is_changelog_tp(recovery: Any, tp: Any) -> bool:
    """Whether `tp` is a partition of a table's changelog."""
    return bool(recovery._is_changelog_tp(tp))


async def wait_for(recovery: Any, awaitable: Awaitable[Any], timeout: float) -> None:  # noqa: ASYNC109 - Faust's
    """Await `awaitable` for at most `timeout` seconds, or until the recovery stops."""
    await recovery._wait(awaitable, timeout=timeout)


def set_recovery_ended(recovery: Any) -> None:
    """Mark the recovery as over (Faust's flags and timestamps)."""
    recovery._set_recovery_ended()


def transactional_ids_of(manager: Any, tps: Any) -> set[str]:
    """The transactional ids of the producers of the partitions `tps`."""
    ids: set[str] = manager._tps_to_transactional_ids(tps)
    return ids


async def stop_transactions(manager: Any, transactional_ids: Iterable[str]) -> None:
    """Stop the transactional producers `transactional_ids`."""
    await manager._stop_transactions(transactional_ids)


# -- the producer ------------------------------------------------------------------------


def separate_transaction_state(producer: Any) -> None:
    """Give `producer` transactional producers and locks of its own (Faust keeps them in
    class attributes, shared by every producer of the process)."""
    producer._transaction_producers = {}
    producer._trn_locks = {}


def transaction_producers(producer: Any) -> MutableMapping[str, Any]:
    """The aiokafka producers of `producer`, per transactional id."""
    producers: MutableMapping[str, Any] = producer._transaction_producers
    return producers


def transaction_locks(producer: Any) -> MutableMapping[str, Any]:
    """The lock of each transactional id's commit."""
    locks: MutableMapping[str, Any] = producer._trn_locks
    return locks


# -- stores and tables -------------------------------------------------------------------


def store_get(store: Any, key: Any, default: Any) -> Any:
    """The value of `key` in a serialized store, else `default`, in one read."""
    value = store._get(store._encode_key(key))
    return default if value is None else store._decode_value(value)


def rocksdb_databases(store: Any) -> Mapping[int, Any] | None:
    """A RocksDB store's database per partition; None for another store."""
    databases: Mapping[int, Any] | None = getattr(store, "_dbs", None)
    return databases


def changelog_sent_callback(table: Any) -> Callable[[Any], None]:
    """The table's callback for a sent changelog record (notes its offset for the commit)."""
    callback: Callable[[Any], None] = table._on_changelog_sent
    return callback
