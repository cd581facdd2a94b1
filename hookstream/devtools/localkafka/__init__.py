"""A real Apache Kafka broker (or a KRaft cluster of several) for dev mode, tests and
benchmarks."""

from hookstream.devtools.localkafka.launcher import (
    DEFAULT_CACHE_DIR,
    DEFAULT_DATA_DIR,
    DEFAULT_PORT,
    KAFKA_VERSION,
    BrokerStatus,
    NodeStatus,
    ensure_jars,
    free_port,
    free_ports,
    kill,
    paused,
    restart,
    running_broker,
    start,
    status,
    stop,
)

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_DATA_DIR",
    "DEFAULT_PORT",
    "KAFKA_VERSION",
    "BrokerStatus",
    "NodeStatus",
    "ensure_jars",
    "free_port",
    "free_ports",
    "kill",
    "paused",
    "restart",
    "running_broker",
    "start",
    "status",
    "stop",
]
