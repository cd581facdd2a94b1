"""`hookstream verify-signature` and `send-webhook` with secrets named by app or workspace."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from click.testing import CliRunner

from hookstream.cli import main

SECRET_A = "app-a-client-secret-0123"
SECRET_B = "app-b-client-secret-4567"


def _verify(body_file: Path, secret: str, env: dict[str, str | None]) -> tuple[int, str]:
    signature = (
        "sha1=" + hmac.new(secret.encode(), body_file.read_bytes(), hashlib.sha1).hexdigest()
    )
    result = CliRunner().invoke(
        main, ["verify-signature", str(body_file), "--signature", signature], env=env
    )
    return result.exit_code, result.output.strip()


def test_it_names_the_app_whose_secret_matched(tmp_path: Path) -> None:
    body_file = tmp_path / "body.json"
    body_file.write_bytes(b'{"type": "notification_event", "app_id": "ws1"}')
    env: dict[str, str | None] = {
        "INTERCOM_CLIENT_SECRET": "unnamed-client-secret-89",
        "INTERCOM_CLIENT_SECRETS": f"appA:{SECRET_A},appB:{SECRET_B}",
        "HOOKSTREAM_SECRETS_DIR": str(tmp_path),
    }
    assert _verify(body_file, SECRET_B, env) == (0, "valid (the secret of app appB)")
    assert _verify(body_file, SECRET_A, env) == (0, "valid (the secret of app appA)")
    assert _verify(body_file, "unnamed-client-secret-89", env) == (0, "valid")
    code, output = _verify(body_file, "another-secret-entirely", env)
    assert code == 1
    assert output.startswith("invalid")


def test_send_webhook_refuses_a_secret_for_no_workspace_and_a_body_file_for_several(
    tmp_path: Path,
) -> None:
    body_file = tmp_path / "body.json"
    body_file.write_bytes(b"{}")
    stray = CliRunner().invoke(
        main, ["send-webhook", "--app-id", "ws1", "--secret", f"ws2:{SECRET_A}"]
    )
    several = CliRunner().invoke(
        main,
        ["send-webhook", "--body-file", str(body_file), "--app-id", "a", "--app-id", "b"],
    )
    unsigned = CliRunner(env={"INTERCOM_CLIENT_SECRET": None}).invoke(
        main, ["send-webhook", "--app-id", "ws1", "--app-id", "ws2", "--secret", f"ws1:{SECRET_A}"]
    )
    assert (stray.exit_code, several.exit_code, unsigned.exit_code) == (2, 2, 2)
    assert "no --app-id ws2 to sign for" in stray.output
    assert "at most one --app-id" in several.output
    assert "give --secret or set INTERCOM_CLIENT_SECRET" in unsigned.output
