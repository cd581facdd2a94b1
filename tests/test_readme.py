"""The README stays true to the code: its settings table is the one the CLI prints."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from hookstream.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_settings_table_is_the_generated_one() -> None:
    generated = CliRunner().invoke(main, ["settings", "--markdown"]).output.strip()
    block = re.search(
        r"<!-- settings-table.*?-->\n(.*?)\n<!-- /settings-table -->", README.read_text(), re.S
    )
    assert block is not None, "the README has no settings-table block"
    assert block.group(1).strip() == generated, (
        "README settings table is stale: paste `hookstream settings --markdown` into it"
    )


def test_first_lines_give_the_two_setup_commands() -> None:
    head = README.read_text().splitlines()[:6]
    assert any(line.startswith("scripts/dev") for line in head)
    assert any(line.startswith("scripts/check") for line in head)
    ci = (README.parent / ".ci" / "run").read_text()
    assert "scripts/check" in ci, ".ci/run runs the README's test command"
