"""Deliver webhooks as Intercom does, one at a time (`deliver`) or as a run (`send_webhooks`).

Intercom POSTs the signed body and waits at most 5 s for a 2xx. A failed delivery (non-2xx,
timeout, connection error) is retried once about a minute later with the same notification id
and `delivery_attempts` incremented; a 410 disables the subscription and is never retried.
A run sends N notifications at a rate, with a concurrency cap and a share of duplicates:
re-deliveries of an already delivered notification (same id, `delivery_attempts` + 1), the
duplicates Intercom's retries produce when an answer comes too late.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from hookstream.sandbox.notifications import build_notification, encode, redelivery
from hookstream.sandbox.signing import webhook_headers

INTERCOM_TIMEOUT_SECONDS = 5.0
INTERCOM_RETRY_DELAY_SECONDS = 60.0
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Attempt:
    """One POST of a delivery: its status (None on a timeout or network error) and latency."""

    number: int
    status: int | None
    latency: float
    error: str | None = None

    @property
    def outcome(self) -> str:
        """The status as text, or the kind of failure (`timeout`, `error`)."""
        return str(self.status) if self.status is not None else (self.error or "error")

    @property
    def ok(self) -> bool:
        """Whether the endpoint answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Delivery:
    """A notification's delivery: every attempt, first to last."""

    notification_id: str | None
    topic: str | None
    attempts: list[Attempt] = field(default_factory=list)
    duplicate: bool = False

    @property
    def delivered(self) -> bool:
        """Whether the last attempt got a 2xx."""
        return bool(self.attempts) and self.attempts[-1].ok

    @property
    def retried(self) -> bool:
        """Whether it took more than one attempt."""
        return len(self.attempts) > 1


def _next_body(body: bytes | dict[str, Any]) -> bytes | dict[str, Any]:
    """The body of the next attempt: `delivery_attempts` + 1, the same id."""
    if isinstance(body, dict):
        return redelivery(body)
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    return redelivery(decoded) if isinstance(decoded, dict) else body


async def deliver(
    client: httpx.AsyncClient,
    url: str,
    notification: bytes | dict[str, Any],
    secret: bytes | str,
    *,
    retries: int = 1,
    retry_delay: float = INTERCOM_RETRY_DELAY_SECONDS,
    wait_seconds: float = INTERCOM_TIMEOUT_SECONDS,
    gate: asyncio.Semaphore | None = None,
    sleep: Sleep = asyncio.sleep,
    duplicate: bool = False,
) -> Delivery:
    """Deliver one notification (a dict, or raw body bytes sent as they are) the way
    Intercom does; `retries` more attempts after `retry_delay` when one fails (not on 410).
    `wait_seconds` is how long one attempt waits for an answer; `gate` caps the POSTs in
    flight across deliveries (it is not held while waiting for a retry)."""
    body = notification
    decoded = notification if isinstance(notification, dict) else _peek(notification)
    delivery = Delivery(decoded.get("id"), decoded.get("topic"), duplicate=duplicate)
    for number in range(1, retries + 2):
        raw = encode(body) if isinstance(body, dict) else body
        if gate is None:
            attempt = await _post(client, url, raw, secret, number=number, wait=wait_seconds)
        else:
            async with gate:
                attempt = await _post(client, url, raw, secret, number=number, wait=wait_seconds)
        delivery.attempts.append(attempt)
        if attempt.ok or attempt.status == 410 or number > retries:
            break
        await sleep(retry_delay)
        body = _next_body(body)
    return delivery


def _peek(body: bytes) -> dict[str, Any]:
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


async def _post(
    client: httpx.AsyncClient,
    url: str,
    raw: bytes,
    secret: bytes | str,
    *,
    number: int,
    wait: float,
) -> Attempt:
    started = time.perf_counter()
    try:
        response = await client.post(
            url, content=raw, headers=webhook_headers(raw, secret), timeout=wait
        )
    except httpx.TimeoutException:
        return Attempt(number, None, time.perf_counter() - started, "timeout")
    except httpx.TransportError as exc:
        return Attempt(number, None, time.perf_counter() - started, type(exc).__name__)
    return Attempt(number, response.status_code, time.perf_counter() - started)


@dataclass(frozen=True)
class SendPlan:
    """What `send_webhooks` sends: N notifications of the topics (round robin), or N times a
    body read from a file, at a rate (None: as fast as the concurrency allows)."""

    url: str
    secret: bytes | str
    count: int = 1
    topics: Sequence[str] = ("conversation.user.created",)
    body: bytes | None = None
    rate: float | None = None
    concurrency: int = 10
    duplicates: float = 0.0
    retries: int = 1
    retry_delay: float = INTERCOM_RETRY_DELAY_SECONDS
    wait_seconds: float = INTERCOM_TIMEOUT_SECONDS
    app_id: str = "sandbox1"
    seed: int | None = None


