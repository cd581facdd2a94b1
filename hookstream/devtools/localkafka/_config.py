"""The `server.properties` of a local node: one broker+controller of a KRaft cluster of one
or more nodes on this machine."""

from __future__ import annotations

from pathlib import Path

# Per node of a cluster of three on a shared 2-core machine: small threads pools, and faster
# failure detection than Kafka's defaults (a SIGKILLed node is fenced, and its partitions get
# new leaders, after 6 s instead of 9 s).
_CLUSTER_TUNING = (
    "num.network.threads=2",
    "num.io.threads=2",
    "background.threads=2",
    "num.replica.fetchers=1",
    "log.cleaner.threads=1",
    "num.recovery.threads.per.data.dir=1",
    "broker.heartbeat.interval.ms=1000",
    "broker.session.timeout.ms=6000",
    # Give preferred leaders back soon after a node returns (Kafka's default waits 300 s), so
    # that a restart moves leaders twice, as a production rolling upgrade does.
    "leader.imbalance.check.interval.seconds=20",
)


def write_config(
    node_dir: Path,
    *,
    node_id: int,
    nodes: int,
    host: str,
    port: int,
    voters: str,
    controller_port: int,
) -> Path:
    """Write the node's config into its dir and return the file."""
    replication = min(3, nodes)
    min_isr = min(2, nodes)
    lines = [
        "process.roles=broker,controller",
        f"node.id={node_id}",
        f"controller.quorum.voters={voters}",
        f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        f"advertised.listeners=PLAINTEXT://{host}:{port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        f"log.dirs={(node_dir / 'log').resolve()}",
        "num.partitions=1",
        f"default.replication.factor={replication}",
        f"min.insync.replicas={min_isr}",
        f"offsets.topic.replication.factor={replication}",
        "offsets.topic.num.partitions=10",
        f"transaction.state.log.replication.factor={replication}",
        f"transaction.state.log.min.isr={min_isr}",
        "transaction.state.log.num.partitions=10",
        f"share.coordinator.state.topic.replication.factor={replication}",
        f"share.coordinator.state.topic.min.isr={min_isr}",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=true",
        *(_CLUSTER_TUNING if nodes > 1 else ()),
        "",
    ]
    config = node_dir / "server.properties"
    config.write_text("\n".join(lines))
    return config
