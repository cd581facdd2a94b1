"""Errors of the sink. A call to Intercom that does not end in 2xx raises one of them; the
class says what the sink does next (`retriable`, `retry_after`), so callers never look at
status codes.

HookstreamError (hookstream.core.errors)
 └── SinkError
      └── SendFailed              a call to Intercom did not end in 2xx
           ├── Retriable          may succeed later: retried with backoff until the retry deadline
           │    ├── NetworkError  the connection failed or broke, or the call timed out
           │    ├── ServerError   408, 409 or 5xx
           │    └── RateLimited   429: sending pauses until the window resets
           ├── EventRejected      400, 404, 422 or another 4xx: dead-lettered at once
           └── AccessDenied       401 or 403: the token is refused; the sink stops consuming
"""

from __future__ import annotations

from hookstream.core.errors import HookstreamError
from hookstream.sinks.ratelimit import RateHeaders


class SinkError(HookstreamError):
    """Root of the sink's errors."""


class SendFailed(SinkError):
    """A call to Intercom did not end in 2xx. `status` is None when no answer came;
    `body` is Intercom's answer (its `error.list`), `rate` its rate-limit headers."""

    retriable = False
    reason = "failed"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: bytes = b"",
        rate: RateHeaders | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.rate = rate or RateHeaders()
        self.retry_after = retry_after


class Retriable(SendFailed):
    """The call may succeed later: retry with backoff (and `retry_after`, when given)."""

    retriable = True
    reason = "retriable"


class NetworkError(Retriable):
    """The connection failed or broke, or the call timed out."""

    reason = "network"


class ServerError(Retriable):
    """Intercom answered 408, 409 or 5xx."""

    reason = "server_error"


class RateLimited(Retriable):
    """Intercom answered 429: the window's budget is spent until `rate.reset`."""

    reason = "rate_limited"


class EventRejected(SendFailed):
    """Intercom refused the event itself (400, 404, 422, ...): sending it again cannot help."""

    reason = "rejected"


class AccessDenied(SendFailed):
    """Intercom refused the access token (401, 403): not the events' fault; stop consuming."""

    reason = "access_denied"
