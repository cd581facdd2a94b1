"""`hookstream kafka start|stop|status`: the local broker for dev mode, tests and benchmarks."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

import click

from hookstream.core.errors import LocalKafkaError
from hookstream.core.settings import load_settings
from hookstream.devtools import localkafka
from hookstream.devtools.localkafka.security import ADMIN, MODES, BrokerSecurity
from hookstream.ops.acls import SERVICES, default_user, required_acls


@click.group("kafka")
def kafka_group() -> None:
    """Run a real single-node Apache Kafka broker (KRaft) locally, from its Maven jars."""


_data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=localkafka.DEFAULT_DATA_DIR,
    show_default=True,
    help="Where the broker keeps its log, config, pid and output.",
)


@kafka_group.command("start")
@click.option("--port", type=int, default=localkafka.DEFAULT_PORT, show_default=True)
@_data_dir_option
@click.option(
    "--security",
    type=click.Choice(["plaintext", *MODES]),
    default="plaintext",
    show_default=True,
    help="sasl_ssl: TLS listener, SCRAM-SHA-512 users; ssl: TLS with client certificates. "
    "Both: an authorizer and exactly the ACLs `hookstream acls` prints, one user per service.",
)
def kafka_start(port: int, data_dir: Path, security: str) -> None:
    """Fetch (once), format (once) and start the broker; print its bootstrap address (and,
    secured, each service's client settings)."""
    try:
        if security == "plaintext":
            click.echo(localkafka.start(port=port, data_dir=data_dir))
            return
        mode = MODES[MODES.index(security)]  # the Mode literal click checked
        secured = BrokerSecurity.prepare(mode, data_dir)
        bootstrap = localkafka.start(port=port, data_dir=data_dir, security=secured)
        asyncio.run(secured.apply_acls(bootstrap, required_acls(load_settings())))
    except LocalKafkaError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(bootstrap)
    for user in (ADMIN, *(default_user(service) for service in SERVICES)):
        click.echo(f"\n# {user}")
        for name, value in secured.client_settings(user, bootstrap).items():
            click.echo(f"export {name}={shlex.quote(value)}")


@kafka_group.command("stop")
@_data_dir_option
def kafka_stop(data_dir: Path) -> None:
    """Stop the broker cleanly (SIGTERM, then SIGKILL after 30 s)."""
    click.echo("stopped" if localkafka.stop(data_dir) else "not running")


@kafka_group.command("status")
@_data_dir_option
def kafka_status(data_dir: Path) -> None:
    """Say whether the broker runs, and where. Exits 1 when it does not."""
    current = localkafka.status(data_dir)
    if not current.running:
        click.echo("not running")
        raise SystemExit(1)
    click.echo(f"running pid={current.pid} bootstrap={current.bootstrap}")
