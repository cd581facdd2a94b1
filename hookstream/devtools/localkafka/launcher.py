"""Run a real Apache Kafka broker, or a KRaft cluster of several, from its jars.

`ensure_jars` resolves the pinned broker (see `pom.xml` beside this file) from Maven Central
into a cache once; `start` formats the log dirs on first use, starts the JVMs detached, and
waits until every node answers; `stop` ends them with SIGTERM (a clean shutdown) and SIGKILL
only if that hangs; `kill` and `restart` crash or cleanly restart one node.

One node lives in the data dir itself (its pid, config and log there). A cluster of N nodes
(each broker and controller, the controller quorum all N) has `node-1` ... `node-N` dirs in
the data dir, a `nodes` file with N, and listens on N ports.
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from hookstream.core.errors import LocalKafkaError
from hookstream.devtools.localkafka._config import write_config

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
# Per node of a cluster: three of them fit beside the services on 2 cores and 24 GiB (each
# takes about 450 MiB resident).
CLUSTER_JVM_OPTIONS = (
    "-Xms128m",
    "-Xmx384m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:ParallelGCThreads=1",
    "-XX:ConcGCThreads=1",
    "-XX:CICompilerCount=2",
    "-XX:TieredStopAtLevel=1",  # C1 only: a node (re)starts sooner, and ample for tests
    "-Djava.awt.headless=true",
)
_STARTED_MARKER = "Kafka Server started"
# Brokers this process started, kept so that they are reaped (and not warned about) here.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class NodeStatus:
    """One node of a data dir's cluster (the only one of a single broker)."""

    node_id: int
    running: bool
    pid: int | None
    address: str | None


@dataclass(frozen=True)
class BrokerStatus:
    """What `status` found in a data dir: `running` when every node runs."""

    running: bool
    pid: int | None
    bootstrap: str | None
    nodes: tuple[NodeStatus, ...] = ()


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
    """Whether the broker (every node of the cluster) started from `data_dir` runs, and where."""
    nodes = tuple(_node_status(d, n) for n, d in enumerate(_node_dirs(data_dir), start=1))
    bootstrap_file = data_dir / "bootstrap"
    bootstrap = bootstrap_file.read_text().strip() if bootstrap_file.exists() else None
    if not all(node.running for node in nodes):
        return BrokerStatus(running=False, pid=None, bootstrap=None, nodes=nodes)
    return BrokerStatus(running=True, pid=nodes[0].pid, bootstrap=bootstrap, nodes=nodes)


def start(
    port: int = DEFAULT_PORT,
    data_dir: Path = DEFAULT_DATA_DIR,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    host: str = "127.0.0.1",
    *,
    brokers: int | None = None,
    ports: Sequence[int] | None = None,
    security: BrokerSecurity | None = None,
) -> str:
    """Start the broker, or the `brokers` nodes of a cluster (or find them running: a node
    that is not is started), and return the bootstrap list. Node N listens on `ports[N-1]`,
    by default `port + N - 1`; `brokers` defaults to what the data dir holds, else 1.
    `security` (`localkafka.security`, one node only) makes the listener TLS-only, with SASL
    or client certificates."""
    current = status(data_dir)
    if current.running and current.bootstrap:
        return current.bootstrap
    node_dirs = _lay_out(data_dir, brokers)
    count = len(node_dirs)
    if security is not None and count > 1:
        raise LocalKafkaError("a secured local broker is a single node (--brokers 1)")
    wanted = list(ports) if ports is not None else [port + i for i in range(count)]
    if len(wanted) != count:
        raise LocalKafkaError(f"{count} nodes need {count} ports, not {wanted}")
    addresses = [
        _saved(d / "address") or f"{host}:{p}" for d, p in zip(node_dirs, wanted, strict=True)
    ]
    controllers = [_controller_port(d, host) for d in node_dirs]
    voters = ",".join(f"{n}@{host}:{c}" for n, c in enumerate(controllers, start=1))
    cluster_id = _cluster_id(data_dir)
    java, classpath = _java(cache_dir)
    to_launch = []
    for node_id, (node_dir, address, controller) in enumerate(
        zip(node_dirs, addresses, controllers, strict=True), start=1
    ):
        if _node_status(node_dir, node_id).running:
            continue
        node_host, node_port = address.rsplit(":", 1)
        if _port_open(node_host, int(node_port)):
            raise LocalKafkaError(f"{address} is already taken by another process")
        config = write_config(
            node_dir, node_id=node_id, nodes=count, host=node_host, port=int(node_port),
            voters=voters, controller_port=controller,
        )  # fmt: skip
        if security is not None:  # later lines win in a properties file
            with config.open("a") as extra:
                lines = security.listener_properties(node_host, int(node_port), controller)
                extra.write("\n".join(lines) + "\n")
        jvm_properties = security.jvm_properties() if security is not None else []
        (node_dir / "jvm.properties").write_text("".join(f"{p}\n" for p in jvm_properties))
        (node_dir / "address").write_text(address)
        to_launch.append(node_dir)
    _format(
        java,
        classpath,
        [d for d in to_launch if not (d / "log" / "meta.properties").exists()],
        cluster_id,
        security.format_arguments() if security is not None else [],
    )
    launched = [_launch(d, java, classpath, cluster=count > 1) for d in to_launch]
    bootstrap = ",".join(addresses)
    (data_dir / "bootstrap").write_text(bootstrap)
    for launch in launched:  # a node of a cluster starts once a quorum of controllers runs
        _wait_started(launch)
    return bootstrap


