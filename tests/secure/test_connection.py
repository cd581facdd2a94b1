"""The Kafka client factory's security, without a broker: the TLS context and SASL arguments
every client gets, secrets kept out of every repr, and start-up failures that name the
setting to fix (against small fake TLS and plaintext servers)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

from hookstream.core.errors import KafkaAuthFailed, KafkaUnreachable
from hookstream.core.kafka import KafkaConnection, admin_client
from hookstream.core.settings import load_settings
from hookstream.devtools.localkafka import free_port
from hookstream.devtools.localkafka.security import CertificateAuthority, make_ca
from tests.secure.fakes import fake_server, tls_server_context

PASSWORD = "s3cret-never-shown"


def _scram(ca: Path, **overrides: object) -> KafkaConnection:
    settings = load_settings(
        kafka_bootstrap_servers="localhost:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="ingest",
        kafka_sasl_password=PASSWORD,
        kafka_ssl_ca_file=str(ca),
        **overrides,
    )
    return KafkaConnection.from_settings(settings.kafka)


def test_plaintext_is_the_default_and_adds_neither_tls_nor_sasl() -> None:
    connection = KafkaConnection.from_settings(load_settings().kafka)
    config = connection.client_config("x")
    assert config["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in config
    assert "sasl_mechanism" not in config
    assert "broker_credentials" not in connection.faust_config()


def test_sasl_ssl_gives_aiokafka_scram_and_a_verifying_tls_context(
    pki: tuple[CertificateAuthority, Path],
) -> None:
    ca, _ = pki
    config = _scram(ca.cert).client_config("hookstream-ingest")
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["sasl_plain_username"] == "ingest"
    assert config["sasl_plain_password"] == PASSWORD
    context = config["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    issuers = [dict(entry[0] for entry in c["subject"]) for c in context.get_ca_certs()]
    assert {"commonName": "hookstream-local-ca"} in issuers


def test_faust_gets_the_same_scram_credentials_and_tls_context(
    pki: tuple[CertificateAuthority, Path],
) -> None:
    ca, _ = pki
    credentials = _scram(ca.cert).faust_config()["broker_credentials"]
    auth = credentials_to_aiokafka_auth(credentials)
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert auth["sasl_plain_username"] == "ingest"
    assert auth["sasl_plain_password"] == PASSWORD
    assert auth["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_mutual_tls_loads_the_client_certificate_for_aiokafka_and_faust(
    pki: tuple[CertificateAuthority, Path],
) -> None:
    ca, directory = pki
    settings = load_settings(
        kafka_security_protocol="SSL",
        kafka_ssl_ca_file=str(ca.cert),
        kafka_ssl_cert_file=str(directory / "client.pem"),
        kafka_ssl_key_file=str(directory / "client.key"),
        kafka_ssl_check_hostname="false",
    )
    connection = KafkaConnection.from_settings(settings.kafka)
    config = connection.client_config("x")
    assert config["security_protocol"] == "SSL"
    assert config["ssl_context"].check_hostname is False
    assert "sasl_mechanism" not in config
    auth = credentials_to_aiokafka_auth(connection.faust_config()["broker_credentials"])
    assert auth["security_protocol"] == "SSL"


def test_a_key_that_does_not_match_the_certificate_names_the_settings(
    pki: tuple[CertificateAuthority, Path],
) -> None:
    ca, directory = pki
    connection = KafkaConnection(
        "localhost:9093",
        security_protocol="SSL",
        ssl_ca_file=ca.cert,
        ssl_cert_file=directory / "client.pem",
        ssl_key_file=directory / "broker.key",
    )
    with pytest.raises(KafkaAuthFailed, match="KAFKA_SSL_CERT_FILE") as caught:
        connection.client_config("x")
    assert caught.value.setting.startswith("KAFKA_SSL_CERT_FILE")


def test_a_missing_ca_file_names_the_setting(tmp_path: Path) -> None:
    connection = KafkaConnection(
        "localhost:9093", security_protocol="SSL", ssl_ca_file=tmp_path / "nope.pem"
    )
    with pytest.raises(KafkaAuthFailed, match="KAFKA_SSL_CA_FILE"):
        connection.client_config("x")


def test_sasl_without_a_password_is_refused_naming_the_settings() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        load_settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="ingest")


def test_the_password_is_in_no_repr(pki: tuple[CertificateAuthority, Path]) -> None:
    ca, _ = pki
    settings = load_settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="ingest",
        kafka_sasl_password=PASSWORD,
        kafka_ssl_key_password=PASSWORD,
        kafka_ssl_ca_file=str(ca.cert),
    )
    connection = KafkaConnection.from_settings(settings.kafka)
    credentials = connection.faust_config()["broker_credentials"]
    shown = " ".join([repr(settings), str(settings.kafka), repr(connection), repr(credentials)])
    assert "ingest" in shown
    assert PASSWORD not in shown


async def _start_failure(connection: KafkaConnection) -> BaseException:
    with pytest.raises((KafkaAuthFailed, KafkaUnreachable)) as caught:
        async with admin_client(connection, wait_seconds=3):
            pass
    return caught.value


async def test_an_untrusted_broker_certificate_names_the_ca_setting(
    pki: tuple[CertificateAuthority, Path], tmp_path: Path
) -> None:
    _, directory = pki
    other_ca = make_ca(tmp_path, "some-other-ca")
    async with fake_server(tls_server_context(directory, "broker")) as port:
        connection = KafkaConnection(
            f"127.0.0.1:{port}", security_protocol="SSL", ssl_ca_file=other_ca.cert
        )
        error = await _start_failure(connection)
    assert isinstance(error, KafkaAuthFailed)
    assert error.setting == "KAFKA_SSL_CA_FILE"
    assert "not trusted" in str(error)


async def test_a_certificate_for_another_host_names_the_hostname_setting(
    pki: tuple[CertificateAuthority, Path],
) -> None:
    ca, directory = pki
    async with fake_server(tls_server_context(directory, "elsewhere")) as port:
        connection = KafkaConnection(
            f"127.0.0.1:{port}", security_protocol="SSL", ssl_ca_file=ca.cert
        )
        error = await _start_failure(connection)
    assert isinstance(error, KafkaAuthFailed)
    assert error.setting == "KAFKA_SSL_CHECK_HOSTNAME"


async def test_plaintext_against_a_tls_listener_names_the_protocol_setting(
    pki: tuple[CertificateAuthority, Path],
) -> None:
    _, directory = pki
    async with fake_server(tls_server_context(directory, "broker")) as port:
        error = await _start_failure(KafkaConnection(f"127.0.0.1:{port}"))
    assert isinstance(error, KafkaAuthFailed)
    assert error.setting == "KAFKA_SECURITY_PROTOCOL"
    assert "expects TLS" in str(error)


async def test_tls_against_a_plaintext_listener_names_the_protocol_setting(
    pki: tuple[CertificateAuthority, Path],
) -> None:
    ca, _ = pki
    async with fake_server(None) as port:
        connection = KafkaConnection(
            f"127.0.0.1:{port}", security_protocol="SSL", ssl_ca_file=ca.cert
        )
        error = await _start_failure(connection)
    assert isinstance(error, KafkaAuthFailed), error
    assert error.setting == "KAFKA_SECURITY_PROTOCOL"


async def test_nothing_listening_is_still_an_outage() -> None:
    error = await _start_failure(KafkaConnection(f"127.0.0.1:{free_port()}"))
    assert isinstance(error, KafkaUnreachable)


def test_a_setting_is_read_from_its_declared_variable_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # OpenSSL's own variable, set in many images, must not turn on a client certificate;
    # nor may a bare PORT move the ingest.
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "system.pem"))
    monkeypatch.setenv("PORT", "1")
    monkeypatch.setenv("KAFKA_SSL_CA_FILE", str(tmp_path / "ca.pem"))
    settings = load_settings()
    assert settings.kafka.ssl_cert_file is None
    assert settings.ingest.port == 8080
    assert settings.kafka.ssl_ca_file == tmp_path / "ca.pem"


def test_the_sasl_password_can_come_from_the_secrets_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "KAFKA_SASL_PASSWORD").write_text(PASSWORD)
    (tmp_path / "sasl_username").write_text("read-by-field-name")  # not a variable name
    monkeypatch.setenv("HOOKSTREAM_SECRETS_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == PASSWORD
    assert settings.kafka.sasl_username is None
