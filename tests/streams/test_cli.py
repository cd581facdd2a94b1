from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hookstream.cli import main


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "routes:\n"
        "  - match: conversation.admin.*\n"
        "    to: [support.admin, '{default}']\n"
        "  - match: ping\n"
        "    drop: true\n"
    )
    return {"HOOKSTREAM_ROUTES_FILE": str(routes), "HOOKSTREAM_ROUTE_PREFIX": "intercom."}


def test_check_routes_prints_the_rules_and_where_topics_go(env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        main,
        [
            "worker",
            "--check-routes",
            "--show-route",
            "conversation.admin.closed",
            "--show-route",
            "ping",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "conversation.admin.* -> support.admin, {default}",
        "ping -> (dropped)",
        "(unmatched) -> intercom.<topic>",
        "conversation.admin.closed: support.admin, intercom.conversation.admin.closed",
        "ping: (dropped)",
    ]


def test_an_invalid_routes_file_stops_the_worker_before_it_starts(
    env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("routes:\n  - match: x\n")
    result = CliRunner().invoke(
        main, ["worker", "--check-routes"], env={**env, "HOOKSTREAM_ROUTES_FILE": str(bad)}
    )
    assert result.exit_code == 1
    assert "invalid routes" in result.output


def test_worker_help_lists_its_options() -> None:
    result = CliRunner().invoke(main, ["worker", "--help"])
    assert result.exit_code == 0
    for option in ("--web-port", "--web-bind", "--check-routes", "--show-route"):
        assert option in result.output
