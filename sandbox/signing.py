"""Sign a webhook body as Intercom does, and the headers its deliveries carry.

Kept apart from the ingest's verifier (`ingest.signature`) on purpose: a test that signs with
this and verifies with that checks two independent readings of Intercom's docs.
"""

from __future__ import annotations

import hashlib
import hmac

USER_AGENT = "intercom-parrot-service-client/1.0"


def sign(body: bytes, secret: bytes | str) -> str:
    """`X-Hub-Signature` of `body`: `sha1=` and the hex HMAC-SHA1 keyed with the client
    secret, over the raw bytes (whitespace included)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest()


def webhook_headers(body: bytes, secret: bytes | str) -> dict[str, str]:
    """The headers of an Intercom webhook delivery of `body`."""
    return {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        "X-Hub-Signature": sign(body, secret),
    }
