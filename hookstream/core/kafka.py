"""The one Kafka client factory: how every hookstream client reaches Kafka.

`KafkaConnection` holds the connection settings (`KAFKA_*`) and builds the connection
arguments of every client: aiokafka's producers, consumers and admin clients
(`client_config`), and Faust's apps (`faust_config`). The ingest's producer, the worker, the
sink, the topic admin, the operator commands and the benchmarks all take theirs from here, so
a connection setting is added in one place.

The context managers below are the operator commands' clients: started within a bounded wait,
closed on exit, foreign errors translated once into `hookstream.core.errors`. A client that
cannot start is diagnosed (`hookstream.core._kafka_diagnosis`): a TLS or SASL refusal becomes a
`KafkaAuthFailed` naming the setting to fix, not a "Kafka is down".

Secrets (the SASL password, the key password) are `SecretStr` here and shown nowhere; they are
unwrapped only into the arguments handed to aiokafka and Faust.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
from pydantic import SecretStr

from hookstream.core._kafka_diagnosis import diagnose, refused_access
from hookstream.core._oauth import MskIamTokenProvider, OidcTokenProvider
from hookstream.core.errors import (
    KafkaAccessDenied,
    KafkaAuthFailed,
    KafkaUnreachable,
    TopicAdminFailed,
)
from hookstream.core.settings import KafkaSettings

T = TypeVar("T")

DEFAULT_CONNECT_TIMEOUT = 10.0
_RETRY_PAUSE = 0.2


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    """Where Kafka is and how to connect to it (and authenticate)."""

    bootstrap_servers: str
    """Comma-separated `host:port` pairs."""
    security_protocol: str = "PLAINTEXT"
    """PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."""
    sasl_mechanism: str = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_file: Path | None = None
    """None: the system's trust store."""
    ssl_cert_file: Path | None = None
    ssl_key_file: Path | None = None
    ssl_key_password: SecretStr | None = None
    ssl_check_hostname: bool = True
    oauthbearer_provider: str = "oidc"
    """oidc (client credentials) or aws-msk-iam."""
    oauthbearer_token_endpoint_url: str | None = None
    oauthbearer_client_id: str | None = None
    oauthbearer_client_secret: SecretStr | None = None
    oauthbearer_scope: str | None = None
    aws_region: str | None = None

    @classmethod
    def from_settings(cls, kafka: KafkaSettings) -> KafkaConnection:
        """The connection the settings describe."""
        return cls(
            bootstrap_servers=kafka.bootstrap_servers,
            security_protocol=kafka.security_protocol,
            sasl_mechanism=kafka.sasl_mechanism,
            sasl_username=kafka.sasl_username,
            sasl_password=kafka.sasl_password,
            ssl_ca_file=kafka.ssl_ca_file,
            ssl_cert_file=kafka.ssl_cert_file,
            ssl_key_file=kafka.ssl_key_file,
            ssl_key_password=kafka.ssl_key_password,
            ssl_check_hostname=kafka.ssl_check_hostname,
            oauthbearer_provider=kafka.sasl_oauthbearer_provider,
            oauthbearer_token_endpoint_url=kafka.sasl_oauthbearer_token_endpoint_url,
            oauthbearer_client_id=kafka.sasl_oauthbearer_client_id,
            oauthbearer_client_secret=kafka.sasl_oauthbearer_client_secret,
            oauthbearer_scope=kafka.sasl_oauthbearer_scope,
            aws_region=kafka.aws_region,
        )

    def with_bootstrap(self, bootstrap: str | None) -> KafkaConnection:
        """The same connection to other bootstrap servers (an operator's `--bootstrap`)."""
        return self if not bootstrap else replace(self, bootstrap_servers=bootstrap)

    @property
    def bootstrap_list(self) -> list[str]:
        """The bootstrap servers, one `host:port` each."""
        return [server.strip() for server in self.bootstrap_servers.split(",") if server.strip()]

    @property
    def uses_tls(self) -> bool:
        """Whether the connection is encrypted (SSL or SASL_SSL)."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        """Whether the client authenticates with SASL."""
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_oauthbearer(self) -> bool:
        """Whether the client authenticates with OAUTHBEARER tokens."""
        return self.uses_sasl and self.sasl_mechanism == "OAUTHBEARER"

    @property
    def principal(self) -> str | None:
        """The principal the broker sees, when the settings tell (`User:<name>` for SASL)."""
        if self.uses_oauthbearer:
            return f"User:{self.oauthbearer_client_id}" if self.oauthbearer_client_id else None
        return f"User:{self.sasl_username}" if self.uses_sasl and self.sasl_username else None

    def token_provider(self) -> OidcTokenProvider | MskIamTokenProvider:
        """A new OAUTHBEARER token provider (its own token cache) for one client."""
        if self.oauthbearer_provider == "aws-msk-iam":
            return MskIamTokenProvider(self.aws_region or "")
        if not (
            self.oauthbearer_token_endpoint_url
            and self.oauthbearer_client_id
            and self.oauthbearer_client_secret
        ):
            raise KafkaAuthFailed(
                "OAUTHBEARER needs KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL, _CLIENT_ID and"
                " _CLIENT_SECRET",
                setting="KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL",
            )
        return OidcTokenProvider(
            self.oauthbearer_token_endpoint_url,
            self.oauthbearer_client_id,
            self.oauthbearer_client_secret,
            self.oauthbearer_scope,
        )

    def sasl_arguments(self) -> dict[str, Any]:
        """aiokafka's SASL arguments (empty without SASL)."""
        if not self.uses_sasl:
            return {}
        if self.uses_oauthbearer:
            return {
                "sasl_mechanism": "OAUTHBEARER",
                "sasl_oauth_token_provider": self.token_provider(),
            }
        password = self.sasl_password
        return {
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_plain_username": self.sasl_username,
            "sasl_plain_password": password.get_secret_value() if password else None,
        }

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context (CA, optional client certificate, hostname check); None without TLS.
        An unreadable file is a `KafkaAuthFailed` naming its setting."""
        if not self.uses_tls:
            return None
        try:
            context = ssl.create_default_context(
                cafile=str(self.ssl_ca_file) if self.ssl_ca_file else None
            )
        except (OSError, ssl.SSLError) as exc:
            raise _bad_file("KAFKA_SSL_CA_FILE", self.ssl_ca_file, exc) from None
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_cert_file is not None:
            password = self.ssl_key_password
            try:
                context.load_cert_chain(
                    str(self.ssl_cert_file),
                    str(self.ssl_key_file) if self.ssl_key_file else None,
                    password.get_secret_value() if password else None,
                )
            except (OSError, ssl.SSLError) as exc:
                raise _bad_file(
                    "KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE or KAFKA_SSL_KEY_PASSWORD",
                    self.ssl_cert_file,
                    exc,
                ) from None
        return context

    def client_config(self, client_id: str) -> dict[str, Any]:
        """The connection arguments of an aiokafka producer, consumer or admin client."""
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": client_id,
            "security_protocol": self.security_protocol,
        }
        if self.uses_tls:
            config["ssl_context"] = self.ssl_context()
        config |= self.sasl_arguments()
        return config

    def transactional_producer(
        self, client_id: str, transactional_id: str, **config: Any
    ) -> AIOKafkaProducer:
        """An unstarted transactional producer (acks=all, idempotent) whose transactional id
        fences any older producer that used it: starting it aborts that one's open
        transaction, and that one can write no more."""
        return AIOKafkaProducer(
            **self.client_config(client_id), transactional_id=transactional_id, **config
        )

    def faust_config(self) -> dict[str, Any]:
        """The connection arguments of a `faust.App` (its `broker_credentials` included)."""
        import faust  # noqa: PLC0415 - only the Faust apps pay for importing Faust

        config: dict[str, Any] = {"broker": [f"kafka://{server}" for server in self.bootstrap_list]}
        if self.uses_oauthbearer:
            config["broker_credentials"] = faust.OAuthCredentials(
                oauth_cb=self.token_provider(), ssl_context=self.ssl_context()
            )
        elif self.uses_sasl:
            config["broker_credentials"] = faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password.get_secret_value() if self.sasl_password else None,
                ssl_context=self.ssl_context(),
                mechanism=self.sasl_mechanism,
            )
        elif self.uses_tls:
            config["broker_credentials"] = faust.SSLCredentials(self.ssl_context())
        return config


_DENIED_KIND: dict[type[KafkaError], str] = {
    TopicAuthorizationFailedError: "topic",
    GroupAuthorizationFailedError: "group",
    TransactionalIdAuthorizationFailed: "transactional id",
    ClusterAuthorizationFailedError: "cluster",
}


def access_denied(
    exc: BaseException, connection: KafkaConnection, *, operation: str, resource: str
) -> KafkaAccessDenied | None:
    """A `KafkaAccessDenied` naming the operation, the resource and the principal when `exc`
    is the broker's refusal for want of an ACL; None for any other error."""
    kind = next((k for cls, k in _DENIED_KIND.items() if isinstance(exc, cls)), None)
    if kind is None:
        return None
    principal = connection.principal or (
        f"the principal of {connection.ssl_cert_file}"
        if connection.ssl_cert_file
        else "this client's principal"
    )
    return KafkaAccessDenied(
        f"Kafka denied {principal} {operation} on {kind} {resource!r}: an ACL is missing"
        " (`hookstream acls` prints each service's)"
    )


