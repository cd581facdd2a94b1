"""The operator commands `hookstream topics`, `hookstream tail` and `hookstream replay`.

Thin click wrappers: the work is done in `hookstream.core.topics`, `hookstream.ops.tail` and
`hookstream.ops.replay`; this module reads the settings, runs the coroutine, prints, and turns
hookstream's errors into a one-line `click.ClickException` (exit code 1).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from hookstream.core import kafka
from hookstream.core.contract import HEADER_DLQ_REASON, decode_headers
from hookstream.core.errors import HookstreamError
from hookstream.core.kafka import KafkaConnection
from hookstream.core.settings import Settings, load_settings
from hookstream.core.topics import (
    RECORD_OVERHEAD_BYTES,
    TopicDescription,
    describe_topics,
    ensure_topics,
    is_routed,
)
from hookstream.ops import render
from hookstream.ops.options import bootstrap_option
from hookstream.ops.replay import ReplayFilter, ReplaySummary, default_group, parse_time, replay
from hookstream.ops.tail import TailOptions, tail

T = TypeVar("T")

_connect_timeout_option = click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0.1),
    default=kafka.DEFAULT_CONNECT_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the broker (to connect, and for each request).",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _settings() -> Settings:
    try:
        return load_settings()
    except ValidationError as exc:
        raise click.ClickException(f"invalid settings: {exc}") from exc


@contextmanager
def _quiet_kafka_logs(settings: Settings) -> Iterator[None]:
    """aiokafka logs a failed connection as an error of its own; the command reports it once,
    as a sentence. At HOOKSTREAM_LOG_LEVEL=debug its logs stay."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    if settings.log.level != "debug":
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _run(settings: Settings, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine of the command; hookstream's errors become a click error."""
    with _quiet_kafka_logs(settings):
        try:
            return asyncio.run(coroutine)
        except HookstreamError as exc:
            raise click.ClickException(str(exc)) from exc


# -- topics -------------------------------------------------------------------------------


@click.command("topics")
@click.argument(
    "action", type=click.Choice(["describe", "create"]), default="describe", required=False
)
@click.option(
    "--routed/--no-routed",
    default=True,
    show_default=True,
    help="Also describe the routed topics that exist (HOOKSTREAM_ROUTE_PREFIX*).",
)
@_json_option
@bootstrap_option
@_connect_timeout_option
def topics_command(
    action: str, routed: bool, as_json: bool, bootstrap: str | None, connect_timeout: float
) -> None:
    """Create or describe hookstream's topics.

    \b
    hookstream topics            describe (the default)
    hookstream topics create     create the missing ones, then describe
    hookstream topics --json     the same as JSON

    The topics are the raw topic, its dead-letter topic, the data-events topic and its
    dead-letter topic (HOOKSTREAM_RAW_TOPIC, HOOKSTREAM_DLQ_TOPIC,
    HOOKSTREAM_DATA_EVENTS_TOPIC, HOOKSTREAM_DATA_EVENTS_DLQ_TOPIC), created with
    HOOKSTREAM_TOPIC_PARTITIONS partitions, HOOKSTREAM_TOPIC_REPLICATION replicas and their
    retention and size configs. `create` is idempotent: a topic that exists is left as it
    is (describe shows when its partitions differ from the settings).

    Describe shows partitions, replication, the configs set on each topic (marked *) and
    the key ones inherited, and each partition's first..next offset.
    """
    settings = _settings()
    bootstrap = bootstrap or settings.kafka.bootstrap_servers

    async def work() -> tuple[dict[str, bool], list[TopicDescription]]:
        created: dict[str, bool] = {}
        if action == "create":
            ensured = await ensure_topics(
                settings, bootstrap=bootstrap, wait_seconds=connect_timeout
            )
            created = {item.spec.name: item.created for item in ensured}
        descriptions = await describe_topics(
            settings, bootstrap=bootstrap, wait_seconds=connect_timeout, include_routed=routed
        )
        return created, descriptions

    created, descriptions = _run(settings, work())
    if as_json:
        topics = []
        for description in descriptions:
            entry = description.as_dict()
            if description.name in created:
                entry["action"] = "created" if created[description.name] else "exists"
            topics.append(entry)
        click.echo(json.dumps({"bootstrap": bootstrap, "topics": topics}, indent=2))
        return
    for name, was_created in created.items():
        click.echo(f"{'created' if was_created else 'exists '}  {name}")
    if created:
        click.echo()
    for description in descriptions:
        click.echo(_describe_text(description))


def _describe_text(topic: TopicDescription) -> str:
    if not topic.exists:
        return f"{topic.name}  ({topic.role})  missing: `hookstream topics create` creates it"
    layout = f"{topic.partitions} partitions, replication {topic.replication}"
    expected = topic.expected
    if expected is not None and (
        expected.partitions != topic.partitions or expected.replication != topic.replication
    ):
        layout += (
            f"  (settings: {expected.partitions} partitions, replication {expected.replication})"
        )
    configs = "  ".join(
        f"{name}={value}{'*' if name in topic.overrides else ''}"
        for name, value in topic.configs.items()
    )
    offsets = "  ".join(f"{o.partition}:{o.start}..{o.end}" for o in topic.offsets)
    total = sum(o.end - o.start for o in topic.offsets)
    return "\n".join(
        [
            f"{topic.name}  ({topic.role})  {layout}",
            f"  configs  {configs or '(none)'}",
            f"  offsets  {offsets}  (span {total})",
        ]
    )


# -- tail ---------------------------------------------------------------------------------


@click.command("tail")
@click.argument("topic")
@click.option(
    "--from-beginning", is_flag=True, help="Start at each partition's first record, not its end."
)
@click.option(
    "--max",
    "max_records",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Stop after N records.",
)
@click.option(
    "--timeout",
    "idle_seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Stop when no record arrived for this long (as kafka-console-consumer's "
    "--timeout-ms).  [default: follow until Ctrl-C]",
)
@click.option(
    "--partition",
    "partitions",
    type=click.IntRange(min=0),
    multiple=True,
    metavar="N",
    help="Only this partition (repeatable).  [default: all]",
)
@click.option(
    "--read-uncommitted",
    is_flag=True,
    help="Also show records of open and aborted transactions (default: read_committed, what "
    "the worker and consumers of the routed topics see; the sink reads read_uncommitted).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per record and line (value as JSON when it is, never truncated).",
)
@click.option(
    "--full", is_flag=True, help=f"Do not cut values after {render.DEFAULT_MAX_CHARS} characters."
)
@bootstrap_option
@_connect_timeout_option
def tail_command(  # click passes the options by name
    *,
    topic: str,
    from_beginning: bool,
    max_records: int | None,
    idle_seconds: float | None,
    partitions: tuple[int, ...],
    read_uncommitted: bool,
    as_json: bool,
    full: bool,
    bootstrap: str | None,
    connect_timeout: float,
) -> None:
    """Follow TOPIC and print its records readably: partition and offset, time, key, headers
    (decoded per the topic contract; hookstream-received-at also as a UTC time) and the value,
    pretty-printed when it is JSON.

    By default it starts at the end and prints records as they arrive, until Ctrl-C, --max
    or --timeout. Status lines go to stderr, records to stdout. A routed topic
    (HOOKSTREAM_ROUTE_PREFIX*) that does not exist yet is waited for, up to --timeout: the
    worker creates it when it routes the first notification of that Intercom topic. Any other
    missing topic is an error at once.

    \b
    hookstream tail intercom.conversation.user.created
    hookstream tail intercom.notifications --from-beginning --max 10
    hookstream tail intercom.notifications.dlq --from-beginning --timeout 5 --json | jq .
    """
    settings = _settings()
    bootstrap = bootstrap or settings.kafka.bootstrap_servers
    options = TailOptions(
        topic=topic,
        from_beginning=from_beginning,
        partitions=partitions,
        max_records=max_records,
        idle_seconds=idle_seconds,
        read_committed=not read_uncommitted,
        wait_for_topic=is_routed(topic, settings.topics),
    )
    max_chars = None if full else render.DEFAULT_MAX_CHARS

    def show(record: ConsumerRecord[bytes, bytes]) -> None:
        if as_json:
            click.echo(render.json_line(record))
        else:
            click.echo(render.format_record(record, max_chars=max_chars) + "\n")

    def waiting() -> None:
        click.echo(
            f"waiting for {topic}: the worker creates it when it routes the first notification "
            "of that Intercom topic; Ctrl-C stops",
            err=True,
        )

    def ready(chosen: list[int]) -> None:
        start = "the beginning" if from_beginning else "the end"
        click.echo(
            f"following {topic} (partitions {_ranges(chosen)}) from {start}; Ctrl-C stops",
            err=True,
        )

    try:
        result = _run(
            settings,
            tail(
                KafkaConnection.from_settings(settings.kafka).with_bootstrap(bootstrap),
                options,
                on_record=show,
                on_ready=ready,
                on_waiting=waiting,
                wait_seconds=connect_timeout,
            ),
        )
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    reason = "--max reached" if result.stopped_by == "max" else "--timeout: idle"
    click.echo(f"stopped ({reason}) after {result.records} record(s)", err=True)


def _ranges(numbers: list[int]) -> str:
    if numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 1:
        return f"{numbers[0]}-{numbers[-1]}"
    return ",".join(str(n) for n in numbers)


# -- replay -------------------------------------------------------------------------------


class _TimeParam(click.ParamType):
    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_time(str(value))
        except ValueError:
            self.fail(f"{value!r} is neither ISO 8601 nor a Unix time", param, ctx)


@click.command("replay")
@click.argument("dlq_topic")
@click.option(
    "--to",
    "target",
    metavar="TOPIC",
    default=None,
    help="Move to TOPIC instead of each record's hookstream-dlq-source-topic.",
)
@click.option(
    "--reason",
    "reasons",
    multiple=True,
    metavar="TEXT",
    help="Only records whose hookstream-dlq-reason contains TEXT (repeatable: any of them).",
)
@click.option(
    "--exact-reason", is_flag=True, help="--reason must equal the header, not occur in it."
)
@click.option(
    "--since",
    type=_TimeParam(),
    default=None,
    help="Only records whose timestamp (when dead-lettered) is at or after TIME: ISO 8601 "
    "(UTC unless it says otherwise) or Unix seconds (or milliseconds).",
)
@click.option(
    "--until",
    type=_TimeParam(),
    default=None,
    help="Only records whose timestamp is before TIME (same forms as --since).",
)
@click.option(
    "--key", "keys", multiple=True, metavar="KEY", help="Only records with this key (repeatable)."
)
@click.option(
    "--dry-run", is_flag=True, help="Show what would move; move nothing and commit nothing."
)
@click.option(
    "--group",
    default=None,
    metavar="GROUP",
    help="Consumer group that remembers what was moved.  [default: hookstream-replay.DLQ_TOPIC]",
)
@click.option("-v", "--verbose", is_flag=True, help="Print each record in full, as tail does.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the summary (and moved records) as JSON."
)
@bootstrap_option
@_connect_timeout_option
def replay_command(  # click passes the options by name
    *,
    dlq_topic: str,
    target: str | None,
    reasons: tuple[str, ...],
    exact_reason: bool,
    since: int | None,
    until: int | None,
    keys: tuple[str, ...],
    dry_run: bool,
    group: str | None,
    verbose: bool,
    as_json: bool,
    bootstrap: str | None,
    connect_timeout: float,
) -> None:
    """Move records from the dead-letter topic DLQ_TOPIC back to their source topic (header
    hookstream-dlq-source-topic, or --to), optionally only those matching --reason, --since,
    --until and --key (all given filters must match).

    A moved record is the original again: same key, value and headers, without the
    hookstream-dlq-* headers; produced with acks=all and idempotence. The dead-letter topic
    is not changed. What was moved is remembered in the consumer group
    hookstream-replay.DLQ_TOPIC (committed only after the broker acknowledged the records),
    so running the same replay twice moves nothing new, and records a filter skipped stay
    available to a later replay. Use a new --group to move records again.

    \b
    hookstream replay intercom.notifications.dlq --dry-run
    hookstream replay intercom.notifications.dlq --reason unparseable --since 2024-05-01T00:00
    hookstream replay intercom.data-events.dlq --key user-42 --to intercom.data-events
    """
    settings = _settings()
    bootstrap = bootstrap or settings.kafka.bootstrap_servers
    record_filter = ReplayFilter(
        reasons=reasons, exact_reason=exact_reason, since_ms=since, until_ms=until, keys=keys
    )
    moved: list[dict[str, Any]] = []

    def on_move(record: ConsumerRecord[bytes, bytes], destination: str) -> None:
        if as_json:
            moved.append(_moved_entry(record, destination))
            return
        click.echo(_moved_line(record, destination, dry_run=dry_run))
        if verbose:
            click.echo(render.format_record(record, max_chars=render.DEFAULT_MAX_CHARS) + "\n")

    summary = _run(
        settings,
        replay(
            KafkaConnection.from_settings(settings.kafka).with_bootstrap(bootstrap),
            dlq_topic,
            record_filter=record_filter,
            target=target,
            group=group or default_group(dlq_topic),
            dry_run=dry_run,
            wait_seconds=connect_timeout,
            max_request_size=settings.topics.max_body_bytes + RECORD_OVERHEAD_BYTES,
            on_move=on_move,
        ),
    )
    if as_json:
        click.echo(json.dumps({**summary.as_dict(), "records": moved}, indent=2))
    else:
        click.echo(_summary_text(summary))


def _moved_entry(record: ConsumerRecord[bytes, bytes], destination: str) -> dict[str, Any]:
    return {
        "partition": record.partition,
        "offset": record.offset,
        "key": None if record.key is None else record.key.decode(errors="backslashreplace"),
        "reason": decode_headers(record.headers).get(HEADER_DLQ_REASON),
        "to": destination,
    }


def _moved_line(record: ConsumerRecord[bytes, bytes], destination: str, *, dry_run: bool) -> str:
    entry = _moved_entry(record, destination)
    verb = "would move" if dry_run else "moved"
    return (
        f"{verb}  {record.topic}[{record.partition}]@{record.offset} -> {destination}  "
        f"key={entry['key']}  reason={entry['reason']}  {render.iso_ms(record.timestamp)}"
    )


def _summary_text(summary: ReplaySummary) -> str:
    verb = "would move" if summary.dry_run else "moved"
    targets = ", ".join(f"{topic} {n}" for topic, n in sorted(summary.moved.items()))
    lines = [
        f"{summary.dlq_topic} (group {summary.group}): scanned {summary.scanned}, "
        f"{verb} {summary.total_moved}{f' ({targets})' if targets else ''}, "
        f"already replayed {summary.already_replayed}, filtered out {summary.filtered_out}",
    ]
    if summary.resumed_after:
        lines.append(
            f"  resumed after {summary.resumed_after} offset(s) settled by earlier replays"
        )
    lines += [f"  left, {reason}: {n}" for reason, n in sorted(summary.left.items())]
    lines += [f"  note: {note}" for note in summary.notes]
    if summary.dry_run:
        lines.append("dry run: nothing was moved and nothing committed")
    return "\n".join(lines)
