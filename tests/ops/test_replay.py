"""`hookstream replay` against the real broker: dead letters back to their source topic."""

from __future__ import annotations

import json

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord

from tests.ops.seed_dlq import seed
from tests.ops.support import OpsEnv, Out, produce
from tests.support.kafka import create_topics, read_topic, unique_name

pytestmark = pytest.mark.integration

DAY_MS = 24 * 3600 * 1000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _dead_letter(
    env: OpsEnv,
    n: int,
    reason: str,
    *,
    source: str | None = None,
    timestamp_ms: int | None = None,
    partition: int = 0,
) -> Out:
    """A dead letter as the worker writes it: the original key, value and headers, plus the
    hookstream-dlq-* headers."""
    original = [
        ("intercom-topic", b"conversation.user.created"),
        ("intercom-notification-id", f"notif_{n}".encode()),
    ]
    dlq = [
        ("hookstream-dlq-reason", reason.encode()),
        ("hookstream-dlq-source-partition", b"0"),
        ("hookstream-dlq-source-offset", str(100 + n).encode()),
    ]
    if source is not None:
        dlq.append(("hookstream-dlq-source-topic", source.encode()))
    return Out(
        key=f"notif_{n}".encode(),
        value=json.dumps({"id": f"notif_{n}"}).encode(),
        headers=original + dlq,
        timestamp_ms=timestamp_ms,
        partition=partition,
    )


async def _setup(env: OpsEnv, records: list[Out]) -> None:
    await create_topics(env.bootstrap, [env.raw_topic, env.dlq_topic], partitions=2)
    await produce(env.bootstrap, env.dlq_topic, records)


async def _moved(env: OpsEnv, topic: str | None = None) -> list[ConsumerRecord[bytes, bytes]]:
    return await read_topic(env.bootstrap, topic or env.raw_topic, wait_seconds=15)


def _keys(records: list[ConsumerRecord[bytes, bytes]]) -> list[str]:
    return sorted(r.key.decode() for r in records if r.key is not None)