def _bad_file(setting: str, path: Path | None, exc: BaseException) -> KafkaAuthFailed:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
    if isinstance(exc, ssl.SSLError) and exc.reason:
        reason = exc.reason
    return KafkaAuthFailed(f"cannot load {path}: {reason}; check {setting}", setting=setting)


def _unreachable(
    connection: KafkaConnection, wait_seconds: float, exc: BaseException
) -> KafkaUnreachable:
    bootstrap = connection.bootstrap_servers
    if isinstance(exc, TimeoutError):
        return KafkaUnreachable(
            f"cannot reach Kafka at {bootstrap}: no answer in {wait_seconds:g} s"
        )
    return KafkaUnreachable(f"cannot reach Kafka at {bootstrap}: {exc}")


async def _start(client: Any, connection: KafkaConnection, wait_seconds: float) -> None:
    try:
        async with asyncio.timeout(wait_seconds):
            await client.start()
    except (TimeoutError, KafkaConnectionError) as exc:
        raise await explain_start_failure(connection, wait_seconds, exc) from exc


async def explain_start_failure(
    connection: KafkaConnection, wait_seconds: float, exc: BaseException
) -> KafkaAuthFailed | KafkaUnreachable:
    """Why a client could not start: `KafkaAuthFailed` naming the setting when one connection
    attempt shows a TLS or SASL refusal, else `KafkaUnreachable`. aiokafka logs the cause of
    a failed bootstrap and raises only "Unable to bootstrap", so this asks once more."""
    refusal = await diagnose(connection, wait_seconds=min(wait_seconds, 5.0))
    return refusal if refusal is not None else _unreachable(connection, wait_seconds, exc)


