"""Errors of the ingest. Routes raise them; `hookstream.ingest.app` maps each to its status code.

HookstreamError (hookstream.core.errors)
 └── IngestError
      ├── RequestRefused                the request is wrong; nothing was stored (4xx)
      │    ├── SignatureMissing         no X-Hub-Signature header (401)
      │    ├── SignatureInvalid         no configured secret produces that signature (401)
      │    ├── BodyTooLarge             the body is over the configured limit (413)
      │    ├── NotANotification         not JSON, or not an Intercom notification envelope
      │    │                            (400; from the core's `NotificationInvalid`)
      │    ├── BodyTimeout              the body did not arrive within the deadline (408)
      │    ├── NotAuthenticated         POST /events without the right bearer token (401)
      │    └── InvalidDataEvents        POST /events with events that fail validation (422)
      ├── Overloaded                    the process serves its most requests at once (503)
      ├── SpoolLocked                   a spool file is held by a live process (`spool drain`)
      └── NotDurable                    neither Kafka nor the spool could take the record (503)
           ├── SpoolFull                the spool is at capacity (503)
           └── RecordsRefused           Kafka refused one record of a request for good, so
                                        none of them was stored (503)
"""

from __future__ import annotations

from typing import Any

import orjson

from hookstream.core.errors import HookstreamError


class IngestError(HookstreamError):
    """Root of the ingest's errors; `status` is the HTTP status it maps to."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def json_body(self) -> bytes:
        """The JSON body every refusal carries: `{"error": {"code", "message", ...details}}`."""
        return orjson.dumps({"error": {"code": self.code, "message": self.message, **self.details}})


class RequestRefused(IngestError):
    """The request is wrong; nothing was stored."""

    status = 400
    code = "bad_request"


class SignatureMissing(RequestRefused):
    """The X-Hub-Signature header is missing."""

    status = 401
    code = "signature_missing"


class SignatureInvalid(RequestRefused):
    """The X-Hub-Signature does not match the body under any configured secret."""

    status = 401
    code = "signature_invalid"


class BodyTooLarge(RequestRefused):
    """The body is larger than the configured limit."""

    status = 413
    code = "body_too_large"


class BodyTimeout(RequestRefused):
    """The body did not arrive within the configured deadline (a slow or stalled client)."""

    status = 408
    code = "body_timeout"


class NotANotification(RequestRefused):
    """The body is not JSON or not an Intercom notification envelope."""

    status = 400
    code = "not_a_notification"


class NotAuthenticated(RequestRefused):
    """The bearer token of POST /events is missing or wrong."""

    status = 401
    code = "unauthorized"


class InvalidDataEvents(RequestRefused):
    """POST /events carried events that fail validation; none was accepted."""

    status = 422
    code = "invalid_data_events"


class Overloaded(IngestError):
    """The process already serves its most requests at once: retry after `retry_after`."""

    status = 503
    code = "overloaded"
    retry_after = 1


class SpoolLocked(IngestError):
    """A spool file is held (its lock taken) by a live process, which drains it itself."""

    code = "spool_locked"


class NotDurable(IngestError):
    """Neither Kafka nor the spool could take the record: the sender must retry."""

    status = 503
    code = "not_durable"


class SpoolFull(NotDurable):
    """Kafka is unavailable and the spool is at capacity."""

    code = "spool_full"


class RecordsRefused(NotDurable):
    """Kafka refused one of the records written together (too large for the topic), so none
    of them was stored."""

    code = "records_refused"
