"""OAUTHBEARER without a broker: OIDC client-credentials tokens (fetched, cached, refreshed
before expiry, a refusal naming the setting), MSK IAM tokens signed by AWS's library, and
both handed to aiokafka and Faust by the factory."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import SecretStr, ValidationError

from hookstream.core._oauth import MskIamTokenProvider, OidcTokenProvider
from hookstream.core.errors import KafkaAuthFailed
from hookstream.core.kafka import KafkaConnection
from hookstream.core.settings import load_settings

CLIENT_SECRET = "oidc-secret-never-shown"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _endpoint(requests: list[httpx.Request], status: int = 200) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        body = {"access_token": f"token-{len(requests)}", "expires_in": 100}
        return httpx.Response(status, json=body if status == 200 else {"error": "nope"})

    return httpx.MockTransport(answer)


async def test_an_oidc_token_is_cached_and_fetched_again_before_it_expires() -> None:
    requests: list[httpx.Request] = []
    clock = _Clock()
    provider = OidcTokenProvider(
        "https://idp.test/token", "hookstream-ingest", SecretStr(CLIENT_SECRET), "kafka",
        transport=_endpoint(requests), clock=clock,
    )  # fmt: skip
    assert await provider.token() == "token-1"
    clock.now += 49
    assert await provider.token() == "token-1"
    clock.now += 2  # past half of its 100 s life: well before it expires
    assert await provider.token() == "token-2"
    form = parse_qs(requests[0].content.decode())
    assert form == {"grant_type": ["client_credentials"], "scope": ["kafka"]}
    assert requests[0].headers["authorization"].startswith("Basic ")


async def test_a_refused_oidc_client_names_the_secret_setting_without_showing_it() -> None:
    provider = OidcTokenProvider(
        "https://idp.test/token", "hookstream-ingest", SecretStr(CLIENT_SECRET),
        transport=_endpoint([], status=401),
    )  # fmt: skip
    with pytest.raises(KafkaAuthFailed) as caught:
        await provider.token()
    assert caught.value.setting == "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET"
    assert CLIENT_SECRET not in str(caught.value)


def test_the_factory_gives_aiokafka_and_faust_the_oidc_token_provider() -> None:
    settings = load_settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="OAUTHBEARER",
        kafka_sasl_oauthbearer_token_endpoint_url="https://idp.test/token",
        kafka_sasl_oauthbearer_client_id="hookstream-worker",
        kafka_sasl_oauthbearer_client_secret=CLIENT_SECRET,
    )
    connection = KafkaConnection.from_settings(settings.kafka)
    config = connection.client_config("x")
    assert config["sasl_mechanism"] == "OAUTHBEARER"
    assert isinstance(config["sasl_oauth_token_provider"], OidcTokenProvider)
    assert "sasl_plain_password" not in config
    auth = credentials_to_aiokafka_auth(connection.faust_config()["broker_credentials"])
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "OAUTHBEARER"
    assert isinstance(auth["sasl_oauth_token_provider"], OidcTokenProvider)
    assert connection.principal == "User:hookstream-worker"
    assert CLIENT_SECRET not in repr(connection) + repr(settings)


def test_oauthbearer_settings_name_what_is_missing() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET"):
        load_settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="OAUTHBEARER",
            kafka_sasl_oauthbearer_token_endpoint_url="https://idp.test/token",
            kafka_sasl_oauthbearer_client_id="c",
        )
    with pytest.raises(ValidationError, match="AWS_REGION"):
        load_settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="OAUTHBEARER",
            kafka_sasl_oauthbearer_provider="aws-msk-iam",
        )


async def test_the_msk_iam_provider_signs_a_connect_token_with_the_aws_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAHOOKSTREAMTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    settings = load_settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="OAUTHBEARER",
        kafka_sasl_oauthbearer_provider="aws-msk-iam",
        aws_region="eu-west-1",
    )
    provider = KafkaConnection.from_settings(settings.kafka).client_config("x")[
        "sasl_oauth_token_provider"
    ]
    assert isinstance(provider, MskIamTokenProvider)
    token = await provider.token()
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.hostname == "kafka.eu-west-1.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert unquote(query["X-Amz-Credential"][0]).startswith("AKIAHOOKSTREAMTEST/")
    assert "X-Amz-Signature" in query
    assert await provider.token() == token  # cached
