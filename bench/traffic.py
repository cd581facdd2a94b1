"""Steady traffic into a running pipeline, and a ledger of every answer it got.

Webhooks arrive as Intercom sends them (signed, one retry of a failed delivery with
`delivery_attempts` + 1, a share of redeliveries of notifications already accepted), mixed
with bad ones (wrong signature, not JSON, not a notification, oversized). Data events arrive
through `POST /events` (valid, and invalid lists that must be refused with 422) and straight
on the Kafka topic (invalid ones, which must end in the dead-letter topic).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from bench import _security
from hookstream.sandbox.notifications import build_notification, encode, redelivery
from hookstream.sandbox.signing import webhook_headers

TOPICS = (
    "conversation.user.created",
    "conversation.admin.replied",
    "contact.user.created",
    "ticket.created",
)
RETRY_DELAY_SECONDS = 1.0  # Intercom waits about a minute; the suite scales time down
# Requests in flight at most. Below the client's pool size, so that no request waits in the
# pool: httpcore matches waiting requests to connections in O(waiting x connections) on every
# request and answer, and a backlog there (after an ingest restart) took the generator's CPU
# and never cleared at the full scale's rates.
MAX_IN_FLIGHT = 48


@dataclass
class Ledger:
    """What was sent and what came back."""

    accepted: dict[str, str] = field(default_factory=dict)  # notification id -> topic
    webhook_statuses: Counter[int] = field(default_factory=Counter)
    webhook_unanswered: int = 0
    retries: int = 0
    redeliveries: int = 0
    bad_webhooks: Counter[str] = field(default_factory=Counter)
    bad_webhook_wrong_status: list[tuple[str, int]] = field(default_factory=list)
    events_accepted: list[dict[str, Any]] = field(default_factory=list)
    event_statuses: Counter[int] = field(default_factory=Counter)
    invalid_lists_refused: int = 0
    invalid_lists_wrong_status: list[int] = field(default_factory=list)
    invalid_on_kafka: list[bytes] = field(default_factory=list)
    unexpected_5xx: list[tuple[str, int]] = field(default_factory=list)

    def note_status(self, what: str, status: int) -> None:
        """Record a 5xx other than the documented 503."""
        if status >= 500 and status != 503:
            self.unexpected_5xx.append((what, status))


@dataclass
class Traffic:
    """Sends webhooks and data events at fixed rates until stopped."""

    ingest_url: str
    secret: str
    api_token: str
    bootstrap: str
    data_events_topic: str
    webhooks_per_second: float
    events_per_second: float
    oversized_bytes: int
    redelivery_share: float = 0.1
    ledger: Ledger = field(default_factory=Ledger)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _rng: random.Random = field(default_factory=lambda: random.Random(7))  # noqa: S311
    _pending: set[asyncio.Task[None]] = field(default_factory=set)
    _slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_IN_FLIGHT))

    async def run(self) -> None:
        """Send until `stop()`; then wait for the retries still scheduled."""
        limits = httpx.Limits(
            max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT
        )
        async with httpx.AsyncClient(timeout=10, limits=limits) as client:
            await asyncio.gather(self._webhooks(client), self._events(client))
            if self._pending:
                await asyncio.gather(*self._pending)

    def stop(self) -> None:
        """Stop sending new traffic."""
        self._stop.set()

    async def _paced(self, rate: float) -> Any:
        interval = 1.0 / rate
        start = time.monotonic()
        for tick in itertools.count():
            if self._stop.is_set():
                return
            delay = start + tick * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            yield tick

    async def _webhooks(self, client: httpx.AsyncClient) -> None:
        sent: list[dict[str, Any]] = []
        async for tick in self._paced(self.webhooks_per_second):
            if tick % 10 == 9:
                self._spawn(self._bad_webhook(client, tick))
                continue
            if sent and self._rng.random() < self.redelivery_share:
                notification = redelivery(self._rng.choice(sent))
                self.ledger.redeliveries += 1
            else:
                notification = build_notification(TOPICS[tick % len(TOPICS)])
                sent.append(notification)
            self._spawn(self._deliver(client, notification, retry=True))

    async def _post(self, client: httpx.AsyncClient, path: str, **request: Any) -> httpx.Response:
        async with self._slots:
            return await client.post(f"{self.ingest_url}{path}", **request)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(
        self, client: httpx.AsyncClient, notification: dict[str, Any], *, retry: bool
    ) -> None:
        body = encode(notification)
        try:
            response = await self._post(
                client,
                "/webhooks/intercom",
                content=body,
                headers=webhook_headers(body, self.secret),
            )
        except httpx.TransportError:
            self.ledger.webhook_unanswered += 1
            status = None
        else:
            status = response.status_code
            self.ledger.webhook_statuses[status] += 1
            self.ledger.note_status("webhook", status)
            if status == 200:
                self.ledger.accepted[notification["id"]] = notification["topic"]
                return
        if retry:  # Intercom retries a failed delivery once, later, attempts + 1
            self.ledger.retries += 1
            await asyncio.sleep(RETRY_DELAY_SECONDS)
            await self._deliver(client, redelivery(notification), retry=False)

    async def _bad_webhook(self, client: httpx.AsyncClient, tick: int) -> None:
        good = encode(build_notification("conversation.user.created"))
        not_a_notification = orjson.dumps({"type": "something", "id": "x", "topic": "t"})
        oversized = encode(build_notification("conversation.user.created")) + (
            b" " * self.oversized_bytes
        )
        kinds = {
            "bad_signature": (good, webhook_headers(good, "wrong-secret"), 401),
            "not_json": (b"{nope", webhook_headers(b"{nope", self.secret), 400),
            "not_a_notification": (
                not_a_notification,
                webhook_headers(not_a_notification, self.secret),
                400,
            ),
            "oversized": (oversized, webhook_headers(oversized, self.secret), 413),
        }
        kind = list(kinds)[(tick // 10) % len(kinds)]
        body, headers, expected = kinds[kind]
        try:
            response = await self._post(client, "/webhooks/intercom", content=body, headers=headers)
        except httpx.TransportError:
            return  # the ingest was down (being killed): nothing to judge
        self.ledger.bad_webhooks[kind] += 1
        self.ledger.note_status(kind, response.status_code)
        if response.status_code != expected:
            self.ledger.bad_webhook_wrong_status.append((kind, response.status_code))

    async def _events(self, client: httpx.AsyncClient) -> None:
        producer = AIOKafkaProducer(
            **_security.connection(self.bootstrap).client_config("hookstream-bench"), acks="all"
        )
        await producer.start()
        try:
            async for tick in self._paced(self.events_per_second):
                if tick % 7 == 6:
                    self._spawn(self._invalid_on_kafka(producer, tick))
                elif tick % 5 == 4:
                    self._spawn(self._invalid_list(client))
                else:
                    self._spawn(self._valid_event(client, tick))
        finally:
            await producer.stop()

    async def _valid_event(self, client: httpx.AsyncClient, tick: int) -> None:
        event = {
            "event_name": "ordered-item",
            "created_at": int(time.time()),
            "user_id": f"user-{tick % 50}",
            "metadata": {"order_id": f"o-{uuid.uuid4().hex[:12]}", "tick": tick},
        }
        for _attempt in range(30):  # a producer keeps retrying what was not accepted
            try:
                response = await self._post(
                    client,
                    "/events",
                    json=event,
                    headers={"Authorization": f"Bearer {self.api_token}"},
                )
            except httpx.TransportError:
                await asyncio.sleep(RETRY_DELAY_SECONDS)
                continue
            self.ledger.event_statuses[response.status_code] += 1
            self.ledger.note_status("event", response.status_code)
            if response.status_code == 202:
                self.ledger.events_accepted.append(event)
                return
            await asyncio.sleep(RETRY_DELAY_SECONDS)

    async def _invalid_list(self, client: httpx.AsyncClient) -> None:
        events = [
            {"event_name": "ok", "created_at": int(time.time()), "user_id": "u"},
            {"event_name": "bad", "created_at": "yesterday", "user_id": "u", "email": "e"},
        ]
        try:
            response = await self._post(
                client,
                "/events",
                json=events,
                headers={"Authorization": f"Bearer {self.api_token}"},
            )
        except httpx.TransportError:
            return
        self.ledger.note_status("invalid events", response.status_code)
        if response.status_code == 422:
            self.ledger.invalid_lists_refused += 1
        else:
            self.ledger.invalid_lists_wrong_status.append(response.status_code)

    async def _invalid_on_kafka(self, producer: AIOKafkaProducer, tick: int) -> None:
        key = f"invalid-{tick}-{uuid.uuid4().hex[:6]}".encode()
        value = orjson.dumps({"event_name": "", "created_at": -1, "user_id": key.decode()})
        try:
            await producer.send_and_wait(self.data_events_topic, value, key=key)
        except KafkaError:
            return  # the broker was down: never written, nothing to find in the DLQ
        self.ledger.invalid_on_kafka.append(key)
