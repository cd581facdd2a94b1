"""`hookstream ingest` and `hookstream verify-signature`."""

from __future__ import annotations

from pathlib import Path

import click
import uvicorn

from hookstream.settings import load_settings
from ingest.errors import SignatureInvalid, SignatureMissing
from ingest.signature import verify_signature

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
    if not settings.client_secrets:
        raise click.UsageError("set INTERCOM_CLIENT_SECRET (or INTERCOM_CLIENT_SECRETS)")
    uvicorn.run(
        "ingest.server:app_from_environment",
        factory=True,
        host=host or settings.ingest_host,
        port=port if port is not None else settings.ingest_port,
        workers=workers or settings.ingest_workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


@click.command("verify-signature")
@click.argument("body_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--signature", required=True, help="The X-Hub-Signature value: sha1=<hex>.")
@click.option(
    "--secret",
    help="The client secret [default: INTERCOM_CLIENT_SECRET / INTERCOM_CLIENT_SECRETS].",
)
def verify_signature_command(body_file: Path, signature: str, secret: str | None) -> None:
    """Check that BODY_FILE (the raw bytes of a delivery) matches SIGNATURE under the
    client secret. Exits 0 when it does, 1 when it does not."""
    secrets = [secret.encode()] if secret else load_settings().client_secrets
    if not secrets:
        raise click.UsageError("give --secret or set INTERCOM_CLIENT_SECRET")
    try:
        verify_signature(body_file.read_bytes(), signature, secrets)
    except (SignatureMissing, SignatureInvalid) as exc:
        click.echo(f"invalid: {exc}")
        raise SystemExit(1) from exc
    click.echo("valid")
