"""Several records into Kafka together or not at all: one Kafka transaction per call, for
`POST /events` (the webhook path never comes here: it keeps the plain idempotent producer).

The producer's transactional id is `<HOOKSTREAM_INGEST_TRANSACTIONAL_ID_PREFIX><host>-<slot>`:
the pod's host name and the slot of the spool file this process holds (an exclusive lock), so
no two live ingest processes share one. A process restarted in the same pod (same host name,
and the slot its predecessor's death freed) reuses its predecessor's id: starting the producer
fences that one and aborts its open transaction at once. An id that no process takes again
(a pod replaced under a new name) has its open transaction aborted by the broker after
`transaction_timeout_ms`; until then read_committed consumers of that partition wait.

Transactions run one at a time (a producer has one open transaction); a failure aborts the
transaction, so a read_committed consumer sees none of its records.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, ProducerFenced

from hookstream.core.contract import Headers
from hookstream.core.kafka import KafkaConnection
from hookstream.core.logs import get_logger

log = get_logger(__name__)


class Record(Protocol):
    """What a transaction sends: a record for Kafka."""

    @property
    def topic(self) -> str: ...
    @property
    def key(self) -> bytes: ...
    @property
    def value(self) -> bytes: ...
    @property
    def headers(self) -> Headers: ...


def transactional_id(prefix: str, slot: int) -> str:
    """The transactional id of the process holding spool slot `slot` on this host."""
    return f"{prefix}{socket.gethostname()}-{slot}"


class TransactionalProducer:
    """Owns one transactional producer, started on first use and rebuilt after a failure."""

    def __init__(
        self,
        connection: KafkaConnection,
        transactional_id: str,
        *,
        wait_seconds: float,
        transaction_timeout_ms: int,
        max_request_bytes: int,
        request_timeout_ms: int,
    ) -> None:
        self.transactional_id = transactional_id
        self._connection = connection
        self._wait_seconds = wait_seconds
        self._options = {
            "transaction_timeout_ms": transaction_timeout_ms,
            "max_request_size": max_request_bytes,
            "request_timeout_ms": request_timeout_ms,
        }
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def send_all(self, records: Sequence[Record]) -> None:
        """Return once every record is committed in one transaction. Raises the broker's
        `KafkaError` (or `TimeoutError` past the wait) once the transaction is aborted, or
        its outcome unknown: either way no read_committed consumer sees a part of it
        (an unknown one is aborted by the next start of this transactional id)."""
        async with self._lock:
            try:
                async with asyncio.timeout(self._wait_seconds):
                    producer = await self._started()
                    await self._transaction(producer, records)
            except (KafkaError, TimeoutError):
                await self.close()
                raise

    async def _transaction(self, producer: AIOKafkaProducer, records: Sequence[Record]) -> None:
        await producer.begin_transaction()
        try:
            sent = [
                await producer.send(r.topic, r.value, key=r.key, headers=r.headers) for r in records
            ]
            await asyncio.gather(*sent)
        except BaseException:
            # Bounded: a Kafka that does not answer has the broker abort it after
            # transaction_timeout_ms, or the next start of this id does.
            with contextlib.suppress(KafkaError, ProducerFenced, TimeoutError):
                await asyncio.wait_for(
                    asyncio.shield(producer.abort_transaction()), self._wait_seconds
                )
            raise
        await producer.commit_transaction()

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = self._connection.transactional_producer(
                "hookstream-ingest-events", self.transactional_id, **self._options
            )
            try:
                await producer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
            log.info("events_producer_started", transactional_id=self.transactional_id)
        return self._producer

    async def close(self) -> None:
        """Stop the producer (an open transaction is aborted by the next start of the same
        id, or by the broker's timeout). Closing twice is harmless."""
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), self._wait_seconds)
