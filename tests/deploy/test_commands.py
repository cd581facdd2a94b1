"""Every command line the deployments run (compose `command`, Kubernetes `args`, after the
image's ENTRYPOINT `hookstream`) names a real subcommand with options it accepts."""

from __future__ import annotations

from click.testing import CliRunner

from hookstream.cli import main
from tests.deploy._manifests import Rendered, containers
from tests.deploy.test_compose import compose


def _command_lines(renders: dict[str, Rendered]) -> list[list[str]]:
    lines = [
        service["command"] for service in compose()["services"].values() if "command" in service
    ]
    for rendered in renders.values():
        lines += [
            container["args"]
            for workload in rendered.workloads()
            for container in containers(workload)
        ]
    unique = {tuple(line) for line in lines}
    return [list(line) for line in sorted(unique)]


def _accepts(args: list[str]) -> tuple[int, str]:
    # --help after the arguments: click parses them all (refusing an unknown option or a bad
    # value) before it prints the help and exits 0.
    result = CliRunner().invoke(main, [*args, "--help"])
    return result.exit_code, result.output


def test_every_deployed_command_line_is_accepted_by_the_cli(renders: dict[str, Rendered]) -> None:
    lines = _command_lines(renders)
    assert {line[0] for line in lines} == {"topics", "ingest", "worker", "sink", "sandbox"}
    refused = {}
    for args in lines:
        exit_code, output = _accepts(args)
        if exit_code != 0:
            refused[" ".join(args)] = output
    assert not refused, refused


def test_an_unknown_option_is_refused() -> None:
    # The control for the check above.
    exit_code, output = _accepts(["sandbox", "--no-such-option", "1"])
    assert exit_code == 2
    assert "No such option" in output
