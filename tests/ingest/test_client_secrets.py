"""INTERCOM_CLIENT_SECRETS with app names (`appA:secret1,appB:secret2`): a malformed value
stops the ingest before it starts, naming the variable and never quoting a secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hookstream.cli import main

STRONG = "k3J9-vQ2x-Lm8P-zT4r"
OTHER = "p7Wd-2hQs-Yx5N-cB8e"


def _ingest(tmp_path: Path, secrets: str) -> tuple[int, str]:
    env = {
        "INTERCOM_CLIENT_SECRET": STRONG,
        "INTERCOM_CLIENT_SECRETS": secrets,
        "HOOKSTREAM_SECRETS_DIR": str(tmp_path),
        "HOOKSTREAM_ALLOW_DEV_SECRETS": "false",
    }
    result = CliRunner().invoke(main, ["ingest"], env=env)
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("secrets", "why"),
    [
        (f":{OTHER}", "entry 1: the app name before `:` is empty"),
        (f"appA:{OTHER},appA:{STRONG}", "names the app appA more than once"),
        (f"appA:{OTHER},appB:", "entry 2: the secret of app appB is empty"),
        (f"appA:{OTHER},app B:{STRONG}", "entry 2: the app name before `:` must be"),
    ],
)
def test_a_malformed_value_is_refused_at_start_naming_the_variable_not_the_secrets(
    tmp_path: Path, secrets: str, why: str
) -> None:
    code, output = _ingest(tmp_path, secrets)
    assert code == 2, output
    assert "INTERCOM_CLIENT_SECRETS" in output
    assert why in output
    assert OTHER not in output
    assert STRONG not in output


def test_a_weak_named_secret_is_refused_naming_its_app(tmp_path: Path) -> None:
    code, output = _ingest(tmp_path, f"appA:{OTHER},appB:changeme")
    assert code == 2, output
    assert "INTERCOM_CLIENT_SECRETS (appB) is a placeholder" in output
    assert "appA" not in output


def test_settings_lists_the_named_form() -> None:
    result = CliRunner().invoke(main, ["settings"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    listed = lines[lines.index("INTERCOM_CLIENT_SECRETS=") + 1]
    assert "appA:secret1,appB:secret2" in listed
    assert "hookstream-app" in listed
