"""`--security` of the benchmarks: `plaintext` (the broker of `harness.broker`), or `sasl_ssl`,
a local broker started as `hookstream kafka start --security sasl_ssl` starts it (TLS listener
only, SCRAM-SHA-512 users, the authorizer on).

On `sasl_ssl` each service connects as its own user (`service_env`), holding exactly the ACLs
`hookstream acls` prints for the benchmark's settings (its topic names and ids); the
benchmark's own clients (loading, reading back, the baseline loop) connect as the admin
(`connection`, `admin_env`). Nothing else changes, so the figures of the two runs compare the
security's cost alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Self

from bench import harness
from bench.pipeline import Pipeline
from hookstream.core.kafka import KafkaConnection
from hookstream.core.settings import Settings, load_settings
from hookstream.core.topics import ensure_topics
from hookstream.devtools import localkafka
from hookstream.devtools.localkafka.security import ADMIN, BrokerSecurity
from hookstream.ops.acls import default_user, required_acls

CHOICES = ("plaintext", "sasl_ssl")
# The secured brokers this process started, by bootstrap address.
_SECURED: dict[str, BrokerSecurity] = {}


def add_security_option(parser: argparse.ArgumentParser) -> None:
    """`--security plaintext|sasl_ssl`."""
    parser.add_argument(
        "--security",
        choices=CHOICES,
        default="plaintext",
        help="sasl_ssl: a local broker with a TLS listener, SCRAM-SHA-512 users and ACLs, "
        "each service as its own user (default: plaintext)",
    )


def results_name(benchmark: str, args: argparse.Namespace) -> str:
    """Where a run's figures go: `<benchmark>` on plaintext (what bench.report reads),
    `<benchmark>-sasl_ssl` beside it on sasl_ssl."""
    return benchmark if args.security == "plaintext" else f"{benchmark}-{args.security}"


@contextlib.contextmanager
def broker(security: str) -> Iterator[str]:
    """The benchmark's broker: `harness.broker()` for plaintext, else a secured local one."""
    if security == "plaintext":
        with harness.broker() as bootstrap:
            yield bootstrap
        return
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as tmp:
        secured = BrokerSecurity.prepare("sasl_ssl", Path(tmp))
        bootstrap = start_secured(Path(tmp), localkafka.free_port(), secured)
        try:
            yield bootstrap
        finally:
            localkafka.stop(Path(tmp))
            _SECURED.pop(bootstrap, None)


def start_secured(data_dir: Path, port: int, secured: BrokerSecurity) -> str:
    """Start (or start again) the secured broker in `data_dir`; return its bootstrap."""
    bootstrap = localkafka.start(port=port, data_dir=data_dir, security=secured)
    _SECURED[bootstrap] = secured
    return bootstrap


def admin_env(bootstrap: str) -> dict[str, str]:
    """The `KAFKA_*` settings of the benchmark's own clients (the admin on `sasl_ssl`)."""
    secured = _SECURED.get(bootstrap)
    if secured is None:
        return {"KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    return secured.client_settings(ADMIN, bootstrap)


def connection(bootstrap: str) -> KafkaConnection:
    """The benchmark's own connection: the admin's on a secured broker this process started,
    else from the `KAFKA_*` settings in the environment (a baseline process handed
    `admin_env`), else plaintext."""
    if bootstrap not in _SECURED and "KAFKA_SECURITY_PROTOCOL" not in os.environ:
        return KafkaConnection(bootstrap)
    return KafkaConnection.from_settings(_settings(admin_env(bootstrap)).kafka)


def service_env(bootstrap: str, service: str, env: Mapping[str, str]) -> dict[str, str]:
    """`env` for `service`, which connects as its own user on a secured broker: there, its
    ACLs for the settings in `env` are granted and hookstream's topics created first (as a
    platform team would, since a service holds no CREATE on another's topics)."""
    secured = _SECURED.get(bootstrap)
    if secured is None:
        return dict(env)
    settings = _settings(env)
    asyncio.run(_grant(secured, bootstrap, settings, [service]))
    return dict(env) | secured.client_settings(default_user(service), bootstrap)


async def _grant(
    secured: BrokerSecurity, bootstrap: str, settings: Settings, services: list[str]
) -> None:
    acls = required_acls(settings)
    await secured.apply_acls(bootstrap, {service: acls[service] for service in services})
    admin = _settings(secured.client_settings(ADMIN, bootstrap) | _hookstream(settings))
    await ensure_topics(admin, wait_seconds=30)


def _settings(env: Mapping[str, str]) -> Settings:
    ours = ("KAFKA_", "HOOKSTREAM_", "INTERCOM_")
    return load_settings(**{k.lower(): v for k, v in env.items() if k.startswith(ours)})


def _hookstream(settings: Settings) -> dict[str, str]:
    """The topic settings that name and shape hookstream's topics."""
    topics = settings.topics
    return {
        "HOOKSTREAM_RAW_TOPIC": topics.raw,
        "HOOKSTREAM_DLQ_TOPIC": topics.dlq,
        "HOOKSTREAM_DATA_EVENTS_TOPIC": topics.data_events,
        "HOOKSTREAM_DATA_EVENTS_DLQ_TOPIC": topics.data_events_dlq,
        "HOOKSTREAM_TOPIC_PARTITIONS": str(topics.partitions),
        "HOOKSTREAM_TOPIC_REPLICATION": str(topics.replication),
    }


class SecuredPipeline(Pipeline):
    """`bench.pipeline.Pipeline` on a `sasl_ssl` broker, each service as its own user."""

    async def __aenter__(self) -> Self:
        self.kafka_dir.mkdir(parents=True, exist_ok=True)
        self.security = BrokerSecurity.prepare("sasl_ssl", self.kafka_dir)
        self.bootstrap = await asyncio.to_thread(
            start_secured, self.kafka_dir, self.kafka_port, self.security
        )
        services = ["worker", "sink", "ingest"]
        await _grant(self.security, self.bootstrap, _settings(self.env()), services)
        return await super().__aenter__()  # finds the broker running

    def env_of(self, name: str) -> dict[str, str]:
        env = super().env_of(name)
        if name == "sandbox":
            return env
        return env | self.security.client_settings(default_user(name), self.bootstrap)

    async def start_broker(self) -> None:
        await asyncio.to_thread(start_secured, self.kafka_dir, self.kafka_port, self.security)
