"""The Intercom client against `httpx.MockTransport`: what it sends, and how each answer
becomes a result or the error class that decides retry, dead letter or stop."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
import pytest

from hookstream.core.settings import SinkSettings
from hookstream.sinks.client import IntercomClient, limits_from, timeout_from
from hookstream.sinks.errors import (
    AccessDenied,
    EventRejected,
    NetworkError,
    RateLimited,
    SendFailed,
    ServerError,
)
from hookstream.sinks.ratelimit import RateHeaders

BODY = orjson.dumps({"event_name": "x", "created_at": 1, "user_id": "1"})
RATE = {"X-RateLimit-Limit": "1666", "X-RateLimit-Remaining": "1665", "X-RateLimit-Reset": "20"}


def settings(**overrides: object) -> SinkSettings:
    values: dict[str, object] = {
        "intercom_access_token": "tok-123",
        "intercom_api_base_url": "https://intercom.test/",
        "hookstream_sink_concurrency": 7,
        "hookstream_sink_request_timeout_seconds": 3.5,
    }
    values.update(overrides)
    return SinkSettings(**values)  # type: ignore[arg-type]


def client_answering(
    handler: Callable[[httpx.Request], httpx.Response], **overrides: object
) -> IntercomClient:
    return IntercomClient(settings(**overrides), transport=httpx.MockTransport(handler))


def error_list(code: str, message: str) -> dict[str, object]:
    return {
        "type": "error.list",
        "request_id": "r1",
        "errors": [{"code": code, "message": message}],
    }


async def test_a_call_posts_the_body_to_events_with_intercoms_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, headers=RATE)

    async with client_answering(handler) as client:
        accepted = await client.send(BODY)
    assert accepted.status == 202
    assert accepted.rate == RateHeaders(1666, 1665, 20.0)
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == "https://intercom.test/events"
    assert request.content == BODY
    assert request.headers["authorization"] == "Bearer tok-123"
    assert request.headers["intercom-version"] == "2.14"
    assert request.headers["accept"] == "application/json"
    assert request.headers["content-type"] == "application/json"


def test_the_region_picks_the_host_when_no_base_url_is_set() -> None:
    client = IntercomClient(settings(intercom_api_base_url=None, intercom_region="eu"))
    assert client.base_url == "https://api.eu.intercom.io"


def test_timeouts_and_pool_limits_come_from_the_settings() -> None:
    assert timeout_from(settings()) == httpx.Timeout(3.5)
    limits = limits_from(settings())
    assert limits.max_connections == 7
    assert limits.max_keepalive_connections == 7


@pytest.mark.parametrize(
    ("status", "kind", "retriable"),
    [
        (400, EventRejected, False),
        (404, EventRejected, False),
        (422, EventRejected, False),
        (401, AccessDenied, False),
        (403, AccessDenied, False),
        (408, ServerError, True),
        (409, ServerError, True),
        (429, RateLimited, True),
        (500, ServerError, True),
        (503, ServerError, True),
    ],
)
async def test_each_status_maps_to_the_error_that_decides_what_happens(
    status: int, kind: type[SendFailed], retriable: bool
) -> None:
    body = orjson.dumps(error_list("some_code", "Some message"))

    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=RATE)

    async with client_answering(handler) as client:
        with pytest.raises(kind) as exc:
            await client.send(BODY)
    assert type(exc.value) is kind
    assert exc.value.retriable is retriable
    assert exc.value.status == status
    assert exc.value.body == body
    assert exc.value.rate.remaining == 1665
    assert "some_code: Some message" in exc.value.message


async def test_timeouts_and_broken_connections_are_retriable_network_errors() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    for handler in (timeout, refused):
        async with client_answering(handler) as client:
            with pytest.raises(NetworkError) as exc:
                await client.send(BODY)
        assert exc.value.retriable
        assert exc.value.status is None


async def test_retry_after_is_read_in_seconds() -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "7"})

    async with client_answering(handler) as client:
        with pytest.raises(ServerError) as exc:
            await client.send(BODY)
    assert exc.value.retry_after == 7.0


async def test_a_huge_error_body_is_kept_only_in_part() -> None:
    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=b"x" * 100_000)

    async with client_answering(handler) as client:
        with pytest.raises(EventRejected) as exc:
            await client.send(BODY)
    assert len(exc.value.body) == 4096


async def test_closing_twice_is_harmless_and_a_closed_client_refuses_to_send() -> None:
    client = client_answering(lambda _r: httpx.Response(202))
    async with client:
        pass
    await client.aclose()
    with pytest.raises(RuntimeError):
        await client.send(BODY)


async def test_the_client_refuses_to_open_without_a_token() -> None:
    client = IntercomClient(settings(intercom_access_token=None))
    with pytest.raises(ValueError, match="INTERCOM_ACCESS_TOKEN"):
        await client.open()