def stop(data_dir: Path = DEFAULT_DATA_DIR, timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
    """Stop the broker (every node) started from `data_dir`; False when none was running."""
    return _stop(_node_dirs(data_dir), timeout)


def kill(data_dir: Path = DEFAULT_DATA_DIR, node: int | None = None) -> None:
    """SIGKILL one node, or all (fault injection: a crash, not a clean stop)."""
    node_dirs = _node_dirs(data_dir) if node is None else [_node_dir(data_dir, node)]
    for node_dir in node_dirs:
        pid = _read_pid(node_dir)
        if pid is not None and _alive(pid):
            os.killpg(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        (node_dir / "broker.pid").unlink(missing_ok=True)


def restart(
    data_dir: Path = DEFAULT_DATA_DIR,
    node: int = 1,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    timeout: float = STOP_TIMEOUT_SECONDS,
) -> None:
    """Stop one node cleanly (when it runs) and start it again on its port and data; return
    once it has rejoined (the rest of the cluster keeps running)."""
    node_dir = _node_dir(data_dir, node)
    if not (node_dir / "server.properties").exists():
        raise LocalKafkaError(f"node {node} of {data_dir} was never started")
    _stop([node_dir], timeout)
    java, classpath = _java(cache_dir)
    _wait_started(_launch(node_dir, java, classpath, cluster=node_dir != data_dir))


@contextlib.contextmanager
def paused(data_dir: Path = DEFAULT_DATA_DIR, node: int = 1) -> Iterator[None]:
    """Freeze a node (SIGSTOP) for a `with` block, then resume it (fault injection: a hung
    broker or a network partition, where requests time out instead of being refused)."""
    pid = status(data_dir).nodes[node - 1].pid
    if pid is None:
        raise LocalKafkaError(f"no broker is running from {data_dir}")
    os.killpg(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(pid, signal.SIGCONT)


@contextlib.contextmanager
def running_broker(
    port: int,
    data_dir: Path,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    brokers: int = 1,
    ports: Sequence[int] | None = None,
) -> Iterator[str]:
    """A broker (or cluster) for the duration of a `with` block (tests, benchmarks)."""
    bootstrap = start(
        port=port, data_dir=data_dir, cache_dir=cache_dir, brokers=brokers, ports=ports
    )
    try:
        yield bootstrap
    finally:
        stop(data_dir)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct TCP ports that nothing listens on right now."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


@dataclass(frozen=True)
class _Launch:
    process: subprocess.Popen[bytes]
    log_path: Path
    log_offset: int
    host: str
    port: int


def _node_dirs(data_dir: Path) -> list[Path]:
    count_file = data_dir / "nodes"
    if not count_file.exists():
        return [data_dir]
    return [data_dir / f"node-{n}" for n in range(1, int(count_file.read_text()) + 1)]


def _node_dir(data_dir: Path, node: int) -> Path:
    node_dirs = _node_dirs(data_dir)
    if not 1 <= node <= len(node_dirs):
        raise LocalKafkaError(f"{data_dir} has nodes 1 to {len(node_dirs)}, not {node}")
    return node_dirs[node - 1]


def _lay_out(data_dir: Path, brokers: int | None) -> list[Path]:
    data_dir.mkdir(parents=True, exist_ok=True)
    existing = _node_dirs(data_dir)
    laid_out = (data_dir / "nodes").exists() or (data_dir / "log").exists()
    if laid_out and brokers is not None and brokers != len(existing):
        raise LocalKafkaError(
            f"{data_dir} holds {len(existing)} node(s), not {brokers}: use another data dir"
        )
    if laid_out or (brokers or 1) == 1:
        return existing
    if brokers is not None and brokers < 1:
        raise LocalKafkaError("a cluster needs one node or more")
    (data_dir / "nodes").write_text(str(brokers))
    node_dirs = _node_dirs(data_dir)
    for node_dir in node_dirs:
        node_dir.mkdir(exist_ok=True)
    return node_dirs


def _node_status(node_dir: Path, node_id: int) -> NodeStatus:
    pid = _read_pid(node_dir)
    address = _saved(node_dir / "address") or _saved(node_dir / "bootstrap")
    if pid is None or not _alive(pid):
        return NodeStatus(node_id, running=False, pid=None, address=address)
    return NodeStatus(node_id, running=True, pid=pid, address=address)


def _java(cache_dir: Path) -> tuple[str, str]:
    libs = ensure_jars(cache_dir)
    java = shutil.which("java")
    if java is None:
        raise LocalKafkaError("Java 17+ (java) is needed to run the Kafka broker")
    return java, f"{libs}{os.sep}*"


def _launch(node_dir: Path, java: str, classpath: str, *, cluster: bool) -> _Launch:
    address = _saved(node_dir / "address") or _saved(node_dir / "bootstrap") or ""
    host, port = address.rsplit(":", 1)
    log4j = resources.files("hookstream.devtools.localkafka") / "log4j2.properties"
    log_path = node_dir / "broker.log"
    log_offset = log_path.stat().st_size if log_path.exists() else 0
    jvm = [
        *(CLUSTER_JVM_OPTIONS if cluster else JVM_OPTIONS),
        *(_saved(node_dir / "jvm.properties") or "").split(),  # the security's, if any
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603
            [
                java, *jvm, f"-Dlog4j2.configurationFile={log4j}",
                "-cp", classpath, "kafka.Kafka", str(node_dir / "server.properties"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    _CHILDREN[process.pid] = process
    (node_dir / "broker.pid").write_text(str(process.pid))
    return _Launch(process, log_path, log_offset, host, int(port))


def _stop(node_dirs: Sequence[Path], timeout: float) -> bool:
    """SIGTERM the nodes at once (a cluster's last node would wait in vain for the quorum
    if they stopped one by one), SIGKILL those still there after `timeout`."""
    pids = []
    for node_dir in node_dirs:
        pid = _read_pid(node_dir)
        if pid is not None and _alive(pid):
            os.killpg(pid, signal.SIGTERM)
            pids.append(pid)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
    for node_dir in node_dirs:
        (node_dir / "broker.pid").unlink(missing_ok=True)
    return bool(pids)


def _format(
    java: str, classpath: str, node_dirs: Sequence[Path], cluster_id: str, extra: list[str]
) -> None:
    """Format the nodes' log dirs, all at once (a JVM each); `extra` arguments (SCRAM users)
    go to each."""
    command = [java, "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id]
    formats = [
        subprocess.Popen(  # noqa: S603
            [*command, "-c", str(node_dir / "server.properties"), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for node_dir in node_dirs
    ]
    for process in formats:
        output, _ = process.communicate()
        if process.returncode != 0:
            raise LocalKafkaError(f"formatting the KRaft log dir failed: {output.decode()}")


def _cluster_id(data_dir: Path) -> str:
    """The id every node of the data dir is formatted with, kept for nodes formatted later."""
    saved = data_dir / "cluster_id"
    if cluster_id := _saved(saved):
        return cluster_id
    cluster_id = "-"
    while cluster_id.startswith("-"):  # as Kafka's Uuid.randomUuid: a leading "-" reads as a flag
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    saved.write_text(cluster_id)
    return cluster_id


def _wait_started(launch: _Launch) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        with launch.log_path.open("rb") as log:
            log.seek(launch.log_offset)
            this_run = log.read().decode(errors="replace")
        if launch.process.poll() is not None:
            raise LocalKafkaError(
                f"the broker exited with {launch.process.returncode}:\n{this_run[-2000:]}"
            )
        if _STARTED_MARKER in this_run and _port_open(launch.host, launch.port):
            return
        time.sleep(0.2)
    launch.process.kill()
    raise LocalKafkaError(f"the broker did not start within {START_TIMEOUT_SECONDS:.0f}s")


def _controller_port(node_dir: Path, host: str) -> int:
    """The controller's port, kept across restarts of the same data dir."""
    saved = node_dir / "controller_port"
    if port := _saved(saved):
        return int(port)
    port_number = free_port(host)
    saved.write_text(str(port_number))
    return port_number


def _saved(path: Path) -> str | None:
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip() or None
    return None


def _read_pid(node_dir: Path) -> int | None:
    try:
        return int((node_dir / "broker.pid").read_text().strip())
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
