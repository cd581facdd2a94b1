"""`hookstream ingest`."""

from __future__ import annotations

import asyncio
import os
import socket

import click
import uvicorn
from uvicorn.supervisors import Multiprocess

from hookstream.core.errors import KafkaAuthFailed
from hookstream.core.kafka import KafkaConnection, check_credentials
from hookstream.core.settings import Settings, load_settings
from hookstream.ingest.app import secrets_refusal

GRACEFUL_SHUTDOWN_SECONDS = 20
FACTORY = "hookstream.ingest.server:app_from_environment"


@click.command("ingest")
@click.option("--host", help="Listen address [default: HOOKSTREAM_INGEST_HOST or 127.0.0.1].")
@click.option("--port", type=int, help="Webhook port [default: HOOKSTREAM_INGEST_PORT or 8080].")
@click.option(
    "--admin-port",
    type=int,
    help="Admin port [default: HOOKSTREAM_INGEST_ADMIN_PORT or 8081].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Worker processes, one spool file each [default: HOOKSTREAM_INGEST_WORKERS or 1].",
)
def ingest_command(
    host: str | None, port: int | None, admin_port: int | None, workers: int | None
) -> None:
    """Serve POST /webhooks/intercom: verify Intercom's signature, make each notification
    durable (Kafka ack, or the local spool while Kafka is away), then answer 200.

    The webhook port also serves HEAD /webhooks/intercom, POST /events and a bare /healthz,
    and nothing else. The admin port (same address) serves /readyz, /healthz, /metrics,
    /docs and /openapi.json. SIGTERM stops intake on both, finishes requests in flight,
    drains and flushes, then exits.
    """
    overrides = {"hookstream_ingest_port": port, "hookstream_ingest_admin_port": admin_port}
    try:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    refusal = secrets_refusal(settings)
    if refusal:
        raise click.UsageError(refusal)
    try:  # a refused login is no outage to spool through: stop here, naming the setting
        asyncio.run(check_credentials(KafkaConnection.from_settings(settings.kafka)))
    except KafkaAuthFailed as exc:
        raise click.ClickException(str(exc)) from None
    serve(settings, host or settings.ingest.host, workers or settings.ingest.workers)


def serve(settings: Settings, host: str, workers: int) -> None:
    """Serve both ports from one uvicorn server (in each of `workers` processes): one
    graceful shutdown stops intake on both and runs the lifespan's drain once."""
    # uvicorn builds the app in each worker from the environment: it must know which of its
    # two sockets is the admin one.
    os.environ["HOOKSTREAM_INGEST_ADMIN_PORT"] = str(settings.ingest.admin_port)
    config = uvicorn.Config(
        FACTORY,
        factory=True,
        host=host,
        port=settings.ingest.port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        # uvicorn's own cap counts connections too (idle keep-alive ones included) and answers
        # a plain 503: a backstop above the app's cap on requests, which says Retry-After.
        limit_concurrency=settings.ingest.max_concurrency * 2,
    )
    sockets = [config.bind_socket(), _admin_socket(host, settings.ingest.admin_port)]
    try:
        if workers > 1:
            Multiprocess(config, sockets=sockets).run()
            return
        server = uvicorn.Server(config)
        server.run(sockets=sockets)
        if not server.started:
            raise SystemExit(3)  # uvicorn's STARTUP_FAILURE: the lifespan failed
    finally:
        for sock in sockets:
            sock.close()


def _admin_socket(host: str, port: int) -> socket.socket:
    return uvicorn.Config(FACTORY, host=host, port=port).bind_socket()