async def check_credentials(
    connection: KafkaConnection, *, wait_seconds: float = DEFAULT_CONNECT_TIMEOUT
) -> None:
    """A service's start-up check: `KafkaAuthFailed` (naming the setting to fix) when the
    broker refuses this connection's TLS or SASL set-up. An unreachable Kafka passes: a
    service rides out an outage, but never a refusal."""
    try:
        async with admin_client(
            connection, wait_seconds=wait_seconds, client_id="hookstream-preflight"
        ):
            pass
    except KafkaUnreachable:
        return


@dataclass(frozen=True, slots=True)
class Needed:
    """An ACL a service needs: `operation` (Kafka's name: Read, Write, ...) on a resource."""

    kind: Literal["topic", "group", "transactional id"]
    name: str
    operation: str


async def check_access(
    connection: KafkaConnection,
    needed: Sequence[Needed],
    *,
    wait_seconds: float = DEFAULT_CONNECT_TIMEOUT,
) -> None:
    """A service's start-up check of its ACLs: `KafkaAccessDenied` naming the operation, the
    resource and the principal for the first of `needed` the broker refuses (Faust or
    aiokafka would retry it, or fail deep inside, without saying which ACL)."""
    refused = await refused_access(connection, needed, wait_seconds=wait_seconds)
    if refused is not None:
        item, exc = refused
        denied = access_denied(exc, connection, operation=item.operation, resource=item.name)
        if denied is not None:
            raise denied


