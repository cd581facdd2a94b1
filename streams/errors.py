"""Errors of the streams worker.

StreamsError
 ├── RoutesFileError          the routes file cannot be read or does not validate
 ├── TopicAdminError          topics could not be listed or created
 └── RejectedRecord           a raw record cannot be processed: it goes to the dead-letter topic
      ├── NotJson             the value is not JSON
      ├── NotANotification    the JSON is not an Intercom notification (no object, no topic)
      ├── MissingId           a notification other than `ping` without an id
      └── RouteFailed         a destination is not a valid topic name or cannot be created

Every `RejectedRecord` carries `reason`, the short code the dead letter's
`hookstream-dlq-reason` header carries. None is retriable: retrying the same bytes gives the
same answer, so the worker dead-letters and moves on.
"""

from __future__ import annotations


class StreamsError(Exception):
    """Root of the errors raised by the streams worker."""

    retriable = False


class RoutesFileError(StreamsError):
    """The routes file cannot be read or does not validate."""


class TopicAdminError(StreamsError):
    """Topics could not be listed or created on the cluster."""

    retriable = True


class RejectedRecord(StreamsError):
    """A raw record the worker cannot process; it is dead-lettered with `reason`."""

    reason = "rejected"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotJson(RejectedRecord):
    """The record's value is not JSON (or is empty)."""

    reason = "not-json"


class NotANotification(RejectedRecord):
    """The JSON is not an Intercom notification: not an object, or no string `topic`."""

    reason = "not-a-notification"


class MissingId(RejectedRecord):
    """A notification other than `ping` has no string `id` to deduplicate it by."""

    reason = "missing-id"


class RouteFailed(RejectedRecord):
    """A destination of the notification is not a valid topic name or cannot be created."""

    reason = "route-failed"
