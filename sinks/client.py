"""The one HTTP client of the sink: `POST {base}/events` to Intercom's Data Events API.

`IntercomClient` owns an `httpx.AsyncClient` (one connection pool, keep-alive, timeouts and
pool limits from the settings) and is an async context manager; closing it twice is harmless.
`send(body)` returns the answer's rate headers on 2xx and otherwise raises the `sinks.errors`
class that says what to do next. httpx's exceptions are translated here and nowhere else.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

from hookstream.core.settings import SinkSettings
from hookstream.core.tracing import TRACING_OFF, Tracing, set_response_status
from hookstream.sinks.errors import (
    AccessDenied,
    EventRejected,
    NetworkError,
    RateLimited,
    SendFailed,
    ServerError,
)
from hookstream.sinks.ratelimit import RateHeaders
from hookstream.sinks.workspaces import Workspace

EVENTS_PATH = "/events"
# Drop a connection idle this long, so the pool stays as small as the calls in flight: httpcore
# polls every pooled connection (and counts them in O(n^2)) on each request and answer, and a
# pool grown to 32 by a burst cost so much CPU that whole windows fell short of the budget
# (bench.sink_budget: medians 82-99% at 4 s, 99.0% in three runs at 0.5 s, 91-99% at 1 s).
# At full rate a connection is reused within milliseconds, so it costs no reconnects; it is
# far below the common server idle timeouts (uvicorn 5 s, load balancers 60 s).
KEEPALIVE_EXPIRY_SECONDS = 0.5
# Intercom's error bodies are small; keep at most this much of any answer for dead letters.
MAX_ERROR_BODY_BYTES = 4096
USER_AGENT = "hookstream-sink/0.1"
# As Intercom's own python SDK does, 409 (a conflicting concurrent write) is worth a retry.
_RETRIED_STATUSES = frozenset({408, 409})


@dataclass(frozen=True, slots=True)
class Accepted:
    """Intercom accepted the event (2xx)."""

    status: int
    rate: RateHeaders


def default_token(settings: SinkSettings) -> str | None:
    """INTERCOM_ACCESS_TOKEN (the single workspace's), or None when unset or empty."""
    token = settings.intercom_access_token
    value = token.get_secret_value().strip() if token is not None else ""
    return value or None


def access_token(settings: SinkSettings) -> str:
    """The Intercom access token; ValueError when it is unset or empty."""
    value = default_token(settings)
    if value is None:
        raise ValueError("set INTERCOM_ACCESS_TOKEN for the sink")
    return value


def check_tokens(settings: SinkSettings) -> None:
    """ValueError unless the sink has a token: INTERCOM_ACCESS_TOKEN, a tokens file, or both."""
    if default_token(settings) is None and settings.workspace_tokens_file is None:
        raise ValueError(
            "set INTERCOM_ACCESS_TOKEN (one workspace) or HOOKSTREAM_SINK_WORKSPACE_TOKENS_FILE "
            "(many) for the sink"
        )


def request_headers(settings: SinkSettings) -> dict[str, str]:
    """The headers of every call: bearer token (INTERCOM_ACCESS_TOKEN's, when set),
    Intercom-Version, JSON both ways."""
    headers = {
        "Intercom-Version": settings.intercom_version,
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    token = default_token(settings)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def timeout_from(settings: SinkSettings) -> httpx.Timeout:
    """One call's timeout; waiting for a pooled connection counts too."""
    return httpx.Timeout(settings.request_timeout_seconds)


def limits_from(settings: SinkSettings) -> httpx.Limits:
    """A pool as large as the calls in flight, all kept alive."""
    return httpx.Limits(
        max_connections=settings.concurrency,
        max_keepalive_connections=settings.concurrency,
        keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
    )


class IntercomClient:
    """Sends data events to Intercom. Use `async with`, or `open()` and `aclose()`."""

    def __init__(
        self,
        settings: SinkSettings,
        transport: httpx.AsyncBaseTransport | None = None,
        tracing: Tracing = TRACING_OFF,
    ):
        self._settings = settings
        self._transport = transport
        self._tracing = tracing
        self._url = self.base_url + EVENTS_PATH
        self._http: httpx.AsyncClient | None = None
        self._closed = False

    @property
    def base_url(self) -> str:
        """Where the events go."""
        return self._settings.intercom_base_url

    async def open(self) -> None:
        """Create the connection pool (once); ValueError when the sink has no token."""
        check_tokens(self._settings)
        if self._http is None and not self._closed:
            self._http = httpx.AsyncClient(
                base_url=self.base_url,
                headers=request_headers(self._settings),
                timeout=timeout_from(self._settings),
                limits=limits_from(self._settings),
                transport=self._transport,
                follow_redirects=False,
            )

    async def aclose(self) -> None:
        """Close the pool; harmless when closed already or never opened."""
        self._closed = True
        client, self._http = self._http, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def send(self, body: bytes, workspace: Workspace | None = None) -> Accepted:
        """POST one event's JSON body, as `workspace` (its token, its region's host) or else
        as INTERCOM_ACCESS_TOKEN. Raises a `sinks.errors.SendFailed` subclass unless
        Intercom answers 2xx."""
        if self._http is None:
            raise RuntimeError("IntercomClient is not open")
        url = self._url if workspace is None else workspace.base_url + EVENTS_PATH
        headers: dict[str, str] = {}  # a workspace's token; `traceparent` when traces are on
        if workspace is not None:
            headers["Authorization"] = f"Bearer {workspace.token.get_secret_value()}"
        with self._tracing.client("POST", url, headers) as span:
            try:
                if workspace is None:
                    response = await self._http.post(EVENTS_PATH, content=body, headers=headers)
                else:  # an absolute URL: the pool keeps connections per host
                    response = await self._http.post(url, content=body, headers=headers)
            except httpx.TimeoutException as exc:
                raise NetworkError(f"timed out: {type(exc).__name__}") from exc
            except httpx.TransportError as exc:
                raise NetworkError(f"{type(exc).__name__}: {exc}") from exc
            set_response_status(span, response.status_code)
        rate = RateHeaders.parse(response.headers)
        status = response.status_code
        if 200 <= status < 300:
            return Accepted(status, rate)
        raise _failure(response, rate)


def _failure(response: httpx.Response, rate: RateHeaders) -> SendFailed:
    status = response.status_code
    body = response.content[:MAX_ERROR_BODY_BYTES]
    message = f"Intercom answered {status}: {_error_summary(response)}"
    retry_after = _retry_after(response.headers.get("retry-after"))
    kind: type[SendFailed]
    if status == 429:
        kind = RateLimited
    elif status in (401, 403):
        kind = AccessDenied
    elif status in _RETRIED_STATUSES or status >= 500:
        kind = ServerError
    else:
        kind = EventRejected
    return kind(message, status=status, body=body, rate=rate, retry_after=retry_after)


def _error_summary(response: httpx.Response) -> str:
    """`code: message` of Intercom's first error, or the start of the body."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        return f"{first.get('code')}: {first.get('message')}"
    except (ValueError, AttributeError, IndexError, TypeError):
        return response.text[:200] or response.reason_phrase


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
