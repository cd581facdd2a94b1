"""The Intercom sandbox: a local Data Events API and a webhook sender that behave as Intercom.

API server: `create_app(SandboxConfig(...))`, an ASGI app (run in-process with httpx's
`ASGITransport`, or served by `hookstream sandbox`). Webhooks: `build_notification(topic)`,
`sign(body, secret)`, `deliver(client, url, notification, secret)` and `send_webhooks(plan)`.
"""

from hookstream.sandbox.app import create_app
from hookstream.sandbox.config import (
    APP_WINDOW_LIMIT,
    DEFAULT_ACCESS_TOKEN,
    WORKSPACE_WINDOW_LIMIT,
    SandboxConfig,
)
from hookstream.sandbox.errors import SandboxError, UnknownTopic
from hookstream.sandbox.notifications import build_notification, encode, redelivery, topics
from hookstream.sandbox.signing import sign, webhook_headers
from hookstream.sandbox.webhooks import Attempt, Delivery, SendPlan, Summary, deliver, send_webhooks

__all__ = [
    "APP_WINDOW_LIMIT",
    "DEFAULT_ACCESS_TOKEN",
    "WORKSPACE_WINDOW_LIMIT",
    "Attempt",
    "Delivery",
    "SandboxConfig",
    "SandboxError",
    "SendPlan",
    "Summary",
    "UnknownTopic",
    "build_notification",
    "create_app",
    "deliver",
    "encode",
    "redelivery",
    "send_webhooks",
    "sign",
    "topics",
    "webhook_headers",
]
