"""`hookstream contract`: the AsyncAPI document is valid for the official AsyncAPI parser,
follows the routes file, and names exactly the topics a pipeline run creates (partitions and
cleanup policy included), whose records carry the headers and payloads it describes; the
schemas command writes every JSON Schema."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from click.testing import CliRunner

from hookstream.cli import main
from hookstream.core.contract import (
    HEADER_RECEIVED_AT,
    HEADER_TOPIC,
    decode_headers,
    encode_headers,
)
from hookstream.core.schemas import schema_documents
from hookstream.ops.asyncapi import channel_topics
from tests.streams.support import Raw, WorkerConfig, produce, running_workers
from tests.support.ingest import (
    EXAMPLES,
    ingest_client,
    ingest_settings,
    notification,
    signed_headers,
)
from tests.support.kafka import read_topic, unique_name

VALIDATOR = Path(__file__).parent / "asyncapi_validate.cjs"
NODE_MODULES = Path(sys.prefix) / "node" / "node_modules"
BROKEN = b"broken-on-purpose"
TOKEN = "contract-test-token-0123456789"
ROUTES = """\
routes:
  - match: "conversation.*"
    to: ["{name}.support", "{{default}}"]
  - match: "contact.*"
    to: ["{name}.crm.{{topic}}"]
  - match: "company.*"
    workspace: "abc*"
    to: ["{name}.ws.{{workspace}}.{{topic}}"]
  - match: "ping"
    drop: true
