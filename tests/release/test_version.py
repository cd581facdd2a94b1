"""One version, from pyproject.toml: `hookstream --version`, every service's
`hookstream_build_info` metric, the compose build argument, the changelog; and the licence."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version

from click.testing import CliRunner
from prometheus_client import REGISTRY, generate_latest

from hookstream.cli import main
from hookstream.core.build_info import VERSION
from hookstream.ingest import metrics as ingest_metrics
from hookstream.sinks.metrics import SinkMetrics
from hookstream.streams.metrics import WorkerMetrics
from tests.deploy._manifests import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_the_version_is_pyprojects_and_the_cli_shows_it() -> None:
    assert PYPROJECT["version"] == VERSION
    shown = CliRunner().invoke(main, ["--version"])
    assert shown.exit_code == 0
    assert shown.output.endswith(f", version {VERSION}\n")


def test_every_service_exports_its_build_info() -> None:
    assert ingest_metrics.BUILD_INFO  # imported, the ingest's metrics are in REGISTRY
    line = re.compile(
        r'^hookstream_build_info\{aiokafka="(\d+\.\d+\.\d+)",faust="(\d+\.\d+\.\d+)",'
        r'python="3\.\d+\.\d+",version="([^"]+)"\} 1\.0$',
        re.M,
    )
    for name, exposition in (
        ("ingest", generate_latest(REGISTRY)),
        ("worker", WorkerMetrics().exposition()),
        ("sink", SinkMetrics().exposition()),
    ):
        assert line.findall(exposition.decode()) == [
            (version("aiokafka"), version("faust-streaming"), VERSION)
        ], name


def test_the_changelog_starts_with_this_version_in_keep_a_changelog_form() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n")
    assert "keepachangelog.com" in text
    assert "semver.org" in text
    releases = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.M)
    assert releases[0] == ("Unreleased", "")
    assert releases[1][0] == VERSION
    assert releases[1][1], "a release has a date"


def test_the_licence_is_apache_2_0_everywhere() -> None:
    assert PYPROJECT["license"] == "Apache-2.0"
    licence = (REPO / "LICENSE").read_text()
    assert "Apache License" in licence
    assert "Version 2.0, January 2004" in licence
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in (REPO / "Dockerfile").read_text()
