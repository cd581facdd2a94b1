"""Errors of hookstream's shared layer.

HookstreamError
 ├── LocalKafkaError      the local broker could not be fetched, formatted, started or stopped
 ├── KafkaUnreachable     no broker answered within the bounded wait (operator commands)
 ├── TopicNotFound        an operator command names a topic that does not exist
 ├── TopicAdminFailed     the broker refused to create or describe a topic
 ├── ReplayFailed         a replay could not produce or commit (what moved is reported)
 └── DataEventInvalid     a data event fails validation (`errors`: one FieldError per problem)
      └── DataEventsInvalid   a list of data events fails validation (`items`: errors by index)
"""

from __future__ import annotations

from dataclasses import dataclass


class HookstreamError(Exception):
    """Root of the errors raised by the shared `hookstream` package."""


class LocalKafkaError(HookstreamError):
    """The local Kafka broker could not be fetched, formatted, started or stopped."""


class KafkaUnreachable(HookstreamError):
    """No Kafka broker answered at the bootstrap address within the bounded wait."""


class TopicNotFound(HookstreamError):
    """A topic named by an operator command does not exist on the cluster."""


class TopicAdminFailed(HookstreamError):
    """The broker refused to create or describe a topic (the message says why)."""


class ReplayFailed(HookstreamError):
    """A replay could not produce a record or commit its progress; the message says what
    was moved before it stopped."""


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
