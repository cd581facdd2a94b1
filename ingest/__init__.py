"""The webhook ingest: verifies Intercom's signature and makes each notification durable."""

from hookstream.ingest.app import create_app
from hookstream.ingest.signature import signature_for, verify_signature

__all__ = ["create_app", "signature_for", "verify_signature"]
