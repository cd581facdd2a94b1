"""`hookstream send-webhook`: sign realistic Intercom notifications and deliver them as
Intercom does (the signing and delivery are the sandbox's, `hookstream.sandbox.webhooks`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
import httpx
import orjson

from hookstream.core.settings import load_settings
from hookstream.sandbox.notifications import topics
from hookstream.sandbox.webhooks import (
    INTERCOM_RETRY_DELAY_SECONDS,
    INTERCOM_TIMEOUT_SECONDS,
    SendPlan,
    Summary,
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
@click.option(
    "--secret",
    "secret_options",
    multiple=True,
    metavar="[APP_ID:]SECRET",
    help="Client secret that signs; APP_ID:SECRET signs only the notifications of workspace"
    " APP_ID (repeatable: one per workspace) [default: INTERCOM_CLIENT_SECRET, else the first"
    " of INTERCOM_CLIENT_SECRETS].",
)
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
@click.option(
    "--app-id",
    "app_ids",
    multiple=True,
    default=("sandbox1",),
    show_default=True,
    help="The workspace (`app_id`) the notifications come from; repeat it for several: the"
    " notifications are spread evenly over them, each signed with its workspace's --secret.",
)
@click.option("--seed", type=int, help="Seed of the duplicate schedule.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--list-topics", is_flag=True, help="Print the topics it can send and exit.")
def send_webhook_command(
    *,
    topic_names: tuple[str, ...],
    body_file: Path | None,
    url: str,
    secret_options: tuple[str, ...],
    count: int,
    rate: float | None,
    concurrency: int,
    duplicates: float,
    retries: int,
    retry_delay: float,
    wait_seconds: float,
    app_ids: tuple[str, ...],
    seed: int | None,
    as_json: bool,
    list_topics: bool,
) -> None:
    """Sign realistic Intercom notifications (or a body file) and deliver them as Intercom
    does: X-Hub-Signature, Intercom's headers, one retry of a failed delivery with
    delivery_attempts + 1. Prints a summary; exits 1 when a delivery failed.

    Several workspaces, as a public app's webhooks come: `--app-id ws1 --app-id ws2` spreads
    the notifications over both; `--secret ws1:SECRET1 --secret ws2:SECRET2` signs each
    workspace's with its own secret (an unnamed --secret signs the others)."""
    if list_topics:
        click.echo("\n".join(topics()))
        return
    if body_file is not None and topic_names:
        raise click.UsageError("--body-file and --topic exclude each other")
    if body_file is not None and len(app_ids) > 1:
        raise click.UsageError("--body-file sends its own app_id: give at most one --app-id")
    chosen = topic_names or ("conversation.user.created",)
    unknown = [name for name in chosen if name not in topics()]
    if unknown:
        raise click.UsageError(f"not Intercom topics: {', '.join(unknown)} (see --list-topics)")
    workspaces = list(dict.fromkeys(app_ids))
    keys = _secrets(secret_options, workspaces)
    body = body_file.read_bytes() if body_file is not None else None
    plans = [
        SendPlan(
            url=url,
            secret=keys[app_id],
            count=share,
            topics=chosen,
            body=body,
            rate=rate * share / count if rate else None,
            concurrency=max(1, concurrency * share // count),
            duplicates=duplicates,
            retries=retries,
            retry_delay=retry_delay,
            wait_seconds=wait_seconds,
            app_id=app_id,
            seed=None if seed is None else seed + index,
        )
        for index, (app_id, share) in enumerate(_spread(count, workspaces))
    ]
    summary = asyncio.run(_send_all(plans, concurrency))
    click.echo(orjson.dumps(summary.as_dict()).decode() if as_json else summary.format())
    if summary.as_dict()["failed"]:
        raise SystemExit(1)


def _secrets(options: tuple[str, ...], workspaces: list[str]) -> dict[str, str]:
    """The secret that signs each workspace's notifications: its own `--secret APP_ID:...`,
    else the unnamed --secret, else the settings' (INTERCOM_CLIENT_SECRET, else the first of
    INTERCOM_CLIENT_SECRETS)."""
    named: dict[str, str] = {}
    default: str | None = None
    for option in options:
        app_id, colon, secret = option.partition(":")
        if not colon:
            default = option
        elif not app_id or not secret:
            raise click.BadParameter("expected [APP_ID:]SECRET", param_hint="--secret")
        else:
            named[app_id] = secret
    if stray := sorted(set(named) - set(workspaces)):
        raise click.BadParameter(
            f"no --app-id {', '.join(stray)} to sign for", param_hint="--secret"
        )
    if default is None and len(named) < len(workspaces):
        configured = load_settings().ingest.signing_secrets
        default = configured[0][1].decode() if configured else None
    if default is None and len(named) < len(workspaces):
        raise click.UsageError("give --secret or set INTERCOM_CLIENT_SECRET")
    return {app_id: named.get(app_id) or default or "" for app_id in workspaces}


def _spread(count: int, workspaces: list[str]) -> list[tuple[str, int]]:
    """How many of `count` notifications each workspace sends: as even as can be."""
    per, extra = divmod(count, len(workspaces))
    shares = [(app_id, per + (index < extra)) for index, app_id in enumerate(workspaces)]
    return [(app_id, share) for app_id, share in shares if share]


async def _send_all(plans: list[SendPlan], concurrency: int) -> Summary:
    """Run the plans at once over one client; one summary of them all."""
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        summaries = await asyncio.gather(*(send_webhooks(plan, client) for plan in plans))
    return Summary(
        deliveries=[delivery for summary in summaries for delivery in summary.deliveries],
        elapsed=max(summary.elapsed for summary in summaries),
    )
