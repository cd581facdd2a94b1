"""The root of every hookstream error, and the errors of the shared core.

HookstreamError
 ├── LocalKafkaError      the local broker could not be fetched, formatted, started or stopped
 ├── KafkaUnreachable     no broker answered within the bounded wait
 ├── KafkaAuthFailed      the broker refused the TLS or SASL set-up (names the setting to fix)
 ├── KafkaAccessDenied    the principal lacks an ACL (operation, resource, principal)
 ├── TopicNotFound        an operator command names a topic that does not exist
 ├── TopicAdminFailed     the broker refused to create or describe a topic (`retriable`)
 │    └── TopicMissing        a topic does not exist and HOOKSTREAM_CREATE_TOPICS=false
 ├── ReplayFailed         a replay could not produce or commit (what moved is reported)
 ├── NotificationInvalid  bytes that are not an Intercom notification (`reason`, `field`)
 │    ├── NotJson             empty, or not JSON
 │    ├── NotANotification    not an object, no `topic`, or (at the ingest) not the envelope type
 │    └── MissingId           a notification other than `ping` without a string `id`
 ├── DataEventInvalid     a data event fails validation (`errors`: one FieldError per problem)
 │    └── DataEventsInvalid   a list of data events fails validation (`items`: errors by index)
 ├── IngestError          the ingest's errors (`hookstream.ingest.errors`)
 ├── StreamsError         the worker's errors (`hookstream.streams.errors`)
 ├── SinkError            the sink's errors (`hookstream.sinks.errors`)
 └── SandboxError         the sandbox's errors (`hookstream.sandbox.errors`)
"""

from __future__ import annotations

from dataclasses import dataclass


class HookstreamError(Exception):
    """Root of every error hookstream raises; each package's own root derives from it."""


class LocalKafkaError(HookstreamError):
    """The local Kafka broker could not be fetched, formatted, started or stopped."""


class KafkaUnreachable(HookstreamError):
    """No Kafka broker answered at the bootstrap address within the bounded wait."""


class KafkaAuthFailed(HookstreamError):
    """The broker answered but refused this client's TLS or SASL set-up; the message names the
    setting to fix. Never retriable: the same settings give the same answer."""

    retriable = False

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


class KafkaAccessDenied(HookstreamError):
    """The broker authenticated the principal but an ACL is missing; the message names the
    operation, the resource and the principal. Never retriable."""

    retriable = False


class TopicNotFound(HookstreamError):
    """A topic named by an operator command does not exist on the cluster."""


class TopicAdminFailed(HookstreamError):
    """The broker refused to create or describe a topic, or did not answer (the message says
    why). `retriable` when trying again may succeed (no answer, no controller, a leader
    moving); not when the broker refused for good (an invalid name, a policy, no ACL)."""

    def __init__(self, message: str, *, retriable: bool = True) -> None:
        super().__init__(message)
        self.retriable = retriable


class TopicMissing(TopicAdminFailed):
    """A topic does not exist and HOOKSTREAM_CREATE_TOPICS=false forbids creating it: whoever
    owns the topics (Strimzi `KafkaTopic`) must. Not retriable until then."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retriable=False)


class ReplayFailed(HookstreamError):
    """A replay could not produce a record or commit its progress; the message says what
    was moved before it stopped."""


class NotificationInvalid(HookstreamError):
    """Bytes that are not an Intercom notification. `reason` is the short code a dead letter's
    `hookstream-dlq-reason` header carries; `field` names the envelope field at fault, if one.
    Never retriable: the same bytes give the same answer."""

    reason = "invalid-notification"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotJson(NotificationInvalid):
    """The bytes are empty or not JSON."""

    reason = "not-json"


class NotANotification(NotificationInvalid):
    """The JSON is not an Intercom notification: not an object, no string `topic`, or (where
    required) not `"type": "notification_event"`."""

    reason = "not-a-notification"


class MissingId(NotificationInvalid):
    """A notification other than `ping` has no string `id` to deduplicate it by."""

    reason = "missing-id"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem of a data event: the field's dotted path (`metadata.price.amount`; empty
    for the event as a whole) and what is wrong with it."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """`{"field": ..., "message": ...}` for JSON error bodies."""
        return {"field": self.field, "message": self.message}


class DataEventInvalid(HookstreamError):
    """A data event fails validation; `errors` lists every problem found."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field or 'event'}: {e.message}" for e in errors))

    def as_dicts(self) -> list[dict[str, str]]:
        """The errors as JSON-ready dicts."""
        return [error.as_dict() for error in self.errors]


class DataEventsInvalid(DataEventInvalid):
    """Some events of a list fail validation; `items` maps each failing index to its errors
    (`errors` holds them all, the field paths prefixed with `[index].`)."""

    def __init__(self, items: dict[int, list[FieldError]], total: int) -> None:
        self.items = items
        self.total = total
        flat = [
            FieldError(f"[{index}].{error.field}" if error.field else f"[{index}]", error.message)
            for index, errors in items.items()
            for error in errors
        ]
        super().__init__(flat)

    def items_as_dicts(self) -> list[dict[str, object]]:
        """`[{"index": i, "errors": [...]}, ...]` for a 422 body."""
        return [
            {"index": index, "errors": [error.as_dict() for error in errors]}
            for index, errors in sorted(self.items.items())
        ]
