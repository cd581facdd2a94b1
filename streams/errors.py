"""Errors of the streams worker.

HookstreamError (hookstream.core.errors)
 ├── NotificationInvalid      the raw value is not a notification: dead-lettered with `reason`
 │                            (NotJson, NotANotification, MissingId: the core's envelope parser)
 ├── TopicAdminFailed         topics could not be listed or created (the core's topic admin)
 └── StreamsError
      ├── RoutesFileError     the routes file cannot be read or does not validate
      └── RejectedRecord      a raw record cannot be processed: it goes to the dead-letter topic
           ├── RouteFailed    a destination is not a valid topic name or cannot be created
           └── RoutedTopicMissing  a destination does not exist, HOOKSTREAM_CREATE_TOPICS=false

Every rejection (`Rejection`: a `NotificationInvalid` or a `RejectedRecord`) carries `reason`,
the short code the dead letter's `hookstream-dlq-reason` header carries, and `detail`. None is
retriable: retrying the same bytes gives the same answer, so the worker dead-letters and moves
on. (A missing routed topic is fixed by creating it; `hookstream replay` then moves the dead
letters back.) A retriable topic-admin failure is not a rejection: it stops the worker, whose
transaction aborts, and the restart processes the record again. Nor is `KafkaAccessDenied`
(a missing ACL): it stops the worker naming the ACL.
"""

from __future__ import annotations

from hookstream.core.errors import HookstreamError, NotificationInvalid


class StreamsError(HookstreamError):
    """Root of the errors raised by the streams worker."""

    retriable = False


class RoutesFileError(StreamsError):
    """The routes file cannot be read or does not validate."""


class RejectedRecord(StreamsError):
    """A raw record the worker cannot process; it is dead-lettered with `reason`."""

    reason = "rejected"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class RouteFailed(RejectedRecord):
    """A destination of the notification is not a valid topic name or cannot be created."""

    reason = "route-failed"


class RoutedTopicMissing(RejectedRecord):
    """A destination of the notification does not exist, and HOOKSTREAM_CREATE_TOPICS=false
    forbids creating it."""

    reason = "routed_topic_missing"


Rejection = (NotificationInvalid, RejectedRecord)
"""What the worker dead-letters (to catch): both carry `reason` and `detail`."""
