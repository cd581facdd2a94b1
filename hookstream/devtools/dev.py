"""`hookstream dev`: the whole pipeline on one machine, on the embedded default.

Starts the local Kafka broker, creates the topics, then runs the Intercom sandbox, the
streams worker, the sink and the ingest as child processes (each in its own session, so a
Ctrl-C reaches only this supervisor), prints where each listens and a command that sends a
signed test webhook, and shows one live status line. Ctrl-C stops them in order: the ingest
first (no new intake), then the worker and the sink (their last commits), the sandbox, and
the broker last. Production Intercom replaces the sandbox only when an access token and a
base URL or region are configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import click
import httpx

from hookstream.core.errors import LocalKafkaError
from hookstream.core.settings import Settings, load_settings
from hookstream.core.topics import ensure_topics
from hookstream.devtools import localkafka
from hookstream.devtools.localkafka.security import ADMIN, BrokerSecurity
from hookstream.devtools.status import StatusLine, read_status
from hookstream.ops.acls import SERVICES, default_user, required_acls

DEV_CLIENT_SECRET = "dev-client-secret"  # noqa: S105 - dev mode's documented, local-only value
DEV_API_TOKEN = "dev-api-token"  # noqa: S105
SANDBOX_ACCESS_TOKEN = "sandbox-token"  # noqa: S105
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 30.0


@dataclass
class Service:
    """One child process of dev mode."""

    name: str
    args: list[str]
    health_url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, env: Mapping[str, str]) -> None:
        """Start it detached from the terminal's process group, output to its log."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own CLI
                [sys.executable, "-m", "hookstream.cli", *self.args],
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_healthy(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Return once its health URL answers 200; raise if it exits or takes too long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise click.ClickException(f"{self.name} exited; see {self.log_path}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.health_url, timeout=1).status_code == 200:
                    return
            time.sleep(0.3)
        raise click.ClickException(f"{self.name} did not become healthy; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL its process group (a crash, for fault injection) and reap it."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM its process group, SIGKILL after the grace period; wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def uses_production_intercom(settings: Settings) -> bool:
    """Production Intercom only when a token and a base URL or region are given."""
    chosen = settings.model_fields_set
    return settings.sink.intercom_access_token is not None and bool(
        {"intercom_api_base_url", "intercom_region"} & chosen
    )


@dataclass(frozen=True)
class DevLayout:
    """Where dev mode keeps its files and which ports its services take."""

    data_dir: Path
    kafka_port: int
    ingest_port: int
    ingest_admin_port: int
    sandbox_port: int
    worker_port: int
    sink_port: int

    def url(self, port: int, path: str = "") -> str:
        """A loopback URL on `port`."""
        return f"http://127.0.0.1:{port}{path}"

    @property
    def logs(self) -> Path:
        """The folder of the services' logs."""
        return self.data_dir / "logs"


@click.command("dev")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("var/dev"),
    show_default=True,
    help="Where the broker, the spool, the worker's tables and the logs live.",
)
@click.option("--kafka-port", type=int, default=localkafka.DEFAULT_PORT, show_default=True)
@click.option("--ingest-port", type=int, default=8080, show_default=True)
@click.option(
    "--ingest-admin-port",
    type=int,
    default=8081,
    show_default=True,
    help="The ingest's /metrics, /readyz and /docs.",
)
@click.option("--sandbox-port", type=int, default=8090, show_default=True)
@click.option("--worker-port", type=int, default=6066, show_default=True)
@click.option("--sink-port", type=int, default=6067, show_default=True)
@click.option("--no-status", is_flag=True, help="Do not print the live status line.")
@click.option(
    "--secure",
    is_flag=True,
    help="Kafka as platform teams run it: a TLS listener only, SCRAM-SHA-512 users and the "
    "authorizer on; each service connects as its own user with exactly the ACLs "
    "`hookstream acls` prints (a data dir keeps the mode it was first started with).",
)
def dev_command(data_dir: Path, no_status: bool, secure: bool, **ports: int) -> None:
    """Run the whole pipeline locally: Kafka, the Intercom sandbox, the worker, the sink and
    the ingest. Ctrl-C stops everything, in order, and leaves nothing running."""
    settings = load_settings()
    layout = DevLayout(data_dir, **ports)
    layout.logs.mkdir(parents=True, exist_ok=True)
    click.echo(f"kafka     starting (jars cached in {localkafka.DEFAULT_CACHE_DIR}) ...")
    kafka_dir = data_dir / "kafka"
    try:
        secured = BrokerSecurity.prepare("sasl_ssl", kafka_dir) if secure else None
        bootstrap = localkafka.start(port=layout.kafka_port, data_dir=kafka_dir, security=secured)
        if secured is not None:
            asyncio.run(secured.apply_acls(bootstrap, required_acls(settings)))
    except LocalKafkaError as exc:
        raise click.ClickException(str(exc)) from exc
    production = uses_production_intercom(settings)
    env = _child_env(settings, layout, bootstrap, production=production)
    # The topics are created as the admin on a secured broker (the services may not).
    admin = {} if secured is None else _lowered(secured.client_settings(ADMIN, bootstrap))
    asyncio.run(ensure_topics(load_settings(**admin), bootstrap=bootstrap))
    services = _services(layout, production=production)
    stop_requested = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        for service in services:
            click.echo(f"{service.name:<9} starting ...")
            service.start(env | _kafka_user(secured, bootstrap, service.name))
            service.wait_healthy()
        operator = _kafka_user(secured, bootstrap, "operator")
        _print_endpoints(layout, bootstrap, services, env, production=production, operator=operator)
        status = StatusLine(enabled=not no_status and sys.stdout.isatty())
        while not stop_requested:
            if failed := [s.name for s in services if s.process and s.process.poll() is not None]:
                raise click.ClickException(f"{', '.join(failed)} exited; see {layout.logs}")
            status.show(read_status(layout.ingest_admin_port, layout.worker_port, layout.sink_port))
            time.sleep(1)
        status.clear()
    finally:
        click.echo("stopping: ingest, worker, sink, sandbox, kafka ...")
        for name in ("ingest", "worker", "sink", "sandbox"):
            for service in services:
                if service.name == name:
                    service.stop()
        localkafka.stop(data_dir / "kafka")
        click.echo("stopped; nothing left running")


def _kafka_user(secured: BrokerSecurity | None, bootstrap: str, service: str) -> dict[str, str]:
    """The `KAFKA_*` settings with which `service` connects as its own user (none: plaintext,
    or the sandbox, which uses no Kafka)."""
    if secured is None or service not in SERVICES:
        return {}
    return secured.client_settings(default_user(service), bootstrap)


def _lowered(variables: Mapping[str, str]) -> dict[str, str]:
    """Settings variables as `load_settings` overrides."""
    return {name.lower(): value for name, value in variables.items()}


def _child_env(
    settings: Settings, layout: DevLayout, bootstrap: str, *, production: bool
) -> dict[str, str]:
    secret = (
        settings.ingest.client_secrets[0].decode()
        if settings.ingest.client_secrets
        else DEV_CLIENT_SECRET
    )
    token = (
        settings.ingest.api_token.get_secret_value() if settings.ingest.api_token else DEV_API_TOKEN
    )
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "INTERCOM_CLIENT_SECRET": secret,
        "HOOKSTREAM_API_TOKEN": token,
        # Dev mode's own secrets are short, well-known values: the ingest accepts them here
        # (and says so when it starts), never without this.
        "HOOKSTREAM_ALLOW_DEV_SECRETS": "true",
        "HOOKSTREAM_SPOOL_PATH": str((layout.data_dir / "spool" / "spool.sqlite3").resolve()),
        "HOOKSTREAM_DATA_DIR": str((layout.data_dir / "faust").resolve()),
        "HOOKSTREAM_INGEST_PORT": str(layout.ingest_port),
        "HOOKSTREAM_INGEST_ADMIN_PORT": str(layout.ingest_admin_port),
        "HOOKSTREAM_WORKER_WEB_PORT": str(layout.worker_port),
        "HOOKSTREAM_SINK_WEB_PORT": str(layout.sink_port),
    }
    if not production:
        env["INTERCOM_API_BASE_URL"] = layout.url(layout.sandbox_port)
        env["INTERCOM_ACCESS_TOKEN"] = SANDBOX_ACCESS_TOKEN
    return env


def _services(layout: DevLayout, *, production: bool) -> list[Service]:
    """The child processes, in start order."""
    logs = layout.logs
    services = [
        Service(
            "worker", ["worker"], layout.url(layout.worker_port, "/healthz"), logs / "worker.log"
        ),
        Service("sink", ["sink"], layout.url(layout.sink_port, "/healthz"), logs / "sink.log"),
        Service(
            "ingest",
            ["ingest", "--port", str(layout.ingest_port)],
            layout.url(layout.ingest_port, "/healthz"),
            logs / "ingest.log",
        ),
    ]
    if not production:
        sandbox_args = ["sandbox", "--port", str(layout.sandbox_port)]
        sandbox_args += ["--access-token", SANDBOX_ACCESS_TOKEN]
        services.insert(
            0,
            Service(
                "sandbox",
                sandbox_args,
                layout.url(layout.sandbox_port, "/healthz"),
                logs / "sandbox.log",
            ),
        )
    return services


def _print_endpoints(
    layout: DevLayout,
    bootstrap: str,
    services: list[Service],
    env: Mapping[str, str],
    *,
    production: bool,
    operator: Mapping[str, str],
) -> None:
    """What runs where, and commands to try it (`operator`: the operator user's `KAFKA_*`
    settings on a secured broker, else empty)."""
    operator_user = operator.get("KAFKA_SASL_USERNAME", "")
    ingest = layout.url(layout.ingest_port)
    secret = env["INTERCOM_CLIENT_SECRET"]
    intercom = (
        "PRODUCTION (INTERCOM_ACCESS_TOKEN with a base URL or region)"
        if production
        else f"sandbox at {env['INTERCOM_API_BASE_URL']}"
    )
    lines = ["", f"kafka     {bootstrap}"]
    lines += [
        f"{s.name:<9} {s.health_url.removesuffix('/healthz')}  (log: {s.log_path})"
        for s in services
    ]
    admin = layout.url(layout.ingest_admin_port)
    lines.append(f"{'':<9} admin port {admin}  (/metrics, /readyz, /docs)")
    lines.append(f"intercom  {intercom}")
    lines.append("secrets   development secrets accepted (HOOKSTREAM_ALLOW_DEV_SECRETS=true)")
    send = ["hookstream", "send-webhook", "--url", f"{ingest}/webhooks/intercom"]
    send += ["--secret", secret, "-n", "10"]
    event = '{"event_name":"updated-plan","created_at":\'$(date +%s)\',"user_id":"u-1"}'
    lines += [
        "",
        "send 10 signed test webhooks:",
        "  " + shlex.join(send),
        "send a data event:",
        f"  curl -s -X POST {ingest}/events -H 'Content-Type: application/json' "
        f"-H 'Authorization: Bearer {env['HOOKSTREAM_API_TOKEN']}' -d '{event}'",
        "follow a routed topic:",
        f"  hookstream tail --bootstrap {bootstrap} intercom.conversation.user.created",
    ]
    if operator:
        lines[-2:-2] = [
            f"Kafka is secured (TLS, SCRAM): the operator commands connect as {operator_user}",
            *(f"  export {name}={shlex.quote(value)}" for name, value in operator.items()),
        ]
    lines += ["", "Ctrl-C stops everything."]
    click.echo("\n".join(lines))
