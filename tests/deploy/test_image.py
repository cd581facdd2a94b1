"""The image itself, built and run without a Docker engine: Buildah (vfs storage, chroot
isolation) builds it from a clean clone of the repository on the Debian stand-in base with the
wheelhouse (`scripts/build-image --offline`), then runs it on the host's network against the
test broker. Marked `image`; skipped where buildah or mmdebstrap is missing or not root, and
failed instead when HOOKSTREAM_IMAGE_TEST=require (as .ci/run sets it)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from hookstream.core.build_info import VERSION
from hookstream.devtools import localkafka
from tests.deploy._manifests import REPO
from tests.support.ingest import SECRET, notification, signed_headers
from tests.support.kafka import read_topic

pytestmark = [pytest.mark.image, pytest.mark.integration]

STORAGE = ("--storage-driver", "vfs")
# What a running service may write: the compose file's volumes and tmpfs, and /run, where
# buildah itself puts the container's run-time files.
WRITABLE = ("var/lib/hookstream/spool", "var/lib/hookstream/faust", "tmp", "run")
NOT_FILES = ("proc", "sys", "dev")


def _missing() -> str | None:
    tools = [tool for tool in ("buildah", "mmdebstrap", "git") if shutil.which(tool) is None]
    if tools:
        return f"{', '.join(tools)} not installed (.ci/run installs them with apt-get)"
    if os.geteuid() != 0:
        return "buildah's vfs storage and chroot isolation need root here"
    return None


def _path(tool: str) -> str:
    return shutil.which(tool) or tool


def _buildah(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        [_path("buildah"), *STORAGE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"buildah {' '.join(args)}:\n{result.stderr}"
    return result.stdout.strip()


@dataclass(frozen=True)
class Built:
    tag: str
    seconds: float
    size: str


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """The image, built from a clean clone of this repository's HEAD."""
    missing = _missing()
    if missing:
        if os.environ.get("HOOKSTREAM_IMAGE_TEST") == "require":
            pytest.fail(f"HOOKSTREAM_IMAGE_TEST=require but {missing}")
        pytest.skip(missing)
    clone = tmp_path_factory.mktemp("image") / "clone"
    subprocess.run([_path("git"), "clone", "--quiet", str(REPO), str(clone)], check=True)
    tag = f"localhost/hookstream:test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "BUILDAH_OPTS": " ".join(STORAGE), "CONTAINER_BUILDER": "buildah"}
    started = time.monotonic()
    build = subprocess.run(
        [clone / "scripts" / "build-image", "--offline", "--tag", tag],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    seconds = time.monotonic() - started
    assert build.returncode == 0, build.stdout[-5000:] + build.stderr[-5000:]
    size = _buildah("images", "--format", "{{.Size}}", tag)
    try:
        yield Built(tag, seconds, size)
    finally:
        _buildah("rmi", tag)


@pytest.fixture(scope="module")
def container(image: Built) -> Iterator[tuple[str, Path]]:
    """A working container of the image and its root filesystem on the host (one for the
    module: with vfs storage each is a full copy; no test but the last writes to it)."""
    name = _buildah("from", image.tag)
    try:
        yield name, Path(_buildah("mount", name))
    finally:
        _buildah("rm", name)


def _run(name: str, *command: str, env: dict[str, str] | None = None) -> list[str]:
    """`buildah run` arguments: `command` in container `name`, as the image's user, on the
    host's network."""
    flags = [arg for key, value in (env or {}).items() for arg in ("--env", f"{key}={value}")]
    return [
        _path("buildah"),
        *STORAGE,
        "run",
        "--isolation",
        "chroot",
        *flags,
        name,
        "--",
        *command,
    ]


def test_image_reports_the_version_and_carries_the_release_labels(
    image: Built, container: tuple[str, Path]
) -> None:
    name, _ = container
    shown = subprocess.run(
        _run(name, "hookstream", "--version"), capture_output=True, text=True, check=False
    )
    assert shown.stdout.strip() == f"hookstream, version {VERSION}", shown.stderr
    config = orjson.loads(_buildah("inspect", "--type", "image", image.tag))["Docker"]["config"]
    assert config["Labels"]["org.opencontainers.image.version"] == VERSION
    assert config["Labels"]["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["hookstream"]
    assert config["Healthcheck"]["Test"][:2] == ["CMD", "python"]
    print(f"\nimage {image.tag}: {image.size}, built in {image.seconds:.0f} s")


def test_image_runs_as_the_unprivileged_user(container: tuple[str, Path]) -> None:
    name, _ = container
    who = subprocess.run(_run(name, "id", "-u"), capture_output=True, text=True, check=True)
    assert who.stdout.strip() == "10001"


def test_image_holds_the_services_and_no_build_tools_tests_or_bench(
    container: tuple[str, Path],
) -> None:
    _, root = container
    (site,) = root.glob("opt/hookstream/lib/python3.*/site-packages")
    assert (site / "hookstream" / "ingest" / "app.py").is_file()
    assert not (site / "hookstream" / "ingest").is_symlink(), "real files, not the repo's links"
    assert (site / "hookstream" / "sandbox").is_dir(), "compose runs the sandbox from the image"
    for absent in ("tests", "bench", "pip", "setuptools"):
        assert not (site / absent).exists(), absent
    assert not (root / "opt" / "build").exists()
    assert not (root / "src").exists()
    assert not list(root.glob("usr/bin/*gcc*")), "no compiler"
    assert not list(root.glob("usr/local/bin/*gcc*")), "no compiler"


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """(mtime, size) of every path outside the writable and pseudo file systems."""
    found = {}
    skipped = {root / part for part in (*WRITABLE, *NOT_FILES)}
    for directory, subdirs, files in os.walk(root):
        here = Path(directory)
        subdirs[:] = [d for d in subdirs if here / d not in skipped]
        for entry in (*subdirs, *files):
            stat = (here / entry).lstat()
            found[str((here / entry).relative_to(root))] = (stat.st_mtime_ns, stat.st_size)
    return found


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _service_pid(launcher: subprocess.Popen[bytes]) -> int:
    """The service's own process: buildah does not pass signals on, and chroot isolation
    shares the host's process ids, so the test signals the process in the container."""
    for pid in _descendants(launcher.pid):
        if Path(f"/proc/{pid}/exe").resolve().name.startswith("python"):
            return pid
    raise AssertionError("no python process under buildah run")


def _wait_healthy(port: int, launcher: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert launcher.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no /healthz on {port}:\n{log.read_text()}")


def _stop(launcher: subprocess.Popen[bytes], log: Path) -> str:
    """SIGTERM to the service; how it ended, as buildah reports it: "0" for a zero exit,
    "terminated" when the process ended by the signal itself."""
    os.kill(_service_pid(launcher), signal.SIGTERM)
    code = launcher.wait(timeout=60)
    if code == 0:
        return "0"
    assert "subprocess exited on terminated" in log.read_text(), log.read_text()
    return "terminated"


def _pid_in(log: Path) -> str:
    first = log.read_text().split("Started server process [", 1)[1]
    return first.split("]", 1)[0]


def _log_events(log: Path) -> list[dict[str, object]]:
    events = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            events.append(orjson.loads(line))
    return events


def test_ingest_and_worker_in_the_image_take_a_webhook_to_its_routed_topic(
    container: tuple[str, Path], kafka_bootstrap: str, tmp_path: Path
) -> None:
    name, root = container
    suffix = uuid.uuid4().hex[:8]
    ingest_port, worker_port = localkafka.free_port(), localkafka.free_port()
    admin_port = localkafka.free_port()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "INTERCOM_CLIENT_SECRET": SECRET,
        "HOOKSTREAM_RAW_TOPIC": f"image.raw.{suffix}",
        "HOOKSTREAM_DLQ_TOPIC": f"image.dlq.{suffix}",
        "HOOKSTREAM_ROUTE_PREFIX": f"image.{suffix}.",
        "HOOKSTREAM_WORKER_ID": f"image-{suffix}",
        "HOOKSTREAM_TOPIC_PARTITIONS": "1",
        "HOOKSTREAM_INGEST_PORT": str(ingest_port),
        "HOOKSTREAM_INGEST_ADMIN_PORT": str(admin_port),
        "HOOKSTREAM_WORKER_WEB_PORT": str(worker_port),
    }
    declared = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mounts = {entry.split(":")[1] for service in ("ingest", "worker") for entry in
              declared["services"][service]["volumes"]}  # fmt: skip
    assert {f"/{path}" for path in WRITABLE[:2]} == mounts, "the test allows what compose mounts"
    before = _snapshot(root)

    ingest_log = tmp_path / "ingest.log"
    with ingest_log.open("wb") as out:
        ingest = subprocess.Popen(
            _run(name, "hookstream", "ingest", env=env), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_healthy(ingest_port, ingest, ingest_log)
        body = notification("conversation.user.created")
        answer = httpx.post(
            f"http://127.0.0.1:{ingest_port}/webhooks/intercom",
            content=body,
            headers=signed_headers(body),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        metrics = httpx.get(f"http://127.0.0.1:{admin_port}/metrics").text
        [build_info] = [
            line for line in metrics.splitlines() if line.startswith("hookstream_build_info")
        ]
        assert 'python="3.11' in build_info
        assert f'version="{VERSION}"' in build_info
        assert re.search(r'aiokafka="\d+\.\d+\.\d+",faust="\d+\.\d+\.\d+"', build_info)
        raw = asyncio.run(read_topic(kafka_bootstrap, env["HOOKSTREAM_RAW_TOPIC"], expect=1))
        assert [record.value for record in raw] == [body]
    finally:
        ended = _stop(ingest, ingest_log) if ingest.poll() is None else "early"
    # A clean stop: the lifespan closed, then uvicorn re-raises SIGTERM (as a supervisor
    # expects: 143 in Docker) or exits 0.
    events = [e.get("event") for e in _log_events(ingest_log)]
    assert ended in {"0", "terminated"}, ingest_log.read_text()
    assert events[-3:] == [
        "ingest_stopping",
        "Application shutdown complete.",
        f"Finished server process [{_pid_in(ingest_log)}]",
    ], ingest_log.read_text()
    started = [e for e in _log_events(ingest_log) if e.get("event") == "ingest_started"]
    assert [e["version"] for e in started] == [VERSION]

    worker_log = tmp_path / "worker.log"
    with worker_log.open("wb") as out:
        worker = subprocess.Popen(
            _run(name, "hookstream", "worker", env=env), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        routed_topic = f"image.{suffix}.conversation.user.created"
        routed = asyncio.run(read_topic(kafka_bootstrap, routed_topic, expect=1, wait_seconds=90))
        assert [record.value for record in routed] == [body], worker_log.read_text()
        _wait_healthy(worker_port, worker, worker_log)
        metrics = httpx.get(f"http://127.0.0.1:{worker_port}/metrics").text
        assert f'version="{VERSION}"' in metrics
    finally:
        ended = _stop(worker, worker_log) if worker.poll() is None else "early"
    assert ended == "0", worker_log.read_text()
    stopped = [e for e in _log_events(worker_log) if e.get("event") == "worker.stopped"]
    assert [e["clean"] for e in stopped] == [True], worker_log.read_text()
    starting = [e for e in _log_events(worker_log) if e.get("event") == "worker.starting"]
    assert [e["version"] for e in starting] == [VERSION]

    after = _snapshot(root)
    changed = sorted(
        path for path in set(before) | set(after) if before.get(path) != after.get(path)
    )
    assert len(before) > 1000, "the snapshot covers the image's files"
    assert changed == [], "written outside the declared volumes"
    # The control: a write beside the volumes (the user owns /var/lib/hookstream) is seen.
    subprocess.run(_run(name, "touch", "/var/lib/hookstream/stray"), check=True)
    assert set(_snapshot(root)) - set(after) == {"var/lib/hookstream/stray"}
    assert list((root / "var/lib/hookstream/spool").iterdir()), "the ingest used its volume"
    assert list((root / "var/lib/hookstream/faust").iterdir()), "the worker used its volume"
