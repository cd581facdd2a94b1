"""`hookstream sink`: run the sink as a Faust worker."""

from __future__ import annotations

import click
import uvloop

from hookstream.core.build_info import VERSION
from hookstream.core.errors import KafkaAccessDenied, KafkaAuthFailed
from hookstream.core.kafka import KafkaConnection, Needed, check_access, check_credentials
from hookstream.core.logs import configure_logging, get_logger
from hookstream.core.settings import Settings, load_settings, weak_secrets, weak_secrets_refusal
from hookstream.core.stop_deadline import BoundedWorker, StopDeadline
from hookstream.sinks.app import STOP_SECONDS, Sink
from hookstream.sinks.client import check_tokens
from hookstream.sinks.workspaces import TokenFile, WorkspaceTokensInvalid

log = get_logger(__name__)


@click.command("sink")
@click.option(
    "--web-port",
    type=int,
    help="Port of /metrics, /healthz, /readyz [default: HOOKSTREAM_SINK_WEB_PORT or 6067].",
)
@click.option("--web-host", default="0.0.0.0", show_default=True, help="Their listen address.")
def sink_command(web_port: int | None, web_host: str) -> None:
    """Send the data events of HOOKSTREAM_DATA_EVENTS_TOPIC to Intercom's Data Events API.

    Batches from Kafka; one call per event within the rate budget (the app's limit split
    across HOOKSTREAM_SINK_REPLICAS, and Intercom's X-RateLimit headers); retries with
    backoff; invalid or refused events to HOOKSTREAM_DATA_EVENTS_DLQ_TOPIC; offsets committed
    only past final records. Many workspaces: HOOKSTREAM_SINK_WORKSPACE_TOKENS_FILE, and
    each record's intercom-app-id header. A refused token (401/403) parks its workspace;
    /readyz names it, and the sink stops only when every workspace is refused.
    SIGTERM stops intake and drains for at most 15 s.
    """
    settings = load_settings()
    try:
        check_tokens(settings.sink)
        if settings.sink.workspace_tokens_file is not None:
            TokenFile(settings.sink.workspace_tokens_file).load()
    except (ValueError, WorkspaceTokensInvalid) as exc:
        raise click.UsageError(str(exc)) from exc
    weak = weak_secrets(settings.sink) + weak_secrets(settings.kafka)
    refusal = weak_secrets_refusal(weak, allowed=settings.ingest.allow_dev_secrets)
    if refusal:  # as the ingest does: no placeholder or dev token outside a dev set-up
        raise click.UsageError(refusal)
    # Logging is the service's from here on (refusals above are click's usage errors).
    configure_logging(settings.log.level, settings.log.format)
    if weak:
        log.warning("sink_using_dev_secrets", weak=weak)
    loop = uvloop.new_event_loop()
    try:  # Faust would retry a refused login for ever, looking like an outage
        connection = KafkaConnection.from_settings(settings.kafka)
        loop.run_until_complete(check_credentials(connection))
        loop.run_until_complete(check_access(connection, _needed(settings)))
    except (KafkaAuthFailed, KafkaAccessDenied) as exc:
        loop.close()
        raise click.ClickException(str(exc)) from None
    sink = Sink(settings, web_port=web_port, web_host=web_host)
    log.info(
        "sink_starting",
        version=VERSION,
        sink_id=settings.sink.id,
        topic=settings.topics.data_events,
        dlq=settings.topics.data_events_dlq,
        intercom=settings.sink.intercom_base_url,
        web_port=sink.web_port,
    )
    sink.app.stop_deadline = StopDeadline(STOP_SECONDS, "sink_stop_timed_out")
    worker = BoundedWorker(
        sink.app,
        deadline=sink.app.stop_deadline,
        loop=loop,
        quiet=True,
        override_logging=False,
        redirect_stdouts=False,
        loglevel=settings.log.level,
    )
    worker.spinner = None  # a terminal spinner has no place in a service's output
    worker.execute_from_commandline()


def _needed(settings: Settings) -> list[Needed]:
    """The ACLs the sink's Faust app needs, which Faust would not name when refused."""
    return [
        Needed("topic", settings.topics.data_events, "Read"),
        Needed("topic", settings.topics.data_events_dlq, "Write"),
        Needed("group", settings.sink.id, "Read"),
    ]
