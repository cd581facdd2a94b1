"""The streams worker: deduplicates notifications and fans them out per Intercom topic.

The Faust app lives in `hookstream.streams.app` (imported by `hookstream worker`); what is
public here has no Faust in it, so routes can be checked and records processed without a broker.
The notification envelope and its errors are the core's (`hookstream.core.notification`).
"""

from hookstream.streams.dedup import Deduplicator
from hookstream.streams.errors import (
    RejectedRecord,
    Rejection,
    RouteFailed,
    RoutesFileError,
    StreamsError,
)
from hookstream.streams.metrics import WorkerMetrics
from hookstream.streams.processor import Outcome, Processor
from hookstream.streams.records import OutRecord, RawRecord
from hookstream.streams.routes import RouteTable, load_routes

__all__ = [
    "Deduplicator",
    "OutRecord",
    "Outcome",
    "Processor",
    "RawRecord",
    "RejectedRecord",
    "Rejection",
    "RouteFailed",
    "RouteTable",
    "RoutesFileError",
    "StreamsError",
    "WorkerMetrics",
    "load_routes",
]
