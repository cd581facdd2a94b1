"""Intercom's webhook signature: `X-Hub-Signature: sha1=<hex>`, HMAC-SHA1 of the raw body
keyed with the app's client secret. Checked in constant time against every configured secret,
so a secret can be rotated without dropping deliveries, and one ingest can serve several apps
(the index of the secret that matched says which)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from hookstream.ingest.errors import SignatureInvalid, SignatureMissing

PREFIX = "sha1="
_HEX_LENGTH = hashlib.sha1().digest_size * 2  # noqa: S324 - Intercom's scheme, not our choice


def signature_for(body: bytes, secret: bytes) -> str:
    """The header value Intercom sends for `body` signed with `secret`."""
    return PREFIX + hmac.new(secret, body, hashlib.sha1).hexdigest()


def verify_signature(body: bytes, header: str | None, secrets: Sequence[bytes]) -> int:
    """The index in `secrets` of the first secret under which `header` is a valid signature
    of `body` (which configured app sent it).

    Raises `SignatureMissing` without a header and `SignatureInvalid` otherwise. The hex
    digest is compared case-insensitively (Intercom sends lower case); every secret is
    tried, each in constant time, so the time taken does not reveal which one matched.
    """
    if not header:
        raise SignatureMissing("the X-Hub-Signature header is missing")
    if not header.startswith(PREFIX):
        raise SignatureInvalid("X-Hub-Signature must look like sha1=<40 hex digits>")
    given = header[len(PREFIX) :].strip().lower().encode()
    if len(given) != _HEX_LENGTH:
        raise SignatureInvalid("X-Hub-Signature must look like sha1=<40 hex digits>")
    matched = -1
    for index, secret in enumerate(secrets):
        expected = hmac.new(secret, body, hashlib.sha1).hexdigest().encode()
        if hmac.compare_digest(expected, given) and matched < 0:
            matched = index
    if matched < 0:
        raise SignatureInvalid("X-Hub-Signature does not match the body")
    return matched
