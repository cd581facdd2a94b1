"""Signature verification, against vectors computed independently of the ingest."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from hookstream.ingest import signature_for, verify_signature
from hookstream.ingest.errors import SignatureInvalid, SignatureMissing

BODY = b'{"type":"notification_event","id":"notif_1","topic":"ping"}'
SECRET = b"s3cr3t"
# Computed once with `printf '%s' "$BODY" | openssl dgst -sha1 -hmac s3cr3t` and kept literal.
KNOWN_VECTOR = "sha1=ecd990b5eec9488f25fe1c29ad8fd521b4fec1f4"


def test_known_vector_is_accepted() -> None:
    verify_signature(BODY, KNOWN_VECTOR, [SECRET])


def test_signature_for_matches_an_independent_hmac() -> None:
    assert signature_for(BODY, SECRET) == KNOWN_VECTOR


def test_rfc2202_vector_is_reproduced() -> None:
    # RFC 2202 test case 2 for HMAC-SHA1: key "Jefe", data "what do ya want for nothing?".
    assert signature_for(b"what do ya want for nothing?", b"Jefe") == (
        "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    )


def test_body_changed_by_one_byte_is_refused() -> None:
    changed = BODY[:-2] + b"}}"
    with pytest.raises(SignatureInvalid):
        verify_signature(changed, KNOWN_VECTOR, [SECRET])


def test_whitespace_is_part_of_what_is_signed() -> None:
    with pytest.raises(SignatureInvalid):
        verify_signature(BODY + b"\n", KNOWN_VECTOR, [SECRET])


@pytest.mark.parametrize("prefix", ["sha256=", "SHA1=", "", "sha1 "])
def test_wrong_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(SignatureInvalid):
        verify_signature(BODY, prefix + KNOWN_VECTOR.removeprefix("sha1="), [SECRET])


def test_upper_case_hex_is_accepted() -> None:
    verify_signature(BODY, "sha1=" + KNOWN_VECTOR.removeprefix("sha1=").upper(), [SECRET])


def test_empty_body_is_verified_like_any_other() -> None:
    empty_signature = "sha1=" + hmac.new(SECRET, b"", hashlib.sha1).hexdigest()
    verify_signature(b"", empty_signature, [SECRET])
    with pytest.raises(SignatureInvalid):
        verify_signature(b"", KNOWN_VECTOR, [SECRET])


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header_is_refused_as_missing(header: str | None) -> None:
    with pytest.raises(SignatureMissing):
        verify_signature(BODY, header, [SECRET])


def test_wrong_secret_is_refused() -> None:
    with pytest.raises(SignatureInvalid):
        verify_signature(BODY, KNOWN_VECTOR, [b"another"])


def test_rotation_accepts_either_secret() -> None:
    new_secret = b"n3w"
    new_signature = "sha1=" + hmac.new(new_secret, BODY, hashlib.sha1).hexdigest()
    for signature in (KNOWN_VECTOR, new_signature):
        verify_signature(BODY, signature, [SECRET, new_secret])
    with pytest.raises(SignatureInvalid):
        verify_signature(BODY, new_signature, [SECRET])


def test_truncated_digest_is_refused() -> None:
    with pytest.raises(SignatureInvalid):
        verify_signature(BODY, KNOWN_VECTOR[:-1], [SECRET])