unmatched: route
"""


def _env(name: str, routes_file: Path, partitions: int = 2) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": "localhost:9092",
        "HOOKSTREAM_RAW_TOPIC": f"{name}.raw",
        "HOOKSTREAM_DLQ_TOPIC": f"{name}.dlq",
        "HOOKSTREAM_DATA_EVENTS_TOPIC": f"{name}.events",
        "HOOKSTREAM_DATA_EVENTS_DLQ_TOPIC": f"{name}.events.dlq",
        "HOOKSTREAM_ROUTE_PREFIX": f"{name}.routed.",
        "HOOKSTREAM_WORKER_ID": name,
        "HOOKSTREAM_TOPIC_PARTITIONS": str(partitions),
        "HOOKSTREAM_TOPIC_REPLICATION": "1",
        "HOOKSTREAM_ROUTES_FILE": str(routes_file),
    }


def _document(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(main, ["contract", "asyncapi", *args], env=env)
    assert result.exit_code == 0, result.output
    return yaml.safe_load(result.stdout)


def _routes(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES.format(name=name))
    return path


def test_the_document_follows_the_settings_and_the_routes_file(tmp_path: Path) -> None:
    name = unique_name("contract")
    document = _document(_env(name, _routes(tmp_path, name), partitions=5))
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {
        f"{name}.raw",
        f"{name}.dlq",
        f"{name}.events",
        f"{name}.events.dlq",
        f"{name}.support",  # a rule's literal destination
        f"{name}.routed.{{intercomTopic}}",  # {default}, and the unmatched topics
        f"{name}.crm.{{intercomTopic}}",  # a rule's {topic}
        f"{name}.ws.{{workspace}}.{{intercomTopic}}",  # a workspace rule's {workspace}
        f"{name}-dedup-changelog",
    }
    bindings = {c["address"]: c["bindings"]["kafka"] for c in document["channels"].values()}
    assert {binding["partitions"] for binding in bindings.values()} == {5}
    assert bindings[f"{name}-dedup-changelog"]["topicConfiguration"]["cleanup.policy"] == [
        "compact",
        "delete",
    ]
    sends = {
        (op["tags"][0]["name"], op["action"], op["channel"]["$ref"].rsplit("/", 1)[1])
        for op in document["operations"].values()
    }
    assert ("ingest", "send", "raw") in sends
    assert ("worker", "receive", "raw") in sends
    assert ("sink", "receive", "data-events") in sends
    assert ("sink", "send", "data-events-dlq") in sends
    routed_sends = {c for service, action, c in sends if service == "worker" and action == "send"}
    assert {c for c in document["channels"] if c.startswith("routed-")} < routed_sends
    assert _document(_env(name, _routes(tmp_path, name)), "--json")["asyncapi"] == "3.0.0"


def test_the_official_asyncapi_parser_accepts_the_document_and_refuses_a_broken_one(
    tmp_path: Path,
) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the AsyncAPI parser is an npm package")
    if not (NODE_MODULES / "@asyncapi" / "parser").is_dir():
        pytest.fail(f"@asyncapi/parser is not in {NODE_MODULES}: run scripts/install-deploy-tools")
    name = unique_name("contract")
    good = tmp_path / "asyncapi.yaml"
    result = CliRunner().invoke(
        main, ["contract", "asyncapi", "-o", str(good)], env=_env(name, _routes(tmp_path, name))
    )
    assert result.exit_code == 0, result.output
    broken = yaml.safe_load(good.read_text())
    broken["channels"]["raw"]["bindings"]["kafka"]["partitions"] = "six"
    del broken["components"]["messages"]["dataEvent"]  # a dangling $ref
    bad = tmp_path / "broken.yaml"
    bad.write_text(yaml.safe_dump(broken))
    run = subprocess.run(
        [node, str(VALIDATOR), str(good), str(bad)],
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    results = [json.loads(line) for line in run.stdout.splitlines()]
    errors = {r["file"]: [d for d in r["diagnostics"] if d["severity"] == 0] for r in results}
    assert errors[str(good)] == []
    assert errors[str(bad)], "the parser must refuse a broken document"


def test_the_schemas_command_writes_every_json_schema(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["contract", "schemas", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for name, document in schema_documents().items():
        written = json.loads((tmp_path / "out" / name).read_text())
        assert written == document
        jsonschema.Draft202012Validator.check_schema(written)


# -- against a pipeline run ---------------------------------------------------------------


@pytest.mark.integration
async def test_the_topics_a_pipeline_run_creates_are_the_documents_channels(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    name = unique_name("contract")
    env = {**_env(name, _routes(tmp_path, name)), "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    document = _document(env)
    config = WorkerConfig(
        bootstrap=kafka_bootstrap,
        data_root=tmp_path,
        partitions=2,
        routes_file=Path(env["HOOKSTREAM_ROUTES_FILE"]),
        name=name,
        extra_env=env,
    )
    settings = ingest_settings(
        kafka_bootstrap,
        tmp_path,
        **{key.lower(): value for key, value in env.items() if key != "HOOKSTREAM_ROUTES_FILE"},
        hookstream_api_token=TOKEN,
    )
    bodies = [
        notification("conversation.user.created"),
        notification("contact.user.created"),
        notification("company.created"),
        (EXAMPLES / "ping.json").read_bytes(),
    ]
    with running_workers(config):
        async with ingest_client(settings) as client:
            for body in bodies:
                answer = await client.post(
                    "/webhooks/intercom", content=body, headers=signed_headers(body)
                )
                assert answer.status_code == 200, answer.text
            event = {"event_name": "did-thing", "created_at": 1_700_000_000, "user_id": "u-1"}
            answer = await client.post(
                "/events", json=[event], headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert answer.status_code == 202, answer.text
        received = encode_headers({HEADER_TOPIC: "contact.created", HEADER_RECEIVED_AT: 1})
        await produce(kafka_bootstrap, f"{name}.raw", [Raw(BROKEN, b"not json", received)])
        for topic in (
            f"{name}.support",
            f"{name}.routed.conversation.user.created",
            f"{name}.crm.contact.user.created",
            f"{name}.ws.abc123.company.created",  # notification() is from workspace abc123
            f"{name}.dlq",
        ):
            assert await read_topic(kafka_bootstrap, topic, expect=1)

    created = await _topics(kafka_bootstrap, name)
    channels = channel_topics(document)
    for topic, (partitions, cleanup) in created.items():
        matching = [c for c in channels if c[1].fullmatch(topic)]
        assert len(matching) == 1, f"{topic} is not exactly one channel: {matching}"
        _channel_id, _pattern, binding = matching[0]
        assert binding["partitions"] == partitions, topic
        assert binding["topicConfiguration"]["cleanup.policy"] == cleanup.split(","), topic
    literal = {binding["topic"] for _id, _p, binding in channels if "topic" in binding}
    assert literal - {f"{name}.events.dlq"} <= set(created)  # the sink did not run
    await _records_match_their_messages(kafka_bootstrap, document, created)


async def _topics(bootstrap: str, name: str) -> dict[str, tuple[int, str]]:
    """The topics of this run (their names start with `name`): partitions, cleanup.policy."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [topic for topic in await admin.list_topics() if topic.startswith(name)]
        described = await admin.describe_topics(names)
        partitions = {t["topic"]: len(t["partitions"]) for t in described}
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in names]
        )
        cleanup: dict[str, str] = {}
        for response in responses:
            for resource in response.to_object()["resources"]:
                for entry in resource["config_entries"]:
                    if entry["config_names"] == "cleanup.policy":
                        cleanup[resource["resource_name"]] = entry["config_value"]
    finally:
        await admin.close()
    return {topic: (partitions[topic], cleanup[topic]) for topic in names}


async def _records_match_their_messages(
    bootstrap: str, document: dict[str, Any], created: dict[str, tuple[int, str]]
) -> None:
    """Every record of the run's topics has the headers and the payload its channel's
    message describes."""
    messages = document["components"]["messages"]
    checked = 0
    for topic in created:
        [channel] = [c for c in document["channels"].values() if _matches(c, topic)]
        [reference] = channel["messages"].values()
        message = messages[reference["$ref"].rsplit("/", 1)[1]]
        records = await asyncio.wait_for(read_topic(bootstrap, topic), 60)
        for record in records:
            if "headers" in message:
                jsonschema.validate(decode_headers(record.headers), message["headers"])
            # The test's own broken raw record is not JSON on purpose (it is dead-lettered).
            if message["contentType"] == "application/json" and record.key != BROKEN:
                jsonschema.validate(orjson.loads(record.value or b""), message["payload"])
            checked += 1
    assert checked >= 7  # 4 routed, 1 dead letter, 1 data event, 4 raw, ...


def _matches(channel: dict[str, Any], topic: str) -> bool:
    return any(
        pattern.fullmatch(topic)
        for _id, pattern, _binding in channel_topics({"channels": {"c": channel}})
    )