async def test_dry_run_shows_what_would_move_and_moves_nothing(kafka_bootstrap: str) -> None:
    env = OpsEnv(kafka_bootstrap)
    await _setup(env, [_dead_letter(env, n, "unparseable", source=env.raw_topic) for n in range(3)])

    dry = await env.cli("replay", env.dlq_topic, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.count(f"would move  {env.dlq_topic}[0]@") == 3
    assert "would move 3" in dry.stdout
    assert "dry run: nothing was moved and nothing committed" in dry.stdout
    assert await _moved(env) == []

    real = await env.cli("replay", env.dlq_topic)  # the dry run committed nothing either
    assert real.exit_code == 0, real.output
    assert "moved 3" in real.stdout
    assert _keys(await _moved(env)) == ["notif_0", "notif_1", "notif_2"]


async def test_replay_moves_only_the_filtered_ones_stripped_and_never_twice(
    kafka_bootstrap: str,
) -> None:
    env = OpsEnv(kafka_bootstrap)
    # One partition, a filtered-out record first: the group's offset cannot pass it, so the
    # moved ones are remembered in the commit's metadata (`hookstream.ops.ledger`).
    reasons = ["route-failed", "unparseable", "unparseable", "too-large", "unparseable"]
    await _setup(
        env,
        [_dead_letter(env, n, reason, source=env.raw_topic) for n, reason in enumerate(reasons)],
    )

    first = await env.cli("replay", env.dlq_topic, "--reason", "unparse", "--json")
    again = await env.cli("replay", env.dlq_topic, "--reason", "unparse", "--json")

    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert (summary["moved"], summary["filtered_out"], summary["scanned"]) == (3, 2, 5)
    assert summary["group"] == f"hookstream-replay.{env.dlq_topic}"
    moved = await _moved(env)
    assert _keys(moved) == ["notif_1", "notif_2", "notif_4"]
    for record in moved:  # the original again: key, value, headers; no hookstream-dlq-*
        n = record.key.decode().removeprefix("notif_") if record.key else ""
        assert record.value == json.dumps({"id": f"notif_{n}"}).encode()
        assert list(record.headers) == [
            ("intercom-topic", b"conversation.user.created"),
            ("intercom-notification-id", f"notif_{n}".encode()),
        ]
    second = json.loads(again.stdout)
    assert (second["moved"], second["already_replayed"], second["filtered_out"]) == (0, 3, 2)
    assert len(await _moved(env)) == 3

    # What the filter left behind is still there for a later, broader replay.
    rest = await env.cli("replay", env.dlq_topic)
    assert rest.exit_code == 0, rest.output
    assert "moved 2" in rest.stdout
    assert _keys(await _moved(env)) == [f"notif_{n}" for n in range(5)]


async def test_time_and_key_filters_select_by_record_timestamp_and_key(
    kafka_bootstrap: str,
) -> None:
    env = OpsEnv(kafka_bootstrap)
    await _setup(
        env,
        [
            _dead_letter(
                env,
                n,
                "unparseable",
                source=env.raw_topic,
                timestamp_ms=T0 + n * DAY_MS,
                partition=n % 2,
            )
            for n in range(5)
        ],
    )

    window = await env.cli(
        "replay",
        env.dlq_topic,
        "--since",
        "2026-01-02T00:00:00Z",
        "--until",
        str((T0 + 4 * DAY_MS) // 1000),  # Unix seconds; the end is exclusive
        "--dry-run",
        "--json",
    )
    by_key = await env.cli("replay", env.dlq_topic, "--key", "notif_4", "--key", "notif_0")

    assert window.exit_code == 0, window.output
    assert sorted(r["key"] for r in json.loads(window.stdout)["records"]) == [
        "notif_1",
        "notif_2",
        "notif_3",
    ]
    assert by_key.exit_code == 0, by_key.output
    assert _keys(await _moved(env)) == ["notif_0", "notif_4"]


async def test_to_overrides_the_source_and_a_record_without_one_stays(
    kafka_bootstrap: str,
) -> None:
    env = OpsEnv(kafka_bootstrap)
    other = f"{env.prefix}.elsewhere"
    await create_topics(kafka_bootstrap, [other], partitions=1)
    await _setup(
        env,
        [
            _dead_letter(env, 0, "unparseable", source=env.raw_topic),
            _dead_letter(env, 1, "unparseable", source=None),
        ],
    )

    plain = await env.cli("replay", env.dlq_topic)
    assert plain.exit_code == 0, plain.output
    assert "moved 1" in plain.stdout
    assert "left, no hookstream-dlq-source-topic header (use --to): 1" in plain.stdout

    redirected = await env.cli("replay", env.dlq_topic, "--to", other)
    assert redirected.exit_code == 0, redirected.output
    assert "moved 1" in redirected.stdout
    assert _keys(await _moved(env)) == ["notif_0"]
    assert _keys(await _moved(env, other)) == ["notif_1"]


async def test_replay_of_a_missing_dead_letter_topic_says_so(kafka_bootstrap: str) -> None:
    env = OpsEnv(kafka_bootstrap)

    result = await env.cli("replay", env.dlq_topic)

    assert result.exit_code == 1
    assert f"Error: dead-letter topic '{env.dlq_topic}' does not exist" in result.stderr


async def test_transaction_markers_in_the_dead_letter_topic_do_not_hold_the_group_back(
    kafka_bootstrap: str,
) -> None:
    # The worker dead-letters inside transactions: the topic holds commit markers between
    # records. A filtered replay, then a full one, must leave the group's offset at the end.
    env = OpsEnv(kafka_bootstrap)
    await create_topics(kafka_bootstrap, [env.raw_topic, env.dlq_topic], partitions=1)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=unique_name("ops-replay-tx")
    )
    await producer.start()
    try:
        for n in range(6):
            async with producer.transaction():
                record = _dead_letter(env, n, "odd" if n % 2 else "even", source=env.raw_topic)
                await producer.send(
                    env.dlq_topic, record.value, key=record.key, headers=record.headers
                )
    finally:
        await producer.stop()

    even = json.loads((await env.cli("replay", env.dlq_topic, "--reason", "even", "--json")).stdout)
    rest = json.loads((await env.cli("replay", env.dlq_topic, "--json")).stdout)
    again = json.loads((await env.cli("replay", env.dlq_topic, "--json")).stdout)

    assert (even["moved"], rest["moved"], again["moved"]) == (3, 3, 0)
    assert rest["already_replayed"] == 2  # notif_2 and notif_4 lie above the first hole
    assert (again["scanned"], again["resumed_after"]) == (0, 12)  # 6 records, 6 markers
    assert _keys(await _moved(env)) == [f"notif_{n}" for n in range(6)]


async def test_a_filter_too_scattered_to_remember_stops_and_a_broad_replay_finishes(
    kafka_bootstrap: str,
) -> None:
    # Every third dead letter is `route-failed`, the rest `unparseable`: replaying only the
    # latter leaves a hole every third record, more than the group's commit can remember.
    env = OpsEnv(kafka_bootstrap)
    await seed(kafka_bootstrap, env.dlq_topic, env.raw_topic, 3000, 1)

    filtered = json.loads(
        (await env.cli("replay", env.dlq_topic, "--reason", "unparseable", "--json")).stdout
    )
    stuck = json.loads(
        (await env.cli("replay", env.dlq_topic, "--reason", "unparseable", "--json")).stdout
    )
    broad = json.loads((await env.cli("replay", env.dlq_topic, "--json")).stdout)

    assert 1000 < filtered["moved"] < 2000
    assert "stopped at offset" in filtered["notes"][0]
    assert stuck["moved"] == 0
    assert broad["notes"] == []
    assert broad["moved"] == 3000 - filtered["moved"]
    keys = [r.key for r in await read_topic(kafka_bootstrap, env.raw_topic, expect=3000)]
    assert len(keys) == len(set(keys)) == 3000
