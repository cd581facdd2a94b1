"""Fill a dead-letter topic with N dead letters, for measuring `hookstream replay` and `tail`.

    python -m tests.ops.seed_dlq BOOTSTRAP DLQ_TOPIC SOURCE_TOPIC N [PARTITIONS]

Creates both topics when missing; every third record has the reason `route-failed`, the
others `unparseable`; values are ~1 KiB notifications.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def seed(bootstrap: str, dlq: str, source: str, count: int, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in (dlq, source) if t not in existing]
        if missing:
            await admin.create_topics([NewTopic(t, partitions, 1) for t in missing])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        for n in range(count):
            reason = b"route-failed" if n % 3 == 0 else b"unparseable: not JSON"
            value = json.dumps({"id": f"notif_{n}", "pad": "x" * 1000}).encode()
            headers = [
                ("intercom-topic", b"conversation.user.created"),
                ("hookstream-dlq-reason", reason),
                ("hookstream-dlq-source-topic", source.encode()),
            ]
            futures.append(
                await producer.send(dlq, value, key=f"notif_{n}".encode(), headers=headers)
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


if __name__ == "__main__":
    bootstrap, dlq, source, count, *rest = sys.argv[1:]
    started = time.monotonic()
    asyncio.run(seed(bootstrap, dlq, source, int(count), int(rest[0]) if rest else 3))
    print(f"seeded {count} dead letters into {dlq} in {time.monotonic() - started:.1f} s")
