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


@pytest.fixture(scope="session")
def secure_broker(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, BrokerSecurity]]:
    """A SASL_SSL (SCRAM-SHA-512) local broker with the authorizer on and exactly the ACLs
    `hookstream acls` prints for the default settings, started once per session:
    (bootstrap, its security, for each user's client settings)."""
    data_dir = tmp_path_factory.mktemp("secure-kafka")
    security = BrokerSecurity.prepare("sasl_ssl", data_dir)
    bootstrap = localkafka.start(port=localkafka.free_port(), data_dir=data_dir, security=security)
    try:
        asyncio.run(security.apply_acls(bootstrap, required_acls(load_settings())))
        yield bootstrap, security
    finally:
        localkafka.stop(data_dir)
