"""The Dockerfile: hadolint passes, the image is built from a pinned base as a non-root user
with the project's packages, the build context allows what it copies, and its HEALTHCHECK
command tells a live service from a dead one. (No Docker engine runs here: the image itself
is not built by the tests.)"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.deploy._manifests import REPO, run, settings_env_names, settings_from, tool

DOCKERFILE = REPO / "Dockerfile"
SERVICE_PORTS = (
    "HOOKSTREAM_INGEST_PORT",
    "HOOKSTREAM_WORKER_WEB_PORT",
    "HOOKSTREAM_SINK_WEB_PORT",
    "HOOKSTREAM_SANDBOX_PORT",
)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def runtime_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in stages()[-1]:
        if keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def healthcheck_command() -> list[str]:
    (rest,) = [rest for keyword, rest in instructions() if keyword == "HEALTHCHECK"]
    command: list[str] = json.loads(rest[rest.index("CMD") + len("CMD") :].strip())
    return command


def test_hadolint_passes_at_its_strictest_threshold() -> None:
    result = run(tool("hadolint"), "--no-color", "--failure-threshold", "style", DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_refuses_a_careless_dockerfile(tmp_path: Path) -> None:
    # The control for the check above.
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN pip install requests\n")
    result = run(tool("hadolint"), "--no-color", "--failure-threshold", "style", careless)
    assert result.returncode != 0
    assert "DL3007" in result.stdout
    assert "DL3013" in result.stdout


def test_base_image_is_pinned_by_digest_and_shared_by_both_stages() -> None:
    keyword, arg = instructions()[0]
    assert keyword == "ARG"
    name, _, image = arg.partition("=")
    assert name == "PYTHON_IMAGE"
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", image)
    froms = [rest for keyword, rest in instructions() if keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]


def test_runtime_runs_as_a_numeric_non_root_user_with_the_cli_as_entrypoint() -> None:
    runtime = stages()[-1]
    (user,) = [rest for keyword, rest in runtime if keyword == "USER"]
    uid, _, gid = user.partition(":")
    assert int(uid) >= 10000
    assert int(gid) >= 10000
    (entrypoint,) = [rest for keyword, rest in runtime if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["hookstream"]
    copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert copies == ["--from=build /opt/hookstream /opt/hookstream"], "only the virtualenv"


def test_version_label_is_the_build_argument_the_build_checks() -> None:
    build, runtime = stages()
    assert ("ARG", "HOOKSTREAM_VERSION") in build
    assert ("ARG", "HOOKSTREAM_VERSION") in runtime
    (check,) = [rest for keyword, rest in build if "hookstream --version" in rest]
    assert '!= "hookstream, version ${HOOKSTREAM_VERSION}"' in check
    (label,) = [rest for keyword, rest in runtime if keyword == "LABEL"]
    assert 'org.opencontainers.image.version="${HOOKSTREAM_VERSION}"' in label
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in label


def test_dependencies_come_from_the_lock_with_their_hashes() -> None:
    installs = [rest for keyword, rest in stages()[0] if keyword == "RUN" and " install " in rest]
    assert any("--require-hashes" in rest and "-r requirements.txt" in rest for rest in installs)
    assert any(
        "--require-hashes" in rest and "-r requirements-build.txt" in rest for rest in installs
    )
    for rest in installs:
        assert "--require-hashes" in rest or "--no-index" in rest, rest


def test_build_copies_every_package_the_project_installs() -> None:
    include = re.search(r"include = \[([^\]]*)\]", (REPO / "pyproject.toml").read_text())
    assert include
    packages = {name.strip().strip('"').rstrip("*") for name in include.group(1).split(",")}
    copied = {
        rest.split()[0].rstrip("/")
        for keyword, rest in stages()[0]
        if keyword == "COPY" and not rest.startswith("--from")
    }
    assert packages <= copied, packages - copied
    assert {"pyproject.toml", "README.md"} <= {
        part for keyword, rest in stages()[0] if keyword == "COPY" for part in rest.split()[:-1]
    }


def test_dockerignore_allows_exactly_what_the_build_copies() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "an allow-list: nothing enters the context unless named"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    sources = {
        part.rstrip("/")
        for keyword, rest in stages()[0]
        if keyword == "COPY" and not rest.startswith("--from")
        for part in rest.split()[:-1]
    }
    assert sources == allowed


def test_runtime_environment_is_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    env = runtime_env()
    settings_env = {
        name: value
        for name, value in env.items()
        if name.startswith(("HOOKSTREAM_", "INTERCOM_", "KAFKA_"))
    }
    assert set(settings_env) <= settings_env_names()
    settings = settings_from(settings_env, monkeypatch)
    assert settings.ingest.host == "0.0.0.0"
    assert settings.log.format == "json"
    assert str(settings.ingest.spool_path).startswith("/var/lib/hookstream/")
    assert str(settings.faust.data_dir).startswith("/var/lib/hookstream/")


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@contextmanager
def _server(status: int) -> Iterator[int]:
    handler = type("Handler", (_Handler,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _run_healthcheck(**ports: int) -> int:
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOOKSTREAM_")}
    for name in SERVICE_PORTS:
        env[name] = str(ports.get(name, _unused_port()))
    result = subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30, check=False
    )
    return result.returncode


@pytest.mark.parametrize("variable", SERVICE_PORTS)
def test_healthcheck_passes_when_the_services_port_answers_healthz(variable: str) -> None:
    with _server(200) as port:
        assert _run_healthcheck(**{variable: port}) == 0


def test_healthcheck_fails_when_nothing_listens() -> None:
    assert _run_healthcheck() == 1


def test_healthcheck_fails_when_the_service_answers_with_a_server_error() -> None:
    with _server(503) as port:
        assert _run_healthcheck(HOOKSTREAM_INGEST_PORT=port) == 1