@dataclass
class Summary:
    """The result of a run."""

    deliveries: list[Delivery]
    elapsed: float

    def as_dict(self) -> dict[str, Any]:
        """Counts and latency percentiles as JSON."""
        attempts = [attempt for delivery in self.deliveries for attempt in delivery.attempts]
        latencies = sorted(attempt.latency for attempt in attempts)
        return {
            "sent": len(self.deliveries),
            "duplicates": sum(delivery.duplicate for delivery in self.deliveries),
            "attempts": len(attempts),
            "delivered": sum(delivery.delivered for delivery in self.deliveries),
            "failed": sum(not delivery.delivered for delivery in self.deliveries),
            "retried": sum(delivery.retried for delivery in self.deliveries),
            "ok_2xx": sum(attempt.ok for attempt in attempts),
            "by_status": dict(sorted(Counter(attempt.outcome for attempt in attempts).items())),
            "latency_p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
            "latency_p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
            "elapsed_s": round(self.elapsed, 3),
            "rate_per_s": round(len(attempts) / self.elapsed, 1) if self.elapsed else 0.0,
        }

    def format(self) -> str:
        """A readable one-screen summary."""
        data = self.as_dict()
        statuses = ", ".join(f"{status}: {count}" for status, count in data["by_status"].items())
        return (
            f"sent {data['sent']} ({data['duplicates']} duplicates), "
            f"{data['attempts']} attempts, {data['ok_2xx']} answered 2xx, "
            f"{data['retried']} retried, {data['failed']} failed\n"
            f"by status: {statuses or '-'}\n"
            f"latency p50 {data['latency_p50_ms']} ms, p99 {data['latency_p99_ms']} ms; "
            f"{data['elapsed_s']} s, {data['rate_per_s']} attempts/s"
        )


def _percentile(ordered: list[float], share: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


def _schedule(count: int, duplicates: float, rng: random.Random) -> list[int | None]:
    """Per send, None for a new notification or the index of the earlier send it repeats."""
    wanted = round(count * duplicates)
    positions = set(rng.sample(range(1, count), min(wanted, max(count - 1, 0))))
    plan: list[int | None] = []
    originals: list[int] = []
    for index in range(count):
        if index in positions and originals:
            plan.append(rng.choice(originals))
        else:
            plan.append(None)
            originals.append(index)
    return plan


async def send_webhooks(plan: SendPlan, client: httpx.AsyncClient | None = None) -> Summary:
    """Run `plan`; with no `client`, one is opened for the run and closed after it."""
    if client is not None:
        return await _run(plan, client)
    limits = httpx.Limits(max_connections=plan.concurrency)
    async with httpx.AsyncClient(limits=limits) as own:
        return await _run(plan, own)


async def _run(plan: SendPlan, client: httpx.AsyncClient) -> Summary:
    rng = random.Random(plan.seed)  # noqa: S311 - test traffic, not cryptography
    schedule = _schedule(plan.count, plan.duplicates, rng)
    topic_cycle = itertools.cycle(plan.topics)
    gate = asyncio.Semaphore(plan.concurrency)
    bodies: list[bytes | dict[str, Any]] = []
    done = [asyncio.Event() for _ in schedule]
    started = time.perf_counter()

    async def one(index: int, repeats: int | None) -> Delivery:
        if plan.rate:
            await asyncio.sleep(max(started + index / plan.rate - time.perf_counter(), 0))
        body = bodies[index]
        previous = waits_for[index]
        if previous is not None:
            await done[previous].wait()
        try:
            return await deliver(
                client,
                plan.url,
                body,
                plan.secret,
                retries=plan.retries,
                retry_delay=plan.retry_delay,
                wait_seconds=plan.wait_seconds,
                gate=gate,
                duplicate=repeats is not None,
            )
        finally:
            done[index].set()

    # A duplicate re-delivers the latest send of its notification (delivery_attempts + 1)
    # once that send is done, so a notification's deliveries arrive in attempt order.
    waits_for: list[int | None] = []
    latest: dict[int, int] = {}
    for index, repeats in enumerate(schedule):
        if repeats is None:
            waits_for.append(None)
            bodies.append(
                plan.body
                if plan.body is not None
                else build_notification(next(topic_cycle), app_id=plan.app_id)
            )
            continue
        previous = latest.get(repeats, repeats)
        waits_for.append(previous)
        original = bodies[previous]
        bodies.append(redelivery(original) if isinstance(original, dict) else original)
        latest[repeats] = index
    deliveries = await asyncio.gather(
        *(one(index, repeats) for index, repeats in enumerate(schedule))
    )
    return Summary(list(deliveries), time.perf_counter() - started)
