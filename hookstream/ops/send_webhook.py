"""`hookstream send-webhook`: sign realistic Intercom notifications and deliver them as
Intercom does (the signing and delivery are the sandbox's, `hookstream.sandbox.webhooks`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
import orjson

from hookstream.core.settings import load_settings
from hookstream.sandbox.notifications import topics
from hookstream.sandbox.webhooks import (
    INTERCOM_RETRY_DELAY_SECONDS,
    INTERCOM_TIMEOUT_SECONDS,
    SendPlan,
    send_webhooks,
)

DEFAULT_WEBHOOK_URL = "http://127.0.0.1:8080/webhooks/intercom"
_share = click.FloatRange(0, 1)


@click.command("send-webhook")
@click.option(
    "--topic",
    "topic_names",
    multiple=True,
    help="Intercom topic (repeat for several, sent round robin) "
    "[default: conversation.user.created].",
)
@click.option(
    "--body-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Send this file's bytes as they are instead of a generated notification.",
)
@click.option("--url", default=DEFAULT_WEBHOOK_URL, show_default=True)
@click.option("--secret", help="Client secret that signs [default: INTERCOM_CLIENT_SECRET].")
@click.option("-n", "--count", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Notifications per second [default: as fast as --concurrency allows].",
)
@click.option("--concurrency", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--duplicates",
    type=_share,
    default=0.0,
    show_default=True,
    help="Share of sends that re-deliver an earlier notification (same id, delivery_attempts + 1).",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Retries of a failed delivery (Intercom: one).",
)
@click.option(
    "--retry-delay",
    type=click.FloatRange(min=0),
    default=INTERCOM_RETRY_DELAY_SECONDS,
    show_default=True,
    help="Seconds before a retry (Intercom: about a minute).",
)
@click.option(
    "--timeout",
    "wait_seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=INTERCOM_TIMEOUT_SECONDS,
    show_default=True,
    help="Seconds an attempt waits for an answer (Intercom: 5).",
)
@click.option("--app-id", default="sandbox1", show_default=True)
@click.option("--seed", type=int, help="Seed of the duplicate schedule.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--list-topics", is_flag=True, help="Print the topics it can send and exit.")
def send_webhook_command(
    *,
    topic_names: tuple[str, ...],
    body_file: Path | None,
    url: str,
    secret: str | None,
    count: int,
    rate: float | None,
    concurrency: int,
    duplicates: float,
    retries: int,
    retry_delay: float,
    wait_seconds: float,
    app_id: str,
    seed: int | None,
    as_json: bool,
    list_topics: bool,
) -> None:
    """Sign realistic Intercom notifications (or a body file) and deliver them as Intercom
    does: X-Hub-Signature, Intercom's headers, one retry of a failed delivery with
    delivery_attempts + 1. Prints a summary; exits 1 when a delivery failed."""
    if list_topics:
        click.echo("\n".join(topics()))
        return
    settings = load_settings()
    key = secret or (
        settings.ingest.intercom_client_secret.get_secret_value()
        if settings.ingest.intercom_client_secret
        else None
    )
    if not key:
        raise click.UsageError("give --secret or set INTERCOM_CLIENT_SECRET")
    if body_file is not None and topic_names:
        raise click.UsageError("--body-file and --topic exclude each other")
    chosen = topic_names or ("conversation.user.created",)
    unknown = [name for name in chosen if name not in topics()]
    if unknown:
        raise click.UsageError(f"not Intercom topics: {', '.join(unknown)} (see --list-topics)")
    plan = SendPlan(
        url=url,
        secret=key,
        count=count,
        topics=chosen,
        body=body_file.read_bytes() if body_file is not None else None,
        rate=rate,
        concurrency=concurrency,
        duplicates=duplicates,
        retries=retries,
        retry_delay=retry_delay,
        wait_seconds=wait_seconds,
        app_id=app_id,
        seed=seed,
    )
    summary = asyncio.run(send_webhooks(plan))
    click.echo(orjson.dumps(summary.as_dict()).decode() if as_json else summary.format())
    if summary.as_dict()["failed"]:
        raise SystemExit(1)
