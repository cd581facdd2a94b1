"""`hookstream ingest`."""

from __future__ import annotations

import asyncio

import click
import uvicorn

from hookstream.core.errors import KafkaAuthFailed
from hookstream.core.kafka import KafkaConnection, check_credentials
from hookstream.core.settings import load_settings
from hookstream.ingest.app import secrets_refusal

GRACEFUL_SHUTDOWN_SECONDS = 20


@click.command("ingest")
@click.option("--host", help="Listen address [default: HOOKSTREAM_INGEST_HOST or 127.0.0.1].")
@click.option("--port", type=int, help="Listen port [default: HOOKSTREAM_INGEST_PORT or 8080].")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes, one spool file each [default: HOOKSTREAM_INGEST_WORKERS or 1].",
)
def ingest_command(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve POST /webhooks/intercom: verify Intercom's signature, make each notification
    durable (Kafka ack, or the local spool while Kafka is away), then answer 200.

    Also serves HEAD /webhooks/intercom, POST /events, /healthz, /readyz and /metrics.
    SIGTERM stops intake, finishes requests in flight, drains and flushes, then exits.
    """
    settings = load_settings()
    refusal = secrets_refusal(settings)
    if refusal:
        raise click.UsageError(refusal)
    try:  # a refused login is no outage to spool through: stop here, naming the setting
        asyncio.run(check_credentials(KafkaConnection.from_settings(settings.kafka)))
    except KafkaAuthFailed as exc:
        raise click.ClickException(str(exc)) from None
    uvicorn.run(
        "hookstream.ingest.server:app_from_environment",
        factory=True,
        host=host or settings.ingest.host,
        port=port if port is not None else settings.ingest.port,
        workers=workers or settings.ingest.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        # uvicorn's own cap counts connections too (idle keep-alive ones included) and answers
        # a plain 503: a backstop above the app's cap on requests, which says Retry-After.
        limit_concurrency=settings.ingest.max_concurrency * 2,
    )
