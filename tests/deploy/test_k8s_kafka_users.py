"""Each service connects as its own Strimzi KafkaUser, whose ACLs are exactly what
`hookstream acls --format strimzi` prints for the overlay's settings; its Secret and the
cluster CA are mounted where the settings look, and the lag scalers authenticate with the
same Secrets (KEDA TriggerAuthentication)."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from hookstream.ops.acls import acls_command
from tests.deploy._manifests import (
    Rendered,
    container_env,
    main_container,
    mounted_secret_sources,
    pod_spec,
)


def _acls_output(rendered: Rendered, cluster: str) -> dict[str, dict[str, object]]:
    env = dict(rendered.hookstream_config())
    env |= {"KAFKA_SASL_USERNAME": "any", "KAFKA_SASL_PASSWORD": "any"}  # not in the ACLs
    result = CliRunner().invoke(
        acls_command, ["--format", "strimzi", "--strimzi-cluster", cluster], env=env
    )
    assert result.exit_code == 0, result.output
    return {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(result.output)}


def _cluster(rendered: Rendered) -> str:
    (cluster,) = {
        doc["metadata"]["labels"]["strimzi.io/cluster"] for doc in rendered.of_kind("KafkaTopic")
    }
    return str(cluster)


def test_kafka_users_are_what_hookstream_acls_prints_for_the_overlays_settings(
    rendered: Rendered,
) -> None:
    printed = _acls_output(rendered, _cluster(rendered))
    users = {doc["metadata"]["name"]: doc for doc in rendered.of_kind("KafkaUser")}
    assert set(users) == set(printed)
    for name, user in users.items():
        assert user["spec"] == printed[name]["spec"], name
        labels = user["metadata"]["labels"]
        assert (
            labels["strimzi.io/cluster"]
            == printed[name]["metadata"]["labels"]["strimzi.io/cluster"]
        )
    granted = {op for u in users.values() for a in u["spec"]["authorization"]["acls"] for op in
               a["operations"]}  # fmt: skip
    assert "Create" not in granted, "the topics are Strimzi's: nobody creates one"
    assert rendered.hookstream_config()["HOOKSTREAM_CREATE_TOPICS"] == "false"


@pytest.mark.parametrize("component", ["ingest", "worker", "sink"])
def test_each_service_mounts_its_users_secret_and_the_cluster_ca(
    rendered: Rendered, component: str
) -> None:
    workload = rendered.workload(component)
    container = main_container(workload)
    env = container_env(rendered, container)
    user = f"hookstream-{component}"
    assert env["KAFKA_SASL_USERNAME"] == user
    assert rendered.one("KafkaUser", user)["spec"]["authentication"]["type"] == "scram-sha-512"
    assert mounted_secret_sources(workload, container)["KAFKA_SASL_PASSWORD"] == (
        user,
        "password",
    )
    cluster = _cluster(rendered)
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == f"{cluster}-kafka-bootstrap.kafka.svc:9093"
    volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
    ca_mounts = [
        mount
        for mount in container["volumeMounts"]
        if volumes.get(mount["name"], {}).get("secret", {}).get("secretName")
        == f"{cluster}-cluster-ca-cert"
    ]
    assert [f"{m['mountPath']}/ca.crt" for m in ca_mounts] == [env["KAFKA_SSL_CA_FILE"]]


@pytest.mark.parametrize("component", ["worker", "sink"])
def test_lag_scalers_authenticate_as_the_service_with_its_secrets(
    rendered: Rendered, component: str
) -> None:
    (trigger,) = rendered.one("ScaledObject", f"hookstream-{component}")["spec"]["triggers"]
    assert trigger["metadata"]["sasl"] == "scram_sha512"
    assert trigger["metadata"]["tls"] == "enable"
    auth = rendered.one("TriggerAuthentication", trigger["authenticationRef"]["name"])["spec"]
    refs = {ref["parameter"]: (ref["name"], ref["key"]) for ref in auth["secretTargetRef"]}
    assert refs == {
        "ca": (f"{_cluster(rendered)}-cluster-ca-cert", "ca.crt"),
        "password": (f"hookstream-{component}", "password"),
    }
    (username,) = auth["env"]
    assert username["parameter"] == "username"
    container = main_container(rendered.workload(component))
    assert username["containerName"] == container["name"]
    assert container_env(rendered, container)[username["name"]] == f"hookstream-{component}"
