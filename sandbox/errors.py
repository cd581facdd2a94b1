"""Errors of the sandbox. The API's routes raise `ApiError`s; `hookstream.sandbox.app` renders
each as Intercom's `error.list` body with its status code and the rate-limit headers.

HookstreamError (hookstream.core.errors)
 └── SandboxError
      ├── ApiError                       an answer the sandbox gives as Intercom would (4xx/5xx)
      │    ├── Unauthorized              missing or wrong bearer token (401 `unauthorized`)
      │    ├── NotAcceptable             no Accept header that allows JSON (406 `not_acceptable`)
      │    ├── VersionInvalid            unknown Intercom-Version (400 `intercom_version_invalid`)
      │    ├── BadRequest                body not JSON, or not an object (400 `bad_request`)
      │    ├── ParameterNotFound         a required field is missing (400 `parameter_not_found`)
      │    ├── TypeMismatch              a field has the wrong JSON type (400 `type_mismatch`)
      │    ├── Unprocessable             well-formed but invalid (422 `unprocessable_entity`)
      │    ├── RateLimited               the window's budget is spent (429 `rate_limit_exceeded`)
      │    └── Injected                  an answer forced by failure injection (any status)
      └── WebhookError                   the webhook sender cannot do what it was asked
           ├── UnknownTopic              a topic that is not one of Intercom's
           └── BodyFileInvalid           a body file that cannot be read
"""

from __future__ import annotations

from hookstream.core.errors import HookstreamError


class SandboxError(HookstreamError):
    """Root of the sandbox's errors."""


class ApiError(SandboxError):
    """An error answer of the sandbox API, with Intercom's code, message and field."""

    status = 400
    code = "client_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Unauthorized(ApiError):
    """Missing or wrong bearer token."""

    status = 401
    code = "unauthorized"


class NotAcceptable(ApiError):
    """The Accept header does not allow application/json."""

    status = 406
    code = "not_acceptable"


class VersionInvalid(ApiError):
    """The Intercom-Version header names no published version."""

    status = 400
    code = "intercom_version_invalid"


class BadRequest(ApiError):
    """The body is not a JSON object."""

    status = 400
    code = "bad_request"


class ParameterNotFound(ApiError):
    """A required parameter was not supplied."""

    status = 400
    code = "parameter_not_found"


class TypeMismatch(ApiError):
    """A field has the wrong JSON type."""

    status = 400
    code = "type_mismatch"


class Unprocessable(ApiError):
    """The body is well-formed but a value is invalid."""

    status = 422
    code = "unprocessable_entity"


class RateLimited(ApiError):
    """The current rate-limit window's budget is spent."""

    status = 429
    code = "rate_limit_exceeded"


# Intercom's code and message for a status the failure injection forces.
_INJECTED = {
    400: ("bad_request", "The request could not be processed"),
    401: ("unauthorized", "Access Token Invalid"),
    403: ("forbidden", "You do not have permission to access this resource"),
    404: ("not_found", "User Not Found"),
    408: ("request_timeout", "The server timed out while processing the request"),
    409: ("conflict", "There is existing data that clashes with the request data"),
    422: ("unprocessable_entity", "The data was well-formed but invalid"),
    429: ("rate_limit_exceeded", "Exceeded rate limit"),
    503: ("service_unavailable", "The service is temporarily unavailable; retry later"),
    504: ("request_timeout", "The server timed out while processing the request"),
}


class Injected(ApiError):
    """An answer forced by the failure injection, with the code Intercom uses for its status."""

    def __init__(self, status: int) -> None:
        default = ("server_error", "Server Error") if status >= 500 else ("client_error", None)
        code, message = _INJECTED.get(status, default)
        super().__init__(message or f"Injected {status}")
        self.status = status
        self.code = code


class WebhookError(SandboxError):
    """The webhook sender cannot do what it was asked."""


class UnknownTopic(WebhookError):
    """The topic is not one Intercom publishes (see `sandbox/samples/topics.txt`)."""


class BodyFileInvalid(WebhookError):
    """The body file cannot be read."""
