"""Command-line options that several operator commands share."""

from __future__ import annotations

import click

bootstrap_option = click.option(
    "--bootstrap",
    metavar="HOST:PORT[,...]",
    default=None,
    help="Kafka bootstrap servers.  [default: KAFKA_BOOTSTRAP_SERVERS, else localhost:9092]",
)
"""`--bootstrap`: overrides KAFKA_BOOTSTRAP_SERVERS for this command."""
