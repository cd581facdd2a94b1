"""The webhook sender against a real HTTP endpoint (uvicorn on a free port)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hookstream.ops.send_webhook import send_webhook_command
from hookstream.sandbox import SendPlan, build_notification, deliver, encode, send_webhooks
from hookstream.sandbox.server import serving

SECRET = "webhook-secret"


@dataclass
class Receiver:
    """An endpoint that records every delivery and answers as told: `script` gives the
    statuses of a notification's attempts in order (then 200); status 0 means hang."""

    script: list[int] = field(default_factory=list)
    hang_seconds: float = 1.0
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    _attempts: Counter[str] = field(default_factory=Counter)

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        self.received.append((dict(request.headers), body))
        key = str(orjson.loads(body).get("id"))
        attempt = self._attempts[key]
        self._attempts[key] += 1
        status = self.script[attempt] if attempt < len(self.script) else 200
        if status == 0:
            await asyncio.sleep(self.hang_seconds)
            status = 200
        return Response(status_code=status)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(body) for _headers, body in self.received]


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def url(receiver: Receiver) -> Iterator[str]:
    app = Starlette(routes=[Route("/webhooks/intercom", receiver.endpoint, methods=["POST"])])
    with serving(app) as base_url:
        yield f"{base_url}/webhooks/intercom"


async def test_a_delivery_is_signed_and_sent_with_intercoms_headers(
    receiver: Receiver, url: str
) -> None:
    notification = build_notification("conversation.user.created")
    async with httpx.AsyncClient() as client:
        delivery = await deliver(client, url, notification, SECRET)

    assert delivery.delivered
    assert [attempt.status for attempt in delivery.attempts] == [200]
    ((headers, body),) = receiver.received
    assert body == encode(notification)
    expected = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert headers["x-hub-signature"] == expected
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert headers["user-agent"] == "intercom-parrot-service-client/1.0"


async def test_a_500_is_retried_once_with_the_same_id_and_delivery_attempts_plus_one(
    receiver: Receiver, url: str
) -> None:
    receiver.script = [500]
    notification = build_notification("contact.user.created")
    async with httpx.AsyncClient() as client:
        delivery = await deliver(client, url, notification, SECRET, retry_delay=0.05)

    assert delivery.delivered
    assert delivery.retried
    assert [attempt.status for attempt in delivery.attempts] == [500, 200]
    first, second = receiver.bodies
    assert first["id"] == second["id"] == notification["id"]
    assert (first["delivery_attempts"], second["delivery_attempts"]) == (1, 2)
    assert first["data"] == second["data"]
    for headers, body in receiver.received:  # each attempt is signed over its own body
        expected = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
        assert headers["x-hub-signature"] == expected


async def test_a_delivery_failing_twice_is_given_up_after_one_retry(
    receiver: Receiver, url: str
) -> None:
    receiver.script = [503, 502, 200]
    async with httpx.AsyncClient() as client:
        delivery = await deliver(
            client, url, build_notification("ticket.created"), SECRET, retry_delay=0
        )

    assert not delivery.delivered
    assert [attempt.outcome for attempt in delivery.attempts] == ["503", "502"]
    assert len(receiver.received) == 2


async def test_a_410_is_never_retried(receiver: Receiver, url: str) -> None:
    receiver.script = [410]
    async with httpx.AsyncClient() as client:
        delivery = await deliver(
            client, url, build_notification("ticket.created"), SECRET, retry_delay=0
        )

    assert [attempt.status for attempt in delivery.attempts] == [410]
    assert len(receiver.received) == 1


async def test_an_answer_slower_than_the_wait_counts_as_failed_and_is_retried(
    receiver: Receiver, url: str
) -> None:
    receiver.script = [0]  # hang on the first attempt
    receiver.hang_seconds = 1.0
    async with httpx.AsyncClient() as client:
        delivery = await deliver(
            client, url, build_notification("ping"), SECRET, wait_seconds=0.2, retry_delay=0
        )

    assert [attempt.outcome for attempt in delivery.attempts] == ["timeout", "200"]
    assert delivery.attempts[0].latency < 0.9
    assert delivery.notification_id is None  # ping has no id


async def test_a_run_sends_the_asked_share_of_duplicates_after_their_originals(
    receiver: Receiver, url: str
) -> None:
    plan = SendPlan(
        url=url,
        secret=SECRET,
        count=40,
        topics=("conversation.user.created", "contact.user.created"),
        duplicates=0.25,
        concurrency=8,
        seed=3,
    )

    summary = await send_webhooks(plan)

    data = summary.as_dict()
    assert (data["sent"], data["duplicates"], data["delivered"], data["ok_2xx"]) == (40, 10, 40, 40)
    assert data["by_status"] == {"200": 40}
    ids = [body["id"] for body in receiver.bodies]
    assert len(ids) == 40
    assert len(set(ids)) == 30
    for position, body in enumerate(receiver.bodies):
        earlier = [seen for seen in receiver.bodies[:position] if seen["id"] == body["id"]]
        assert body["delivery_attempts"] == len(earlier) + 1  # re-deliveries come after
    assert Counter(body["topic"] for body in receiver.bodies if body["delivery_attempts"] == 1) == {
        "conversation.user.created": 15,
        "contact.user.created": 15,
    }


async def test_a_run_keeps_to_the_asked_rate(url: str) -> None:
    plan = SendPlan(url=url, secret=SECRET, count=10, rate=40.0)

    summary = await send_webhooks(plan)

    assert summary.as_dict()["delivered"] == 10
    assert summary.elapsed >= 9 / 40


def test_the_command_sends_a_body_file_as_is_and_prints_a_summary(
    receiver: Receiver, url: str, tmp_path: Path
) -> None:
    body = b'{"type": "notification_event", "id": "notif_1", "topic": "ping",\n "data": {}}'
    body_file = tmp_path / "body.json"
    body_file.write_bytes(body)

    result = CliRunner().invoke(
        send_webhook_command,
        ["--url", url, "--secret", SECRET, "--body-file", str(body_file), "-n", "2", "--json"],
    )

    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.output)
    assert (summary["sent"], summary["delivered"], summary["by_status"]) == (2, 2, {"200": 2})
    assert [received for _headers, received in receiver.received] == [body, body]


def test_the_command_reports_failures_and_exits_1(receiver: Receiver, url: str) -> None:
    receiver.script = [500, 500]

    result = CliRunner().invoke(
        send_webhook_command,
        ["--url", url, "--secret", SECRET, "--topic", "ticket.created", "--retry-delay", "0"],
    )

    assert result.exit_code == 1
    assert "1 retried, 1 failed" in result.output
    assert "500: 2" in result.output


def test_the_command_refuses_unknown_topics_and_a_missing_secret(url: str) -> None:
    unknown = CliRunner().invoke(
        send_webhook_command, ["--url", url, "--secret", SECRET, "--topic", "nope.nothing"]
    )
    no_secret = CliRunner(env={"INTERCOM_CLIENT_SECRET": None}).invoke(
        send_webhook_command, ["--url", url]
    )

    assert unknown.exit_code == 2
    assert "nope.nothing" in unknown.output
    assert no_secret.exit_code == 2
    assert "INTERCOM_CLIENT_SECRET" in no_secret.output
