"""`hookstream acls`: each service's ACLs follow the settings, in both output formats."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from hookstream.ops.acls import acls_command


def test_kafka_acls_give_the_ingest_write_on_its_two_topics_only() -> None:
    env = {"HOOKSTREAM_RAW_TOPIC": "acme.raw", "KAFKA_BOOTSTRAP_SERVERS": "k:9093"}
    result = CliRunner().invoke(acls_command, [], env=env)
    assert result.exit_code == 0, result.output
    ingest = [
        line
        for line in result.output.splitlines()
        if "'User:hookstream-ingest'" in line and not line.startswith("#")
    ]
    assert len(ingest) == 3
    assert "--operation Write --operation Describe --topic 'acme.raw'" in ingest[0]
    assert (
        "--operation Write --operation Describe --transactional-id 'hookstream-ingest-'"
        " --resource-pattern-type prefixed" in ingest[2]
    )
    assert all("--bootstrap-server k:9093" in line for line in ingest)
    assert not any("--operation Read" in line for line in ingest)


def test_strimzi_users_carry_the_worker_transactions_and_group() -> None:
    env = {"HOOKSTREAM_WORKER_ID": "acme-worker"}
    result = CliRunner().invoke(
        acls_command, ["--format", "strimzi", "--user", "sink=acme-sink"], env=env
    )
    assert result.exit_code == 0, result.output
    users = {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(result.output)}
    assert set(users) == {
        "hookstream-ingest",
        "hookstream-worker",
        "acme-sink",
        "hookstream-operator",
    }
    worker_acls = users["hookstream-worker"]["spec"]["authorization"]["acls"]
    resources = {(a["resource"]["type"], a["resource"]["name"]) for a in worker_acls}
    assert ("transactionalId", "acme-worker-") in resources
    assert ("group", "acme-worker") in resources
    assert users["acme-sink"]["spec"]["authentication"] == {"type": "scram-sha-512"}


def test_an_unknown_service_is_refused() -> None:
    result = CliRunner().invoke(acls_command, ["--user", "spooler=x"])
    assert result.exit_code == 2


def test_with_creating_off_no_service_is_granted_create() -> None:
    def operations(env: dict[str, str]) -> set[str]:
        result = CliRunner().invoke(acls_command, ["--format", "strimzi"], env=env)
        assert result.exit_code == 0, result.output
        return {
            operation
            for user in yaml.safe_load_all(result.output)
            for acl in user["spec"]["authorization"]["acls"]
            for operation in acl["operations"]
        }

    assert "Create" in operations({"HOOKSTREAM_CREATE_TOPICS": "true"})
    without = operations({"HOOKSTREAM_CREATE_TOPICS": "false"})
    assert "Create" not in without
    assert {"Read", "Write", "Describe"} <= without
