"""`hookstream worker`: run the streams worker (dedup and fan-out) in this process."""

from __future__ import annotations

import asyncio
import gc

import click
import uvloop

from hookstream.core.build_info import VERSION
from hookstream.core.errors import (
    KafkaAccessDenied,
    KafkaAuthFailed,
    KafkaUnreachable,
    TopicAdminFailed,
)
from hookstream.core.kafka import KafkaConnection, Needed, check_access
from hookstream.core.logs import configure_logging, get_logger
from hookstream.core.settings import Settings, load_settings
from hookstream.core.stop_deadline import BoundedWorker, StopDeadline
from hookstream.core.topics import restrain_faust
from hookstream.streams.app import build_app, prepare_topics
from hookstream.streams.errors import RouteFailed, RoutesFileError
from hookstream.streams.routes import RouteTable, load_routes
from hookstream.streams.state import LocalState

log = get_logger(__name__)

# The worker makes a dozen short-lived objects per record (the record, its notification,
# headers, outbox entries, ...), so with CPython's default threshold (700) the collector ran
# every few dozen records; collecting young objects every 100,000 allocations instead raised
# the worker's throughput by about a tenth (docs/streams.md). They die young and form no
# cycles, so memory does not grow for it (the RSS run checks that).
_GC_YOUNG_THRESHOLD = 100_000


@click.command("worker")
@click.option(
    "--web-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port of /metrics, /healthz and /readyz.  [default: HOOKSTREAM_WORKER_WEB_PORT]",
)
@click.option(
    "--web-bind",
    default="0.0.0.0",
    show_default=True,
    help="Address the web port listens on.",
)
@click.option(
    "--shutdown-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=25.0,
    show_default=True,
    help="Seconds a SIGTERM/SIGINT stop may take before the worker exits anyway (keep it "
    "under the pod's grace period; safe, as uncommitted transactions abort).",
)
@click.option(
    "--check-routes",
    is_flag=True,
    help="Validate HOOKSTREAM_ROUTES_FILE, print the rules and exit.",
)
@click.option(
    "--show-route",
    "show_routes",
    metavar="TOPIC",
    multiple=True,
    help="Print where notifications of an Intercom TOPIC go, and exit (repeatable);"
    " TOPIC@WORKSPACE: those of one workspace (app_id).",
)
def worker_command(
    web_port: int | None,
    web_bind: str,
    shutdown_timeout: float,
    check_routes: bool,
    show_routes: tuple[str, ...],
) -> None:
    """Run the streams worker: consume the raw topic, drop duplicate notifications, route
    each one to its topics and dead-letter what cannot be processed, exactly once.

    Settings come from the environment (HOOKSTREAM_RAW_TOPIC, HOOKSTREAM_DEDUP_TTL_SECONDS,
    HOOKSTREAM_ROUTES_FILE, HOOKSTREAM_STORE, ...; see the README). SIGTERM stops it
    cleanly: in-flight events finish and the last transaction commits.
    """
    settings = load_settings()
    configure_logging(settings.log.level, settings.log.format)
    try:
        routes = load_routes(settings.topics.route_prefix, settings.worker.routes_file)
    except RoutesFileError as exc:
        raise click.ClickException(str(exc)) from exc
    if check_routes or show_routes:
        _print_routes(routes, show_routes)
        return
    _run(settings, routes, web_port=web_port, web_bind=web_bind, shutdown_timeout=shutdown_timeout)


def _print_routes(routes: RouteTable, topics: tuple[str, ...]) -> None:
    for rule in routes.rules:
        click.echo(str(rule))
    unmatched = f"{routes.prefix}<topic>" if routes.route_unmatched else "(dropped)"
    click.echo(f"(unmatched) -> {unmatched}")
    for topic in topics:
        intercom_topic, _, workspace = topic.partition("@")
        try:
            destinations = (
                ", ".join(routes.destinations(intercom_topic, workspace or None)) or "(dropped)"
            )
        except RouteFailed as exc:
            destinations = f"(dead-lettered: {exc})"
        click.echo(f"{topic}: {destinations}")


def _needed(settings: Settings, routes: RouteTable) -> list[Needed]:
    """The ACLs the worker's Faust app needs that Faust would not name when refused: the
    routes file's fixed destinations included (the others fall under HOOKSTREAM_ROUTE_PREFIX)."""
    worker_id = settings.worker.id
    return [
        *(Needed("topic", name, "Write") for name in sorted(routes.static_destinations())),
        Needed("topic", settings.topics.raw, "Read"),
        Needed("topic", settings.topics.dlq, "Write"),
        Needed("group", worker_id, "Read"),
        # Faust's transactional ids are `<worker id>-<topic group>-<partition>`: one stands
        # for the prefix ACL that covers them all
        Needed("transactional id", f"{worker_id}-0-0", "Write"),
    ]


def _tune_garbage_collector() -> None:
    """Collect young objects less often, and never scan what start-up made again."""
    gc.freeze()  # modules, settings, the app: kept for the life of the process
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(_GC_YOUNG_THRESHOLD, older, oldest)


def _run(
    settings: Settings,
    routes: RouteTable,
    *,
    web_port: int | None,
    web_bind: str,
    shutdown_timeout: float,
) -> None:
    # uvloop roughly doubles what Faust's many small tasks and its consumer thread cost;
    # set as the policy so that the consumer thread's own loop is one too.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        partitions = loop.run_until_complete(prepare_topics(settings, routes))
        connection = KafkaConnection.from_settings(settings.kafka)
        loop.run_until_complete(check_access(connection, _needed(settings, routes)))
        app = build_app(
            settings, routes, partitions=partitions, web_port=web_port, web_bind=web_bind
        )
        loop.run_until_complete(restrain_faust(app, settings))  # HOOKSTREAM_CREATE_TOPICS
    except (KafkaAuthFailed, KafkaAccessDenied, KafkaUnreachable, TopicAdminFailed) as exc:
        loop.close()
        raise click.ClickException(str(exc)) from exc
    state = LocalState(settings.faust.data_dir)
    if settings.faust.store.startswith("rocksdb"):
        state.claim(app.tables_dir)
    log.info(
        "worker.starting",
        version=VERSION,
        worker_id=settings.worker.id,
        raw_topic=settings.topics.raw,
        partitions=partitions,
        store=settings.faust.store,
        web_port=app.conf.web_port,
    )
    worker = BoundedWorker(
        app,
        deadline=StopDeadline(shutdown_timeout, "worker.stop_timed_out"),
        loop=loop,
        quiet=True,
        override_logging=False,
        redirect_stdouts=False,
        loglevel=settings.log.level,
    )
    worker.spinner = None  # a terminal spinner has no place in a service's output
    _tune_garbage_collector()
    try:
        worker.execute_from_commandline()
    except SystemExit as stopped:
        uncommitted = len(app.outbox)
        if stopped.code in (0, None) and not app.crashed and not uncommitted:
            state.mark_clean_stop()
            log.info("worker.stopped", clean=True)
        elif uncommitted:
            # Their table writes are in the local store but not in the changelog: the store
            # cannot be trusted, or the events' retries would pass for duplicates.
            log.warning("worker.stopped", clean=False, uncommitted_records=uncommitted)
        raise
