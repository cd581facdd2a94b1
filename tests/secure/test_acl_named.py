"""A principal missing one ACL is named (operation, resource, principal) by every service and
operator command, at start-up, in one line: never a retry loop, a "does not exist" or a
dead letter. Each runs as its own SCRAM user against the session's authorizing broker, with
a setting that points it at a resource its ACLs do not cover."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookstream.devtools.localkafka.security import BrokerSecurity
from hookstream.ops.acls import default_user
from tests.secure.commands import run_as

pytestmark = pytest.mark.integration

CASES = {
    "worker-group": (
        "worker",
        ["worker"],
        {"HOOKSTREAM_WORKER_ID": "unlisted-worker"},
        "Kafka denied User:hookstream-worker Read on group 'unlisted-worker'",
    ),
    "worker-routes-file-destination": (
        "worker",
        ["worker"],
        {"HOOKSTREAM_ROUTES_FILE": "{tmp}/routes.yaml"},
        "Kafka denied User:hookstream-worker Create on topic 'crm.deletions'",
    ),
    "sink-group": (
        "sink",
        ["sink"],
        {"HOOKSTREAM_SINK_ID": "unlisted-sink"},
        "Kafka denied User:hookstream-sink Read on group 'unlisted-sink'",
    ),
    "replay-as-the-ingest": (
        "ingest",
        ["replay", "intercom.notifications.dlq"],
        {},
        "Kafka denied User:hookstream-ingest Read on topic 'intercom.notifications.dlq'",
    ),
    "tail-as-the-sink": (
        "sink",
        ["tail", "intercom.notifications", "--max", "1", "--timeout", "5"],
        {},
        "Kafka denied User:hookstream-sink Read on topic 'intercom.notifications'",
    ),
    "topics-create-as-the-ingest": (
        "ingest",
        ["topics", "create"],
        {"HOOKSTREAM_RAW_TOPIC": "unlisted.raw"},
        "Kafka denied User:hookstream-ingest Create on topic",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_missing_acl_stops_the_command_naming_operation_resource_and_principal(
    scram_broker: tuple[str, BrokerSecurity], tmp_path: Path, case: str
) -> None:
    _, security = scram_broker
    service, args, overrides, expected = CASES[case]
    routes = 'routes: [{match: "contact.*", to: ["crm.deletions"]}]'  # outside the prefix
    (tmp_path / "routes.yaml").write_text(routes)
    overrides = {key: value.format(tmp=tmp_path) for key, value in overrides.items()}
    result = run_as(service, scram_broker, args, tmp_path, **overrides)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert expected in result.stderr, output
    assert "an ACL is missing" in result.stderr
    assert "Traceback" not in output
    assert security.passwords[default_user(service)] not in output
