"""The streams worker: deduplicates notifications and fans them out per Intercom topic.

The Faust app lives in `hookstream.streams.app` (imported by `hookstream worker`); what is
public here has no Faust in it, so routes can be checked and records processed without a broker.
"""

from hookstream.streams.dedup import Deduplicator
from hookstream.streams.errors import (
    MissingId,
    NotANotification,
    NotJson,
    RejectedRecord,
    RouteFailed,
    RoutesFileError,
    StreamsError,
    TopicAdminError,
)
from hookstream.streams.metrics import WorkerMetrics
from hookstream.streams.notification import Notification, parse_notification
from hookstream.streams.processor import Outcome, Processor
from hookstream.streams.records import OutRecord, RawRecord
from hookstream.streams.routes import RouteTable, load_routes

__all__ = [
    "Deduplicator",
    "MissingId",
    "NotANotification",
    "NotJson",
    "Notification",
    "OutRecord",
    "Outcome",
    "Processor",
    "RawRecord",
    "RejectedRecord",
    "RouteFailed",
    "RouteTable",
    "RoutesFileError",
    "StreamsError",
    "TopicAdminError",
    "WorkerMetrics",
    "load_routes",
    "parse_notification",
]
