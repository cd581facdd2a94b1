"""A local broker's OAUTHBEARER set-up, without starting it: what the services and the admin
connect with, and a data dir that cannot change its mechanism."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookstream.core.errors import LocalKafkaError
from hookstream.devtools.localkafka.security import ADMIN, BrokerSecurity, OAuthServer
from hookstream.ops.acls import default_user

SERVER = OAuthServer(
    jwks_url="http://127.0.0.1:1/jwks",
    token_url="http://127.0.0.1:1/token",
    issuer="http://127.0.0.1:1",
    audience="kafka",
)


def test_services_get_oidc_client_settings_and_the_admin_stays_on_scram(tmp_path: Path) -> None:
    security = BrokerSecurity.prepare("sasl_ssl", tmp_path, oauth=SERVER)
    worker = security.client_settings(default_user("worker"), "127.0.0.1:9093")
    admin = security.client_settings(ADMIN, "127.0.0.1:9093")
    assert worker["KAFKA_SASL_MECHANISM"] == "OAUTHBEARER"
    assert worker["KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL"] == SERVER.token_url
    assert worker["KAFKA_SASL_OAUTHBEARER_CLIENT_ID"] == "hookstream-worker"
    assert admin["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert security.jvm_properties() == [
        f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={SERVER.jwks_url}"
    ]
    assert security.format_arguments()[1].startswith(f"SCRAM-SHA-512=[name={ADMIN},")
    assert len(security.format_arguments()) == 2  # only the admin is a SCRAM user


def test_a_data_dir_keeps_its_mechanism(tmp_path: Path) -> None:
    BrokerSecurity.prepare("sasl_ssl", tmp_path, oauth=SERVER)
    with pytest.raises(LocalKafkaError, match=r"sasl_ssl \(OAUTHBEARER\) broker"):
        BrokerSecurity.prepare("sasl_ssl", tmp_path)
    with pytest.raises(LocalKafkaError, match="OAUTHBEARER needs the sasl_ssl listener"):
        BrokerSecurity.prepare("ssl", tmp_path / "other", oauth=SERVER)
