"""Run a real single-node Apache Kafka broker (KRaft, broker+controller) from its jars.

`ensure_jars` resolves the pinned broker (see `pom.xml` beside this file) from Maven Central
into a cache once; `start` formats a log dir on first use, starts the JVM detached, and
waits until the broker answers; `stop` ends it with SIGTERM (a clean shutdown) and SIGKILL
only if that hangs. The broker's pid, config and log live in its data dir.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from hookstream.core.errors import LocalKafkaError

if TYPE_CHECKING:
    from hookstream.devtools.localkafka.security import BrokerSecurity

KAFKA_VERSION = "4.1.1"
DEFAULT_PORT = 9092
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "hookstream"
DEFAULT_DATA_DIR = Path("var") / "kafka"
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 30.0
# Small enough for a shared 2-core machine; ample for a dev and test broker.
JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx768m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:ParallelGCThreads=2",
    "-XX:ConcGCThreads=1",
    "-Djava.awt.headless=true",
)
_STARTED_MARKER = "Kafka Server started"
# Brokers this process started, kept so that they are reaped (and not warned about) here.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class BrokerStatus:
    """What `status` found in a data dir."""

    running: bool
    pid: int | None
    bootstrap: str | None


def ensure_jars(cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """The folder of the broker's jars, resolved with Maven on first use."""
    libs = cache_dir / f"kafka-{KAFKA_VERSION}" / "libs"
    if (libs / ".complete").exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError("Maven (mvn) is needed to fetch the Kafka broker's jars")
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
    pom = resources.files("hookstream.devtools.localkafka") / "pom.xml"
    with resources.as_file(pom) as pom_path:
        command = [
            mvn, "-q", "-B", "-f", str(pom_path), "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise LocalKafkaError(f"mvn could not resolve Kafka {KAFKA_VERSION}: {result.stdout}")
    (staging / ".complete").touch()
    if libs.exists():
        shutil.rmtree(libs)
    staging.rename(libs)
    return libs


def status(data_dir: Path = DEFAULT_DATA_DIR) -> BrokerStatus:
    """Whether a broker started from `data_dir` is running, and where it listens."""
    pid = _read_pid(data_dir)
    bootstrap_file = data_dir / "bootstrap"
    bootstrap = bootstrap_file.read_text().strip() if bootstrap_file.exists() else None
    if pid is None or not _alive(pid):
        return BrokerStatus(running=False, pid=None, bootstrap=None)
    return BrokerStatus(running=True, pid=pid, bootstrap=bootstrap)


def start(
    port: int = DEFAULT_PORT,
    data_dir: Path = DEFAULT_DATA_DIR,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    host: str = "127.0.0.1",
    security: BrokerSecurity | None = None,
) -> str:
    """Start the broker (or find it running) and return its bootstrap address. `security`
    (`localkafka.security`) makes its listener TLS-only, with SASL or client certificates."""
    current = status(data_dir)
    if current.running and current.bootstrap:
        return current.bootstrap
    libs = ensure_jars(cache_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    bootstrap = f"{host}:{port}"
    if _port_open(host, port):
        raise LocalKafkaError(f"{bootstrap} is already taken by another process")
    controller_port = _controller_port(data_dir, host)
    config = _write_config(data_dir, host, port, controller_port)
    if security is not None:  # later lines win in a properties file
        with config.open("a") as extra:
            extra.write("\n".join(security.listener_properties(host, port, controller_port)))
            extra.write("\n")
    java = shutil.which("java")
    if java is None:
        raise LocalKafkaError("Java 17+ (java) is needed to run the Kafka broker")
    classpath = f"{libs}{os.sep}*"
    if not (data_dir / "log" / "meta.properties").exists():
        _format(java, classpath, config, security.format_arguments() if security else [])
    log4j = resources.files("hookstream.devtools.localkafka") / "log4j2.properties"
    log_path = data_dir / "broker.log"
    log_offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603
            [
                java, *JVM_OPTIONS, f"-Dlog4j2.configurationFile={log4j}",
                "-cp", classpath, "kafka.Kafka", str(config),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    _CHILDREN[process.pid] = process
    (data_dir / "broker.pid").write_text(str(process.pid))
    (data_dir / "bootstrap").write_text(bootstrap)
    _wait_started(process, log_path, log_offset, host, port)
    return bootstrap


def stop(data_dir: Path = DEFAULT_DATA_DIR, timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
    """Stop the broker started from `data_dir`; False when none was running."""
    pid = _read_pid(data_dir)
    if pid is None or not _alive(pid):
        (data_dir / "broker.pid").unlink(missing_ok=True)
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.1)
    (data_dir / "broker.pid").unlink(missing_ok=True)
    return True


def kill(data_dir: Path = DEFAULT_DATA_DIR) -> None:
    """SIGKILL the broker (fault injection: a crash, not a clean stop)."""
    pid = _read_pid(data_dir)
    if pid is not None and _alive(pid):
        os.killpg(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)
    (data_dir / "broker.pid").unlink(missing_ok=True)


@contextlib.contextmanager
def paused(data_dir: Path = DEFAULT_DATA_DIR) -> Iterator[None]:
    """Freeze the broker (SIGSTOP) for a `with` block, then resume it (fault injection: a
    hung broker or a network partition, where requests time out instead of being refused)."""
    pid = status(data_dir).pid
    if pid is None:
        raise LocalKafkaError(f"no broker is running from {data_dir}")
    os.killpg(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(pid, signal.SIGCONT)


@contextlib.contextmanager
def running_broker(port: int, data_dir: Path, cache_dir: Path = DEFAULT_CACHE_DIR) -> Iterator[str]:
    """A broker for the duration of a `with` block (tests, benchmarks)."""
    bootstrap = start(port=port, data_dir=data_dir, cache_dir=cache_dir)
    try:
        yield bootstrap
    finally:
        stop(data_dir)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    return _free_port(host)


def _write_config(data_dir: Path, host: str, port: int, controller_port: int) -> Path:
    config = data_dir / "server.properties"
    config.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{host}:{controller_port}",
                f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
                f"advertised.listeners=PLAINTEXT://{host}:{port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={(data_dir / 'log').resolve()}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=10",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "transaction.state.log.num.partitions=10",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=true",
                "",
            ]
        )
    )
    return config


def _format(java: str, classpath: str, config: Path, extra: list[str]) -> None:
    cluster_id = "-"
    while cluster_id.startswith("-"):  # as Kafka's Uuid.randomUuid: a leading "-" reads as a flag
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    result = subprocess.run(  # noqa: S603
        [java, "-cp", classpath, "kafka.tools.StorageTool", "format",
         "-t", cluster_id, "-c", str(config), *extra],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise LocalKafkaError(
            f"formatting the KRaft log dir failed: {result.stdout}{result.stderr}"
        )


def _wait_started(
    process: subprocess.Popen[bytes], log_path: Path, log_offset: int, host: str, port: int
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        with log_path.open("rb") as log:
            log.seek(log_offset)
            this_run = log.read().decode(errors="replace")
        if process.poll() is not None:
            raise LocalKafkaError(
                f"the broker exited with {process.returncode}:\n{this_run[-2000:]}"
            )
        if _STARTED_MARKER in this_run and _port_open(host, port):
            return
        time.sleep(0.2)
    process.kill()
    raise LocalKafkaError(f"the broker did not start within {START_TIMEOUT_SECONDS:.0f}s")


def _controller_port(data_dir: Path, host: str) -> int:
    """The controller's port, kept across restarts of the same data dir."""
    saved = data_dir / "controller_port"
    if saved.exists():
        return int(saved.read_text())
    port = _free_port(host)
    saved.write_text(str(port))
    return port


def _read_pid(data_dir: Path) -> int | None:
    pid_file = data_dir / "broker.pid"
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
