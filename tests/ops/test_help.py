"""The operator commands load through `hookstream` and explain themselves."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hookstream.cli import main


@pytest.mark.parametrize(
    ("command", "phrases"),
    [
        ("topics", ["[[describe|create]]", "idempotent", "--json", "--bootstrap"]),
        ("tail", ["--from-beginning", "--max N", "--timeout SECONDS", "--full", "read_committed"]),
        ("replay", ["--dry-run", "--reason TEXT", "--since TIME", "--key KEY", "--to TOPIC"]),
    ],
)
def test_each_command_has_a_real_help_text(command: str, phrases: list[str]) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    for phrase in phrases:
        assert phrase in result.output
