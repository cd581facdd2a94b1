"""A real single-node Apache Kafka broker for dev mode, tests and benchmarks."""

from hookstream.devtools.localkafka.launcher import (
    DEFAULT_CACHE_DIR,
    DEFAULT_DATA_DIR,
    DEFAULT_PORT,
    KAFKA_VERSION,
    BrokerStatus,
    ensure_jars,
    free_port,
    kill,
    paused,
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
    "ensure_jars",
    "free_port",
    "kill",
    "paused",
    "running_broker",
    "start",
    "status",
    "stop",
]
