"""Fixtures of the security tests: a throw-away PKI (a CA, a broker certificate for
localhost, one for another host, a client certificate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookstream.devtools.localkafka.security import CertificateAuthority, issue, make_ca


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertificateAuthority, Path]:
    """(the CA, the folder of its certificates: broker, elsewhere, client)."""
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory)
    issue(ca, directory, "broker", hosts=("localhost", "127.0.0.1"))
    issue(ca, directory, "elsewhere", hosts=("kafka.example.com",))
    issue(ca, directory, "client")
    return ca, directory
