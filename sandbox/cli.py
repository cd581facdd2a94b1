"""`hookstream sandbox`."""

from __future__ import annotations

import random
from pathlib import Path

import click
import uvicorn
import yaml
from pydantic import ValidationError

from hookstream.core.logs import configure_logging
from hookstream.core.settings import load_settings
from hookstream.sandbox.app import create_app
from hookstream.sandbox.config import (
    APP_WINDOW_LIMIT,
    DEFAULT_ACCESS_TOKEN,
    WINDOW_SECONDS,
    WORKSPACE_WINDOW_LIMIT,
    SandboxConfig,
    WorkspaceConfig,
)

_share = click.FloatRange(0, 1)


def _workspaces(path: Path) -> dict[str, WorkspaceConfig]:
    """The workspaces of a tokens file; a usage error naming the file when malformed."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        entries = raw["workspaces"]
        return {str(name): WorkspaceConfig.model_validate(entry) for name, entry in entries.items()}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError, ValidationError):
        raise click.UsageError(
            f"{path}: not a workspaces file (workspaces: {{id: {{token, region}}}})"
        ) from None


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
@click.option(
    "--workspaces-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="More workspaces, each with its own token, rate limit and region: the sink's "
    "HOOKSTREAM_SINK_WORKSPACE_TOKENS_FILE format (workspaces: {id: {token, region}}).",
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
    workspaces_file: Path | None,
    seed: int | None,
) -> None:
    """Serve a local Intercom Data Events API (POST/GET /events) that checks requests as
    Intercom does, rate-limits in fixed windows with Intercom's headers, deduplicates, and
    can inject latency, errors and hangs; plays many workspaces (--workspaces-file), each
    with its own token and rate limit. Control API under /sandbox/ (accepted, stats,
    config, reset, workspaces/<id>, workspaces/<id>/revoke)."""
    settings = load_settings()
    configure_logging(settings.log.level, settings.log.format)
    if sum([unlimited, workspace, window_limit is not None]) > 1:
        raise click.UsageError("give one of --window-limit, --workspace and --unlimited")
    limit: int | None = window_limit
    if limit is None and not unlimited:
        limit = WORKSPACE_WINDOW_LIMIT if workspace else APP_WINDOW_LIMIT
    token = access_token
    if token is None and settings.sink.intercom_access_token is not None:
        token = settings.sink.intercom_access_token.get_secret_value()
    config = SandboxConfig(
        window_limit=limit,
        window_seconds=window_seconds,
        access_token=token or DEFAULT_ACCESS_TOKEN,
        error_rate=error_rate,
        error_status=error_status,
        latency_seconds=latency,
        timeout_rate=timeout_rate,
        hang_seconds=hang_seconds,
        workspaces=_workspaces(workspaces_file) if workspaces_file is not None else {},
    )
    app = create_app(config, rng=random.Random(seed))  # noqa: S311 - fault draws, not crypto
    uvicorn.run(
        app,
        host=host,
        port=port if port is not None else settings.sandbox.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=1,
    )
