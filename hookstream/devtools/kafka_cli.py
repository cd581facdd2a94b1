"""`hookstream kafka start|stop|status|kill|restart`: the local broker, or a local KRaft
cluster, for dev mode, tests and benchmarks."""

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
    """Run a real Apache Kafka broker (KRaft), or a cluster of several, locally from its
    Maven jars."""


_data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=localkafka.DEFAULT_DATA_DIR,
    show_default=True,
    help="Where the broker keeps its log, config, pid and output.",
)
_node_option = click.option(
    "--node",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Which node of the cluster (1 to the number of brokers).",
)


@kafka_group.command("start")
@click.option(
    "--port",
    type=int,
    default=localkafka.DEFAULT_PORT,
    show_default=True,
    help="The first node's port; node N listens on PORT + N - 1.",
)
@click.option(
    "--brokers",
    type=click.IntRange(min=1),
    default=None,
    help="Nodes in the cluster (each broker and controller). Default: as the data dir was "
    "first started, else 1.",
)
@_data_dir_option
@click.option(
    "--security",
    type=click.Choice(["plaintext", *MODES]),
    default="plaintext",
    show_default=True,
    help="sasl_ssl: TLS listener, SCRAM-SHA-512 users; ssl: TLS with client certificates. "
    "Both: an authorizer and exactly the ACLs `hookstream acls` prints, one user per service "
    "(one node only).",
)
def kafka_start(port: int, brokers: int | None, data_dir: Path, security: str) -> None:
    """Fetch (once), format (once) and start the broker or cluster; print its bootstrap list
    (for three nodes or more, the replication settings that go with it; secured, each
    service's client settings)."""
    secured = None
    try:
        if security != "plaintext":
            mode = MODES[MODES.index(security)]  # the Mode literal click checked
            secured = BrokerSecurity.prepare(mode, data_dir)
        bootstrap = localkafka.start(
            port=port, data_dir=data_dir, brokers=brokers, security=secured
        )
        if secured is not None:
            asyncio.run(secured.apply_acls(bootstrap, required_acls(load_settings())))
    except LocalKafkaError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(bootstrap)
    if secured is not None:
        for user in (ADMIN, *(default_user(service) for service in SERVICES)):
            click.echo(f"\n# {user}")
            for name, value in secured.client_settings(user, bootstrap).items():
                click.echo(f"export {name}={shlex.quote(value)}")
        return
    nodes = len(localkafka.status(data_dir).nodes)
    if nodes > 1:
        click.echo(
            f"# a cluster of {nodes}: give hookstream\n"
            f"KAFKA_BOOTSTRAP_SERVERS={bootstrap}\n"
            f"HOOKSTREAM_TOPIC_REPLICATION={min(3, nodes)}",
            err=True,
        )


@kafka_group.command("stop")
@_data_dir_option
def kafka_stop(data_dir: Path) -> None:
    """Stop the broker, or every node, cleanly (SIGTERM, then SIGKILL after 30 s)."""
    click.echo("stopped" if localkafka.stop(data_dir) else "not running")


@kafka_group.command("status")
@_data_dir_option
def kafka_status(data_dir: Path) -> None:
    """Say whether the broker (every node) runs, and where. Exits 1 when one does not."""
    current = localkafka.status(data_dir)
    if len(current.nodes) > 1:
        for node in current.nodes:
            state = f"running pid={node.pid}" if node.running else "not running"
            click.echo(f"node {node.node_id} {state} address={node.address}")
    if not current.running:
        click.echo("not running")
        raise SystemExit(1)
    click.echo(f"running pid={current.pid} bootstrap={current.bootstrap}")


@kafka_group.command("kill")
@_node_option
@_data_dir_option
def kafka_kill(node: int, data_dir: Path) -> None:
    """SIGKILL one node: a crash, for fault injection. `restart` brings it back."""
    try:
        localkafka.kill(data_dir, node=node)
    except LocalKafkaError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"killed node {node}")


@kafka_group.command("restart")
@_node_option
@_data_dir_option
def kafka_restart(node: int, data_dir: Path) -> None:
    """Stop one node cleanly (if it runs) and start it again; return once it is back."""
    try:
        localkafka.restart(data_dir, node=node)
    except LocalKafkaError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"restarted node {node}")
