"""Careless secrets: a blank one is unset (never a password that a blank header matches), and
the ingest and the sink refuse to start on a short, placeholder or development secret unless
told it is a development set-up (dev mode, compose), which they then say."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from structlog.testing import capture_logs

from hookstream.cli import main
from hookstream.core.settings import load_settings
from hookstream.ingest import create_app
from tests.support.ingest import SECRET, ingest_client, ingest_settings

NO_KAFKA = "127.0.0.1:9"  # refuses connections: the ingest spools, /events never gets there
BLANK_BEARERS = [b"Bearer ", b"Bearer  ", b"Bearer \xa0", b"Bearer \t"]


@pytest.mark.parametrize("token", ["", " ", "\u00a0", "\t\n"])
async def test_blank_api_token_is_unset_and_no_blank_bearer_gets_in(
    token: str, tmp_path: Path
) -> None:
    settings = ingest_settings(NO_KAFKA, tmp_path, hookstream_api_token=token)
    async with ingest_client(settings) as client:
        for bearer in BLANK_BEARERS:
            response = await client.post(
                "/events", content=b"{}", headers={"Authorization": bearer}
            )
            assert response.status_code == 401, (bearer, response.text)
            assert "HOOKSTREAM_API_TOKEN is not set" in response.json()["error"]["message"]
    assert settings.ingest.api_token is None


@pytest.mark.parametrize("content", ["", "   \n", "\u00a0\n"])
def test_blank_secret_files_are_unset(
    content: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in (
        "INTERCOM_CLIENT_SECRET",
        "INTERCOM_CLIENT_SECRETS",
        "HOOKSTREAM_API_TOKEN",
        "INTERCOM_ACCESS_TOKEN",
    ):
        (tmp_path / variable).write_text(content)
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOOKSTREAM_SECRETS_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.ingest.intercom_client_secret is None
    assert settings.ingest.client_secrets == []
    assert settings.ingest.api_token is None
    assert settings.sink.intercom_access_token is None


def test_blank_variables_are_unset_and_the_ingest_says_which_to_set(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["ingest"],
        env={
            "INTERCOM_CLIENT_SECRET": " \u00a0",
            "INTERCOM_CLIENT_SECRETS": " , ",
            "HOOKSTREAM_SECRETS_DIR": str(tmp_path),
        },
    )
    assert result.exit_code == 2, result.output
    assert "set INTERCOM_CLIENT_SECRET" in result.output


STRONG = "k3J9-vQ2x-Lm8P-zT4r"


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("INTERCOM_CLIENT_SECRET", "short-secret", "shorter than 16 bytes"),
        ("INTERCOM_CLIENT_SECRET", "REPLACE_ME_intercom_client_secret", "placeholder"),
        ("INTERCOM_CLIENT_SECRET", "dev-client-secret", "development default"),
        ("INTERCOM_CLIENT_SECRETS", f"{STRONG},changeme", "placeholder"),
        ("HOOKSTREAM_API_TOKEN", "dev-api-token", "development default"),
        ("HOOKSTREAM_API_TOKEN", "Change-Me-Change-Me", "placeholder"),
        ("HOOKSTREAM_API_TOKEN", "secret", "placeholder"),
        ("HOOKSTREAM_API_TOKEN", "ünïcödé-pw", "shorter than 16 bytes"),
    ],
)
def test_ingest_refuses_to_start_on_a_weak_secret_and_names_it(
    variable: str, value: str, why: str, tmp_path: Path
) -> None:
    env = {
        "INTERCOM_CLIENT_SECRET": STRONG,
        "HOOKSTREAM_API_TOKEN": STRONG,
        "HOOKSTREAM_SECRETS_DIR": str(tmp_path),
        "HOOKSTREAM_ALLOW_DEV_SECRETS": "false",
        variable: value,
    }
    result = CliRunner().invoke(main, ["ingest"], env=env)
    assert result.exit_code == 2, result.output
    assert f"{variable} is" in result.output
    assert why in result.output
    weak = value.rsplit(",", 1)[-1]
    assert STRONG not in result.output, "no secret is shown"
    if weak != "secret":  # a word the message has anyway
        assert weak not in result.output, "no secret is shown"


def test_the_ingest_app_refuses_a_weak_secret_too(tmp_path: Path) -> None:
    settings = ingest_settings(NO_KAFKA, tmp_path, hookstream_api_token="dev-api-token")
    with pytest.raises(ValueError, match="HOOKSTREAM_API_TOKEN is a development default"):
        create_app(settings)


async def test_dev_secrets_are_accepted_when_allowed_and_said_at_start(tmp_path: Path) -> None:
    settings = ingest_settings(
        NO_KAFKA,
        tmp_path,
        intercom_client_secret="dev-client-secret",
        hookstream_api_token="dev-api-token",
        hookstream_allow_dev_secrets=True,
    )
    with capture_logs() as logs:
        async with ingest_client(settings) as client:
            assert (await client.get("/healthz")).status_code == 200
    warnings = [e for e in logs if e["event"] == "ingest_using_dev_secrets"]
    assert len(warnings) == 1, logs
    assert warnings[0]["weak"] == [
        "INTERCOM_CLIENT_SECRET is a development default",
        "HOOKSTREAM_API_TOKEN is a development default",
    ]
    assert SECRET not in str(logs)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("sandbox-token", "is a development default"),
        ("REPLACE_ME_intercom_access_token", "is a placeholder"),
        ("changeme", "is a placeholder"),
        ("dG9rOjEyMzQ=", "is shorter than 16 bytes"),
    ],
)
def test_the_sink_refuses_to_start_on_a_weak_access_token_and_names_it(
    value: str, why: str, tmp_path: Path
) -> None:
    env = {
        "INTERCOM_ACCESS_TOKEN": value,
        "HOOKSTREAM_SECRETS_DIR": str(tmp_path),
        "HOOKSTREAM_ALLOW_DEV_SECRETS": "false",
    }
    result = CliRunner().invoke(main, ["sink"], env=env)
    assert result.exit_code == 2, result.output
    assert f"INTERCOM_ACCESS_TOKEN {why}" in result.output
    assert "HOOKSTREAM_ALLOW_DEV_SECRETS" in result.output  # how dev mode and compose start
    assert value not in result.output, "no secret is shown"
