"""The whole pipeline against a SASL_SSL (SCRAM) broker and against an mTLS one, with the
authorizer on, each service as its own user holding only the ACLs `hookstream acls` prints;
and what a client that gets the security wrong sees: one message naming the setting, within
the connect timeout."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from hookstream.core.errors import KafkaAuthFailed
from hookstream.core.kafka import KafkaConnection, check_credentials
from hookstream.core.settings import load_settings
from hookstream.devtools.localkafka.security import BrokerSecurity
from hookstream.ops.acls import default_user
from tests.secure.commands import run_as
from tests.secure.conftest import API_TOKEN
from tests.support.ingest import (
    ingest_client,
    ingest_settings,
    notification,
    signed_headers,
)

pytestmark = pytest.mark.integration


def _connection(
    security: BrokerSecurity, user: str, bootstrap: str, **overrides: str
) -> KafkaConnection:
    values = {k.lower(): v for k, v in security.client_settings(user, bootstrap).items()}
    return KafkaConnection.from_settings(load_settings(**(values | overrides)).kafka)


def test_a_webhook_and_a_data_event_cross_the_pipeline_each_service_as_its_own_user(
    secure_broker: tuple[str, BrokerSecurity], pipeline: dict[str, int], tmp_path: Path
) -> None:
    bootstrap, security = secure_broker
    body = notification("contact.user.created")
    ingest = f"http://127.0.0.1:{pipeline['ingest']}"
    accepted = httpx.post(f"{ingest}/webhooks/intercom", content=body, headers=signed_headers(body))
    assert accepted.status_code == 200, accepted.text
    assert httpx.get(f"http://127.0.0.1:{pipeline['admin']}/readyz").json()["kafka"] == "up"

    # routed by the worker, read back as the operator's user with `hookstream tail`
    operator_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "HOOKSTREAM_"))
    } | security.client_settings(default_user("operator"), bootstrap)
    tailed = subprocess.run(  # it waits for the worker to create the routed topic
        [sys.executable, "-m", "hookstream.cli", "tail", "intercom.contact.user.created",
         "--from-beginning", "--max", "1", "--timeout", "60", "--json"],
        env=operator_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert tailed.returncode == 0, tailed.stderr
    [record] = [orjson.loads(line) for line in tailed.stdout.splitlines()]
    assert record["headers"]["intercom-topic"] == "contact.user.created"

    event = {"event_name": "secured-plan", "created_at": int(time.time()), "user_id": "u-9"}
    posted = httpx.post(
        f"{ingest}/events", json=event, headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert posted.status_code == 202, posted.text
    assert posted.json()["durable_in"] == "kafka", "the ingest's transactional-id ACLs suffice"
    sandbox = f"http://127.0.0.1:{pipeline['sandbox']}"
    deadline = time.monotonic() + 60
    delivered: list[object] = []
    while time.monotonic() < deadline and not delivered:
        delivered = [e["event"] for e in httpx.get(f"{sandbox}/sandbox/accepted").json()["events"]]
        time.sleep(0.5)
    assert delivered == [event]
    logs = " ".join(log.read_text() for log in tmp_path.glob("*.log"))
    assert "ingest_started" in logs
    assert not [password for password in security.passwords.values() if password in logs]


async def test_a_wrong_password_fails_fast_naming_the_setting(
    scram_broker: tuple[str, BrokerSecurity],
) -> None:
    bootstrap, security = scram_broker
    wrong = "not-the-password-at-all"
    connection = _connection(security, default_user("ingest"), bootstrap, kafka_sasl_password=wrong)
    started = time.monotonic()
    with pytest.raises(KafkaAuthFailed) as caught:
        await check_credentials(connection, wait_seconds=10)
    assert time.monotonic() - started < 10
    assert caught.value.setting == "KAFKA_SASL_PASSWORD"
    assert "hookstream-ingest" in str(caught.value)
    assert wrong not in str(caught.value)


async def test_a_plaintext_client_is_refused_naming_the_protocol_setting(
    scram_broker: tuple[str, BrokerSecurity],
) -> None:
    bootstrap, _ = scram_broker
    with pytest.raises(KafkaAuthFailed) as caught:
        await check_credentials(KafkaConnection(bootstrap), wait_seconds=10)
    assert caught.value.setting == "KAFKA_SECURITY_PROTOCOL"


async def test_a_client_without_a_certificate_is_refused_naming_the_certificate_setting(
    mtls_broker: tuple[str, BrokerSecurity],
) -> None:
    bootstrap, security = mtls_broker
    connection = KafkaConnection(bootstrap, security_protocol="SSL", ssl_ca_file=security.ca_file)
    with pytest.raises(KafkaAuthFailed) as caught:
        await check_credentials(connection, wait_seconds=10)
    assert caught.value.setting == "KAFKA_SSL_CERT_FILE"


async def test_a_missing_acl_makes_the_ingest_unready_naming_operation_topic_and_principal(
    scram_broker: tuple[str, BrokerSecurity], tmp_path: Path
) -> None:
    bootstrap, security = scram_broker
    values = {
        k.lower(): v for k, v in security.client_settings(default_user("ingest"), bootstrap).items()
    }
    # the ingest's ACLs name the default raw topic, not this one
    settings = ingest_settings(bootstrap, tmp_path, **values, hookstream_raw_topic="unlisted.raw")
    async with ingest_client(settings) as client:
        ready = (await client.admin.get("/readyz")).json()
        body = notification()
        accepted = await client.post(
            "/webhooks/intercom", content=body, headers=signed_headers(body)
        )
    assert ready["kafka"] == "refused"
    assert "User:hookstream-ingest" in ready["kafka_refused"]
    assert "topic 'unlisted.raw'" in ready["kafka_refused"]
    assert "Write" in ready["kafka_refused"]
    assert accepted.status_code == 200  # spooled, not lost


@pytest.mark.parametrize("service", ["ingest", "worker", "sink"])
def test_each_service_stops_at_start_up_on_a_wrong_password_with_one_line(
    scram_broker: tuple[str, BrokerSecurity], tmp_path: Path, service: str
) -> None:
    wrong = "wrong-password-for-the-test"
    started = time.monotonic()
    result = run_as(service, scram_broker, [service], tmp_path, KAFKA_SASL_PASSWORD=wrong)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert time.monotonic() - started < 30
    assert "KAFKA_SASL_PASSWORD" in result.stderr
    assert "Traceback" not in output
    assert wrong not in output
