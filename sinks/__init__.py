"""The sink: data events from Kafka to Intercom's Data Events API.

`Sink(settings)` is the whole service (a Faust app, its HTTP client, pipeline and web
endpoints); `hookstream sink` runs it. The parts, one concern per module: `client` (the
httpx client and how Intercom's answers map to errors), `ratelimit` (the rate budget),
`pipeline` (ordering, retries, dead letters, in-order acks), `dedup`, `offsets`,
`deadletter`, `metrics`, `web`, `errors`, `workspaces` (the per-workspace tokens file).
"""

from hookstream.sinks.app import Sink
from hookstream.sinks.client import Accepted, IntercomClient
from hookstream.sinks.errors import (
    AccessDenied,
    EventRejected,
    NetworkError,
    RateLimited,
    Retriable,
    SendFailed,
    ServerError,
    SinkError,
)
from hookstream.sinks.ratelimit import RateBudget, RateHeaders
from hookstream.sinks.workspaces import Workspace, WorkspaceTokensInvalid

__all__ = [
    "Accepted",
    "AccessDenied",
    "EventRejected",
    "IntercomClient",
    "NetworkError",
    "RateBudget",
    "RateHeaders",
    "RateLimited",
    "Retriable",
    "SendFailed",
    "ServerError",
    "Sink",
    "SinkError",
    "Workspace",
    "WorkspaceTokensInvalid",
]
