"""Helpers for the operator-command tests: a private set of topic names, the CLI in a thread
(the command runs its own event loop), producing records with headers and times."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from click.testing import CliRunner, Result

from hookstream.cli import main
from tests.support.kafka import unique_name


@dataclass(frozen=True)
class OpsEnv:
    """The settings (as environment variables) of one test: its own topics and prefix."""

    bootstrap: str
    prefix: str = field(default_factory=lambda: unique_name("ops"))
    partitions: int = 3

    @property
    def raw_topic(self) -> str:
        return f"{self.prefix}.raw"

    @property
    def dlq_topic(self) -> str:
        return f"{self.prefix}.raw.dlq"

    @property
    def data_events_topic(self) -> str:
        return f"{self.prefix}.data-events"

    @property
    def data_events_dlq_topic(self) -> str:
        return f"{self.prefix}.data-events.dlq"

    @property
    def route_prefix(self) -> str:
        return f"{self.prefix}.routed."

    def environ(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "HOOKSTREAM_RAW_TOPIC": self.raw_topic,
            "HOOKSTREAM_DLQ_TOPIC": self.dlq_topic,
            "HOOKSTREAM_DATA_EVENTS_TOPIC": self.data_events_topic,
            "HOOKSTREAM_DATA_EVENTS_DLQ_TOPIC": self.data_events_dlq_topic,
            "HOOKSTREAM_ROUTE_PREFIX": self.route_prefix,
            "HOOKSTREAM_TOPIC_PARTITIONS": str(self.partitions),
            "HOOKSTREAM_TOPIC_REPLICATION": "1",
        }

    async def cli(self, *args: str) -> Result:
        """`hookstream ARGS` with this environment, in a thread (it runs asyncio itself)."""
        runner = CliRunner()
        return await asyncio.to_thread(
            runner.invoke, main, list(args), env=self.environ(), catch_exceptions=False
        )


@dataclass(frozen=True)
class Out:
    """A record to produce."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp_ms: int | None = None
    partition: int | None = None


async def produce(bootstrap: str, topic: str, records: list[Out]) -> None:
    """Produce records and wait for every acknowledgement."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(
                topic,
                value=record.value,
                key=record.key,
                partition=record.partition,
                timestamp_ms=record.timestamp_ms,
                headers=record.headers,
            )
    finally:
        await producer.stop()
