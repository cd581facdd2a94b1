"""A Faust table whose changelog records are produced before the event is done.

Faust's tables queue changelog records in the producer's buffer and publish them from a
background task. Under exactly-once that lets a table write miss the transaction of the
event that made it (the buffer may still hold it when the offsets commit), so a crash
could forget an id the worker already routed. This table keeps its changelog records
until the event's code calls `flush_changelog()`, which hands them to the transaction
producer of the event's partition right away.
"""

from __future__ import annotations

import asyncio
from collections import deque
from functools import partial
from typing import Any, cast

import faust


class EagerChangelogTable(faust.Table[bytes, bytes]):
    """A `faust.Table` whose changelog is published by `flush_changelog()`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unpublished: deque[Any] = deque()

    def send_changelog(
        self,
        partition: int | None,
        key: Any,
        value: Any,
        key_serializer: Any = None,
        value_serializer: Any = None,
    ) -> Any:
        """Prepare the changelog record of a change; `flush_changelog` publishes it."""
        future = self.changelog_topic.as_future_message(
            key=key,
            value=value,
            partition=partition,
            key_serializer=key_serializer or self.key_serializer,
            value_serializer=value_serializer or self.value_serializer,
            callback=self._on_changelog_sent,
            eager_partitioning=True,
        )
        self._unpublished.append(future)
        return future

    async def flush_changelog(self) -> None:
        """Hand every prepared changelog record to the transaction manager (not waiting for
        acks). Not through `Topic.publish_message`: it asks `app.maybe_start_producer()`,
        which yields to the event loop three times per call, a third of the worker's time."""
        topic = self.changelog_topic.get_topic_name()
        transactions = self.app.consumer.transactions
        while self._unpublished:
            future = self._unpublished.popleft()
            message = future.message
            sent = cast(
                "asyncio.Future[Any]",  # aiokafka's delivery future, typed loosely by Faust
                await transactions.send(
                    topic, message.key, message.value, message.partition, None, message.headers
                ),
            )
            sent.add_done_callback(partial(self._changelog_delivered, future))

    def _changelog_delivered(self, future: Any, sent: asyncio.Future[Any]) -> None:
        if sent.cancelled():
            future.cancel()
        elif (error := sent.exception()) is not None:
            future.set_exception(error)  # the transaction fails too: the worker stops
        else:
            future.set_result(sent.result())
            self._on_changelog_sent(future)  # Faust: remember the offset on commit
