"""Fixtures of the security tests: a throw-away PKI (a CA, a broker certificate for
localhost, one for another host, a client certificate), the secured local brokers (SCRAM,
mTLS, OAUTHBEARER with a local OIDC provider), and the whole pipeline on one of them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookstream.core.settings import load_settings
from hookstream.devtools import localkafka
from hookstream.devtools.dev import Service
from hookstream.devtools.localkafka.security import (
    ADMIN,
    BrokerSecurity,
    CertificateAuthority,
    Mode,
    OAuthServer,
    issue,
    make_ca,
)
from hookstream.ops.acls import default_user, required_acls
from tests.secure import oidc
from tests.support.ingest import SECRET

API_TOKEN = "secure-test-api-token"
"""The pipeline's HOOKSTREAM_API_TOKEN (for POST /events)."""
SANDBOX_TOKEN = "secure-test-sandbox-token"  # the sandbox and the sink: local, yet strong
TOKEN_SECONDS = 12
"""The lifetime of the OIDC provider's tokens: short, so that they expire during a test."""


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertificateAuthority, Path]:
    """(the CA, the folder of its certificates: broker, elsewhere, client)."""
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory)
    issue(ca, directory, "broker", hosts=("localhost", "127.0.0.1"))
    issue(ca, directory, "elsewhere", hosts=("kafka.example.com",))
    issue(ca, directory, "client")
    return ca, directory


def _secured_broker(
    mode: Mode, data_dir: Path, oauth: OAuthServer | None = None
) -> Iterator[tuple[str, BrokerSecurity]]:
    security = BrokerSecurity.prepare(mode, data_dir, oauth=oauth)
    bootstrap = localkafka.start(port=localkafka.free_port(), data_dir=data_dir, security=security)
    try:
        asyncio.run(security.apply_acls(bootstrap, required_acls(load_settings())))
        yield bootstrap, security
    finally:
        localkafka.stop(data_dir)


@pytest.fixture(scope="session")
def scram_broker(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, BrokerSecurity]]:
    """A SASL_SSL (SCRAM-SHA-512) local broker with the authorizer on and exactly the ACLs
    `hookstream acls` prints for the default settings, started once per session:
    (bootstrap, its security, for each user's client settings)."""
    yield from _secured_broker("sasl_ssl", tmp_path_factory.mktemp("scram-kafka"))


@pytest.fixture(scope="session")
def mtls_broker(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, BrokerSecurity]]:
    """The same with a TLS listener that requires client certificates (one per user)."""
    yield from _secured_broker("ssl", tmp_path_factory.mktemp("mtls-kafka"))


@pytest.fixture(scope="session")
def oidc_provider() -> oidc.OidcProvider:
    """The OIDC provider of `oauth_broker` (its clients are the broker's users)."""
    return oidc.OidcProvider(clients={}, lifetime=TOKEN_SECONDS)


@pytest.fixture(scope="session")
def oauth_broker(
    tmp_path_factory: pytest.TempPathFactory, oidc_provider: oidc.OidcProvider
) -> Iterator[tuple[str, BrokerSecurity]]:
    """A SASL_SSL broker whose services authenticate with OAUTHBEARER: JWTs from
    `oidc_provider` (client credentials, `sub` the service's user, expiring after
    TOKEN_SECONDS), checked against its JWKS; sessions end when the token expires."""
    with oidc.serving(oidc_provider, reauth_ms=TOKEN_SECONDS * 1000) as server:
        for broker in _secured_broker(
            "sasl_ssl", tmp_path_factory.mktemp("oauth-kafka"), oauth=server
        ):
            oidc_provider.clients.update(
                (user, secret) for user, secret in broker[1].passwords.items() if user != ADMIN
            )
            yield broker


@pytest.fixture(params=["scram_broker", "mtls_broker"])
def secure_broker(request: pytest.FixtureRequest) -> tuple[str, BrokerSecurity]:
    """Each secured broker in turn."""
    broker: tuple[str, BrokerSecurity] = request.getfixturevalue(request.param)
    return broker


@pytest.fixture
def pipeline(secure_broker: tuple[str, BrokerSecurity], tmp_path: Path) -> Iterator[dict[str, int]]:
    """Sandbox, worker, sink and ingest, each with its own user's client settings."""
    bootstrap, security = secure_broker
    ports = {
        name: localkafka.free_port() for name in ("sandbox", "worker", "sink", "ingest", "admin")
    }
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KAFKA_", "INTERCOM_", "HOOKSTREAM_"))
    }
    base |= {
        "INTERCOM_CLIENT_SECRET": SECRET,
        "HOOKSTREAM_API_TOKEN": API_TOKEN,
        "HOOKSTREAM_SPOOL_PATH": str(tmp_path / "spool.sqlite3"),
        "HOOKSTREAM_DATA_DIR": str(tmp_path / "faust"),
        "HOOKSTREAM_WORKER_WEB_PORT": str(ports["worker"]),
        "HOOKSTREAM_SINK_WEB_PORT": str(ports["sink"]),
        "INTERCOM_API_BASE_URL": f"http://127.0.0.1:{ports['sandbox']}",
        "INTERCOM_ACCESS_TOKEN": SANDBOX_TOKEN,
        "HOOKSTREAM_LOG_FORMAT": "json",
    }
    commands = {
        "sandbox": ["sandbox", "--port", str(ports["sandbox"])],
        "worker": ["worker"],
        "sink": ["sink"],
        "ingest": ["ingest", "--port", str(ports["ingest"]), "--admin-port", str(ports["admin"])],
    }
    services: list[Service] = []
    try:
        for name, args in commands.items():
            env = dict(base)
            if name != "sandbox":
                env |= security.client_settings(default_user(name), bootstrap)
            service = Service(
                name, args, f"http://127.0.0.1:{ports[name]}/healthz", tmp_path / f"{name}.log"
            )
            service.start(env)
            services.append(service)
            service.wait_healthy()
        yield ports
    finally:
        for service in reversed(services):
            service.stop()
