"""The ingest never spools quietly through a refused login or certificate: the command stops
at start-up naming the setting, and a refusal met while running shows in /readyz and in a
metric (the records still spool: they are durable, and drain once the setting is fixed)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from prometheus_client import REGISTRY

from hookstream.devtools.localkafka.security import CertificateAuthority
from hookstream.ingest.cli import ingest_command
from tests.secure.fakes import fake_server, tls_server_context
from tests.support.ingest import ingest_client, ingest_settings, notification, signed_headers

_AUTH_FAILURES = "hookstream_ingest_kafka_auth_failures_total"


async def test_a_refused_connection_makes_the_ingest_unready_saying_which_setting(
    pki: tuple[CertificateAuthority, Path], tmp_path: Path
) -> None:
    _, directory = pki
    before = REGISTRY.get_sample_value(_AUTH_FAILURES) or 0.0
    async with fake_server(tls_server_context(directory, "broker")) as port:
        settings = ingest_settings(f"127.0.0.1:{port}", tmp_path)  # PLAINTEXT against TLS
        async with ingest_client(settings) as client:
            ready = await client.admin.get("/readyz")
            body = notification()
            accepted = await client.post(
                "/webhooks/intercom", content=body, headers=signed_headers(body)
            )
    assert ready.status_code == 503
    assert ready.json()["kafka"] == "refused"
    assert "KAFKA_SECURITY_PROTOCOL" in ready.json()["kafka_refused"]
    assert (REGISTRY.get_sample_value(_AUTH_FAILURES) or 0.0) > before
    assert accepted.status_code == 200  # spooled: durable, not lost


def test_the_ingest_command_stops_at_start_up_naming_the_setting(tmp_path: Path) -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "ingest",
        "KAFKA_SASL_PASSWORD": "wrong-and-secret",
        "KAFKA_SSL_CA_FILE": str(tmp_path / "missing-ca.pem"),
        "INTERCOM_CLIENT_SECRET": "secure-test-client-secret",
        "HOOKSTREAM_SPOOL_PATH": str(tmp_path / "spool.sqlite3"),
    }
    result = CliRunner().invoke(ingest_command, [], env=env)
    assert result.exit_code == 1, result.output
    assert "KAFKA_SSL_CA_FILE" in result.output
    assert "wrong-and-secret" not in result.output
    assert "Traceback" not in result.output
