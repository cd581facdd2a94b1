"""`hookstream sandbox` and `hookstream send-webhook`."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import click
import orjson
import uvicorn

from hookstream.logs import configure_logging
from hookstream.settings import load_settings
from sandbox.app import create_app
from sandbox.config import (
    APP_WINDOW_LIMIT,
    DEFAULT_ACCESS_TOKEN,
    WINDOW_SECONDS,
    WORKSPACE_WINDOW_LIMIT,
    SandboxConfig,
)
from sandbox.notifications import topics
from sandbox.webhooks import (
    INTERCOM_RETRY_DELAY_SECONDS,
    INTERCOM_TIMEOUT_SECONDS,
    SendPlan,
    send_webhooks,
)

DEFAULT_WEBHOOK_URL = "http://127.0.0.1:8080/webhooks/intercom"
_share = click.FloatRange(0, 1)


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address.")
@click.option("--port", type=int, help="Listen port [default: HOOKSTREAM_SANDBOX_PORT or 8090].")
@click.option(
    "--window-limit",
    type=click.IntRange(min=0),
    help=f"Calls allowed per window [default: {APP_WINDOW_LIMIT}, Intercom's 10,000/min app "
    "limit in 10-second windows].",
)
@click.option(
    "--workspace",
    is_flag=True,
    help=f"Use the 25,000/min workspace limit instead ({WORKSPACE_WINDOW_LIMIT} per window).",
)
@click.option("--unlimited", is_flag=True, help="No rate limit (for raw-speed benchmarks).")
@click.option(
    "--window-seconds",
    type=click.IntRange(min=1),
    default=WINDOW_SECONDS,
    show_default=True,
    help="Length of a rate-limit window.",
)
@click.option(
    "--access-token",
    help=f"The bearer token accepted [default: INTERCOM_ACCESS_TOKEN or {DEFAULT_ACCESS_TOKEN}].",
)
@click.option(
    "--error-rate",
    type=_share,
    default=0.0,
    show_default=True,
    help="Share of calls answered with --error-status.",
)
@click.option("--error-status", type=click.IntRange(400, 599), default=500, show_default=True)
@click.option(
    "--latency",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds added to every call.",
)
@click.option(
    "--timeout-rate",
    type=_share,
    default=0.0,
    show_default=True,
    help="Share of calls that hang for --hang-seconds, then answer 504.",
)
@click.option(
    "--hang-seconds", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True
)
@click.option("--seed", type=int, help="Seed of the failure injection's random draws.")
def sandbox_command(
    *,
    host: str,
    port: int | None,
    window_limit: int | None,
    workspace: bool,
    unlimited: bool,
    window_seconds: int,
    access_token: str | None,
    error_rate: float,
    error_status: int,
    latency: float,
    timeout_rate: float,
    hang_seconds: float,
    seed: int | None,
) -> None:
    """Serve a local Intercom Data Events API (POST/GET /events) that checks requests as
    Intercom does, rate-limits in fixed windows with Intercom's headers, deduplicates, and
    can inject latency, errors and hangs. Control API under /sandbox/ (accepted, stats,
    config, reset)."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    if sum([unlimited, workspace, window_limit is not None]) > 1:
        raise click.UsageError("give one of --window-limit, --workspace and --unlimited")
    limit: int | None = window_limit
    if limit is None and not unlimited:
        limit = WORKSPACE_WINDOW_LIMIT if workspace else APP_WINDOW_LIMIT
    token = access_token
    if token is None and settings.intercom_access_token is not None:
        token = settings.intercom_access_token.get_secret_value()
    config = SandboxConfig(
        window_limit=limit,
        window_seconds=window_seconds,
        access_token=token or DEFAULT_ACCESS_TOKEN,
        error_rate=error_rate,
        error_status=error_status,
        latency_seconds=latency,
        timeout_rate=timeout_rate,
        hang_seconds=hang_seconds,
    )
    app = create_app(config, rng=random.Random(seed))  # noqa: S311 - fault draws, not crypto
    uvicorn.run(
        app,
        host=host,
        port=port if port is not None else settings.sandbox_port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=1,
    )


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
        settings.intercom_client_secret.get_secret_value()
        if settings.intercom_client_secret
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
