"""Fixtures of the security tests: a throw-away PKI (a CA, a broker certificate for
localhost, one for another host, a client certificate), and a secured local broker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookstream.core.settings import load_settings
from hookstream.devtools import localkafka
from hookstream.devtools.localkafka.security import (
    BrokerSecurity,
    CertificateAuthority,
    Mode,
    issue,
    make_ca,
)
from hookstream.ops.acls import required_acls


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertificateAuthority, Path]:
    """(the CA, the folder of its certificates: broker, elsewhere, client)."""
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory)
    issue(ca, directory, "broker", hosts=("localhost", "127.0.0.1"))
    issue(ca, directory, "elsewhere", hosts=("kafka.example.com",))
    issue(ca, directory, "client")
    return ca, directory


def _secured_broker(mode: Mode, data_dir: Path) -> Iterator[tuple[str, BrokerSecurity]]:
    security = BrokerSecurity.prepare(mode, data_dir)
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


@pytest.fixture(params=["scram_broker", "mtls_broker"])
def secure_broker(request: pytest.FixtureRequest) -> tuple[str, BrokerSecurity]:
    """Each secured broker in turn."""
    broker: tuple[str, BrokerSecurity] = request.getfixturevalue(request.param)
    return broker
