"""Why a Kafka client could not start: one bare connection attempt, its failure classified.

aiokafka's bootstrap logs each broker's error and raises only "Unable to bootstrap", which
reads like an outage whatever the cause. `diagnose` connects once more to each bootstrap
server with the same TLS and SASL set-up (aiokafka's own connection class, so the same
handshake), asks for metadata, and turns a refusal into a `KafkaAuthFailed` whose message
names the setting to fix. It returns None when the servers simply do not answer: that is an
outage, and the caller says so. Messages carry the user name, never a password.

`refused_access` is a service's second start-up question: may this principal use the
topics, groups and transactional ids it needs? One metadata request for the topics (never
auto-creating one) and one FindCoordinator per group or transactional id: each needs at
least Describe, which every Read or Write ACL implies, so a refusal means the ACL is
missing. It returns the first refused `Needed` and the broker's error.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.coordination import FindCoordinatorRequest
from aiokafka.protocol.metadata import MetadataRequest

from hookstream.core.errors import KafkaAuthFailed

if TYPE_CHECKING:
    from hookstream.core.kafka import KafkaConnection, Needed


async def diagnose(connection: KafkaConnection, *, wait_seconds: float) -> KafkaAuthFailed | None:
    """The first TLS or SASL refusal among the bootstrap servers; None if none refused."""
    context = connection.ssl_context()  # a bad file raises KafkaAuthFailed itself
    for server in connection.bootstrap_list:
        host, _, port = server.rpartition(":")
        try:
            async with asyncio.timeout(wait_seconds):
                refusal = await _attempt(connection, context, host, int(port), wait_seconds)
        except TimeoutError:
            continue
        if refusal is not None:
            return refusal
    return None


_COORDINATOR_TYPE = {"group": 0, "transactional id": 1}
_REFUSED: dict[str, type[KafkaError]] = {
    "topic": TopicAuthorizationFailedError,
    "group": GroupAuthorizationFailedError,
    "transactional id": TransactionalIdAuthorizationFailed,
}


async def refused_access(
    connection: KafkaConnection, needed: Sequence[Needed], *, wait_seconds: float
) -> tuple[Needed, KafkaError] | None:
    """The first of `needed` the broker refuses to this principal, with the broker's error;
    None when none is refused, or when no bootstrap server answers (an outage: the client
    that needs the resource reports that)."""
    context = connection.ssl_context()
    for server in connection.bootstrap_list:
        host, _, port = server.rpartition(":")
        try:
            async with asyncio.timeout(wait_seconds):
                conn = await create_conn(
                    host,
                    int(port),
                    client_id="hookstream-preflight",
                    request_timeout_ms=max(1000, int(wait_seconds * 1000)),
                    ssl_context=context,
                    security_protocol=connection.security_protocol,
                    **connection.sasl_arguments(),
                )
                try:
                    return await _first_refused(conn, needed)
                finally:
                    conn.close()
        except (TimeoutError, OSError, KafkaError):
            continue
    return None


async def _first_refused(conn: Any, needed: Sequence[Needed]) -> tuple[Needed, KafkaError] | None:
    topics = [n for n in needed if n.kind == "topic"]
    if topics:
        metadata = await conn.send(
            MetadataRequest([n.name for n in topics], allow_auto_topic_creation=False)
        )
        refused = {
            t["topic"]
            for t in metadata.to_object()["topics"]
            if t["error_code"] == TopicAuthorizationFailedError.errno
        }
        for item in topics:
            if item.name in refused:
                return item, TopicAuthorizationFailedError()
    for item in needed:
        if item.kind == "topic":
            continue
        answer = await conn.send(FindCoordinatorRequest(item.name, _COORDINATOR_TYPE[item.kind]))
        refusal = _REFUSED[item.kind]
        if answer.error_code == refusal.errno:
            return item, refusal()
    return None


async def _attempt(  # noqa: PLR0911 - one return per kind of refusal
    connection: KafkaConnection,
    context: ssl.SSLContext | None,
    host: str,
    port: int,
    wait_seconds: float,
) -> KafkaAuthFailed | None:
    try:
        conn = await create_conn(
            host,
            port,
            client_id="hookstream-diagnosis",
            request_timeout_ms=max(1000, int(wait_seconds * 1000)),
            ssl_context=context,
            security_protocol=connection.security_protocol,
            **connection.sasl_arguments(),
        )
    except ssl.SSLCertVerificationError as exc:
        return _untrusted(connection, host, exc)
    except ssl.SSLError as exc:
        return _tls_refused(connection, host, port, exc)
    except SaslAuthenticationFailed as exc:
        if connection.uses_oauthbearer:
            return KafkaAuthFailed(
                f"Kafka at {host}:{port} refused the OAUTHBEARER token ({exc}): check"
                " KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL and the broker's JWKS and audience",
                setting="KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL",
            )
        return KafkaAuthFailed(
            f"Kafka at {host}:{port} refused the {connection.sasl_mechanism} credentials of"
            f" user {connection.sasl_username!r}: check KAFKA_SASL_PASSWORD and"
            " KAFKA_SASL_USERNAME (the broker does not say which is wrong)",
            setting="KAFKA_SASL_PASSWORD",
        )
    except UnsupportedSaslMechanismError as exc:
        return KafkaAuthFailed(
            f"Kafka at {host}:{port} does not enable KAFKA_SASL_MECHANISM="
            f"{connection.sasl_mechanism}: {exc}",
            setting="KAFKA_SASL_MECHANISM",
        )
    except (IllegalSaslStateError, KafkaConnectionError) as exc:
        return await _mismatched_protocol(connection, context, host, port, exc)
    except (ConnectionResetError, ssl.SSLEOFError) as exc:
        if connection.uses_tls:  # TCP was accepted, the TLS handshake hung up
            return KafkaAuthFailed(
                f"Kafka at {host}:{port} hung up during the TLS handshake ({type(exc).__name__}):"
                f" the listener may be plaintext, but KAFKA_SECURITY_PROTOCOL="
                f"{connection.security_protocol}",
                setting="KAFKA_SECURITY_PROTOCOL",
            )
        return None
    except (OSError, KafkaError):
        return None  # refused at the TCP level: an outage, not a refusal
    try:
        await conn.send(MetadataRequest([]))
    except (KafkaConnectionError, IllegalSaslStateError) as exc:
        return await _mismatched_protocol(connection, context, host, port, exc)
    except KafkaError:
        return None
    finally:
        conn.close()
    return None


def _untrusted(
    connection: KafkaConnection, host: str, exc: ssl.SSLCertVerificationError
) -> KafkaAuthFailed:
    detail = exc.verify_message or str(exc)
    if "mismatch" in detail.lower():
        return KafkaAuthFailed(
            f"the broker's certificate does not name {host!r} ({detail}): connect to a name"
            " it holds in KAFKA_BOOTSTRAP_SERVERS, or set KAFKA_SSL_CHECK_HOSTNAME=false"
            " (tests only)",
            setting="KAFKA_SSL_CHECK_HOSTNAME",
        )
    trusted = f"the CA in {connection.ssl_ca_file}" if connection.ssl_ca_file else "system trust"
    return KafkaAuthFailed(
        f"the broker's certificate at {host} is not trusted by {trusted} ({detail}): set"
        " KAFKA_SSL_CA_FILE to the CA that signed it",
        setting="KAFKA_SSL_CA_FILE",
    )


def _tls_refused(
    connection: KafkaConnection, host: str, port: int, exc: ssl.SSLError
) -> KafkaAuthFailed:
    reason = (exc.reason or str(exc)).lower()
    if "wrong_version" in reason or "wrong version" in reason or "record layer" in reason:
        return KafkaAuthFailed(
            f"{host}:{port} does not speak TLS: KAFKA_SECURITY_PROTOCOL="
            f"{connection.security_protocol} does not match the broker's listener",
            setting="KAFKA_SECURITY_PROTOCOL",
        )
    if "certificate" in reason or "handshake" in reason or "alert" in reason:
        return KafkaAuthFailed(
            f"Kafka at {host}:{port} refused the TLS handshake ({exc.reason}): it may require"
            " a client certificate it trusts: check KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE",
            setting="KAFKA_SSL_CERT_FILE",
        )
    return KafkaAuthFailed(
        f"TLS with {host}:{port} failed ({exc.reason}): check KAFKA_SECURITY_PROTOCOL and"
        " the KAFKA_SSL_* settings",
        setting="KAFKA_SECURITY_PROTOCOL",
    )


async def _mismatched_protocol(
    connection: KafkaConnection,
    context: ssl.SSLContext | None,
    host: str,
    port: int,
    exc: BaseException,
) -> KafkaAuthFailed | None:
    """The broker accepted TCP and then hung up: a listener that expects another protocol."""
    if not connection.uses_tls and await _speaks_tls(host, port):
        return KafkaAuthFailed(
            f"Kafka at {host}:{port} expects TLS but KAFKA_SECURITY_PROTOCOL="
            f"{connection.security_protocol}: use SSL or SASL_SSL",
            setting="KAFKA_SECURITY_PROTOCOL",
        )
    alert = await _certificate_alert(host, port, context) if context is not None else None
    if alert is not None and connection.ssl_cert_file is None:
        return KafkaAuthFailed(
            f"Kafka at {host}:{port} requires a client certificate ({alert}): set"
            " KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE",
            setting="KAFKA_SSL_CERT_FILE",
        )
    if alert is not None:
        return KafkaAuthFailed(
            f"Kafka at {host}:{port} refused the client certificate in"
            f" {connection.ssl_cert_file} ({alert}): is it signed by a CA the broker trusts?",
            setting="KAFKA_SSL_CERT_FILE",
        )
    if not connection.uses_sasl:
        return KafkaAuthFailed(
            f"Kafka at {host}:{port} closed the connection ({exc}): the listener may expect"
            f" SASL, but KAFKA_SECURITY_PROTOCOL={connection.security_protocol}",
            setting="KAFKA_SECURITY_PROTOCOL",
        )
    if isinstance(exc, IllegalSaslStateError):
        return KafkaAuthFailed(
            f"Kafka at {host}:{port} does not expect SASL ({exc}): check KAFKA_SECURITY_PROTOCOL",
            setting="KAFKA_SECURITY_PROTOCOL",
        )
    return None


async def _speaks_tls(host: str, port: int) -> bool:
    probe = ssl.create_default_context()
    probe.check_hostname = False
    probe.verify_mode = ssl.CERT_NONE
    try:
        async with asyncio.timeout(2):
            _, writer = await asyncio.open_connection(host, port, ssl=probe)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


async def _certificate_alert(host: str, port: int, context: ssl.SSLContext) -> str | None:
    """The alert with which the listener ends a TLS session over our client certificate (or
    its absence): TLS 1.3 sends it after the handshake, on the first read. None if none."""
    try:
        async with asyncio.timeout(2):
            reader, writer = await asyncio.open_connection(host, port, ssl=context)
            try:
                writer.write(b"\0\0\0\0")  # an empty Kafka request: any listener hangs up
                await writer.drain()
                await reader.read(1)
            finally:
                writer.close()
    except ssl.SSLError as exc:
        reason = exc.reason or ""
        return reason if "CERTIFICATE" in reason.upper() else None
    except (OSError, TimeoutError):
        return None
    return None
