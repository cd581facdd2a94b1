"""The baseline of the streams benchmark: a plain aiokafka consume-and-produce loop.

It does what the worker does minus the state: parse the notification, key by the item id,
produce to `<prefix><topic>` with the contract's headers, commit the batch's offsets after
the producer acknowledged it (at-least-once; no dedup table, no transactions).

    python -m bench.streams_baseline --bootstrap HOST:PORT --raw-topic T --group G --prefix P
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench import _security


def _key(document: dict[str, object], record_key: bytes | None) -> bytes | None:
    data = document.get("data")
    item = data.get("item") if isinstance(data, dict) else None
    item_id = item.get("id") if isinstance(item, dict) else None
    if item_id is not None:
        return str(item_id).encode()
    notification_id = document.get("id")
    return str(notification_id).encode() if notification_id is not None else record_key


async def run(bootstrap: str, raw_topic: str, group: str, prefix: str) -> None:
    """Consume `raw_topic` and route every record until SIGTERM."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    consumer = AIOKafkaConsumer(
        raw_topic,
        **_security.connection(bootstrap).client_config("hookstream-bench"),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(
        **_security.connection(bootstrap).client_config("hookstream-bench"), acks="all"
    )
    await consumer.start()
    await producer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=1000)
            pending = []
            for records in batch.values():
                for record in records:
                    document = orjson.loads(record.value)
                    headers = [
                        ("intercom-notification-id", str(document.get("id")).encode()),
                        ("intercom-topic", str(document["topic"]).encode()),
                        *[(n, v) for n, v in record.headers if n == "hookstream-received-at"],
                    ]
                    pending.append(
                        await producer.send(
                            f"{prefix}{document['topic']}",
                            record.value,
                            key=_key(document, record.key),
                            headers=headers,
                        )
                    )
            if pending:
                await asyncio.gather(*pending)
                await consumer.commit()
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--raw-topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--prefix", required=True)
    args = parser.parse_args()
    asyncio.run(run(args.bootstrap, args.raw_topic, args.group, args.prefix))


if __name__ == "__main__":
    main()
