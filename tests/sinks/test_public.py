"""What the sink package exports, and `hookstream sink` refusing to start half-configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hookstream import sinks
from hookstream.cli import main


def test_the_package_exports_exactly_its_public_names() -> None:
    exported = {name for name in dir(sinks) if not name.startswith("_")}
    modules = {"app", "client", "errors", "ratelimit", "pipeline", "dedup", "offsets"}
    modules |= {"deadletter", "metrics", "cli", "workspaces"}
    assert exported - modules == set(sinks.__all__)
    assert all(getattr(sinks, name) is not None for name in sinks.__all__)


@pytest.mark.parametrize("token", [None, "", "  "])
def test_hookstream_sink_refuses_to_start_without_an_access_token(token: str | None) -> None:
    result = CliRunner().invoke(main, ["sink"], env={"INTERCOM_ACCESS_TOKEN": token})
    assert result.exit_code == 2
    assert "INTERCOM_ACCESS_TOKEN" in result.output


def test_hookstream_sink_refuses_a_malformed_workspace_tokens_file_naming_it(
    tmp_path: Path,
) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("workspaces:\n  ws1: {region: us}\n")
    env = {"INTERCOM_ACCESS_TOKEN": None, "HOOKSTREAM_SINK_WORKSPACE_TOKENS_FILE": str(tokens)}
    result = CliRunner().invoke(main, ["sink"], env=env)
    assert result.exit_code == 2
    assert str(tokens) in result.output
    assert "workspaces.ws1.token" in result.output