async def bounded(awaitable: Awaitable[T], *, what: str, wait_seconds: float) -> T:
    """Await a broker call for at most `wait_seconds`; its failure is a `TopicAdminFailed`
    naming `what` was attempted."""
    try:
        async with asyncio.timeout(wait_seconds):
            return await awaitable
    except TimeoutError as exc:
        raise TopicAdminFailed(f"{what}: no answer within {wait_seconds:g} s") from exc
    except KafkaError as exc:
        raise TopicAdminFailed(f"{what}: {exc}", retriable=exc.retriable) from exc


async def retrying(call: Callable[[], Awaitable[T]], *, what: str, wait_seconds: float) -> T:
    """`bounded`, but a retriable broker error (a coordinator not elected yet on a fresh
    cluster, a leader moving) is tried again until `wait_seconds` have passed."""
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        left = deadline - asyncio.get_running_loop().time()
        try:
            return await bounded(call(), what=what, wait_seconds=max(left, 0.001))
        except TopicAdminFailed as exc:
            cause = exc.__cause__
            if not (isinstance(cause, KafkaError) and cause.retriable) or left <= _RETRY_PAUSE:
                raise
        await asyncio.sleep(_RETRY_PAUSE)


@asynccontextmanager
async def admin_client(
    connection: KafkaConnection, *, wait_seconds: float, client_id: str = "hookstream-ops"
) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client whose requests give up after `wait_seconds`."""
    client = AIOKafkaAdminClient(
        **connection.client_config(client_id),
        request_timeout_ms=max(1000, int(wait_seconds * 1000)),
    )
    try:
        await _start(client, connection, wait_seconds)
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def consumer(
    connection: KafkaConnection, *, wait_seconds: float, **config: Any
) -> AsyncIterator[Any]:
    """A started consumer (no subscription: callers assign partitions)."""
    client = AIOKafkaConsumer(
        **connection.client_config("hookstream-ops"), enable_auto_commit=False, **config
    )
    try:
        await _start(client, connection, wait_seconds)
        yield client
    finally:
        await client.stop()


@asynccontextmanager
async def producer(
    connection: KafkaConnection, *, wait_seconds: float, **config: Any
) -> AsyncIterator[Any]:
    """A started producer."""
    client = AIOKafkaProducer(**connection.client_config("hookstream-ops"), **config)
    try:
        await _start(client, connection, wait_seconds)
        yield client
    finally:
        await client.stop()


@dataclass(frozen=True, slots=True)
class TopicLayout:
    """A topic's partitions and replication factor, from the cluster's metadata."""

    name: str
    partitions: int
    replication: int


async def topic_layouts(
    admin: AIOKafkaAdminClient, *, wait_seconds: float
) -> dict[str, TopicLayout]:
    """Every topic on the cluster. A metadata request for all topics: unlike one naming a
    topic, it never makes a broker with `auto.create.topics.enable` create it."""
    described = await bounded(
        admin.describe_topics(None), what="list topics", wait_seconds=wait_seconds
    )
    layouts: dict[str, TopicLayout] = {}
    for topic in described:
        if topic["error_code"] != 0 or topic.get("is_internal"):
            continue
        partitions = topic["partitions"]
        replication = max((len(p["replicas"]) for p in partitions), default=0)
        layouts[topic["topic"]] = TopicLayout(topic["topic"], len(partitions), replication)
    return layouts
