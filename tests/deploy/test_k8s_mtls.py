"""The mutual-TLS variant (`k8s/components/kafka-mtls`, rendered by the `prod-mtls` overlay):
the users authenticate with certificates, each service and lag scaler presents its user's,
and everything still validates offline and agrees with `hookstream acls`."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]  # no stubs; used for validate() only
import pytest
import yaml
from click.testing import CliRunner

from hookstream.ops.acls import acls_command
from tests.deploy._manifests import (
    SCHEMAS,
    Rendered,
    container_env,
    main_container,
    pod_spec,
    render,
    run,
    settings_from,
    tool,
)

_SCHEMAS = {
    "KafkaUser": "kafka.strimzi.io/kafkauser_v1.json",
    "TriggerAuthentication": "keda.sh/triggerauthentication_v1alpha1.json",
    "ScaledObject": "keda.sh/scaledobject_v1alpha1.json",
}


@pytest.fixture(scope="module")
def mtls() -> Rendered:
    return render("prod-mtls")


def test_the_variant_validates_offline(mtls: Rendered, tmp_path: Path) -> None:
    for kind, relative in _SCHEMAS.items():
        validator = jsonschema.Draft7Validator(json.loads((SCHEMAS / relative).read_text()))
        for doc in mtls.of_kind(kind):
            assert not list(validator.iter_errors(doc)), doc["metadata"]["name"]
    path = tmp_path / "workloads.yaml"
    path.write_text(yaml.safe_dump_all(mtls.workloads()))
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_users_authenticate_by_certificate_with_the_acls_hookstream_prints(mtls: Rendered) -> None:
    env = mtls.hookstream_config()
    args = ["--format", "strimzi", "--strimzi-cluster", "hookstream-kafka"]
    args += ["--strimzi-authentication", "tls"]
    result = CliRunner().invoke(acls_command, args, env=env)
    assert result.exit_code == 0, result.output
    printed = {doc["metadata"]["name"]: doc["spec"] for doc in yaml.safe_load_all(result.output)}
    users = {doc["metadata"]["name"]: doc["spec"] for doc in mtls.of_kind("KafkaUser")}
    assert users == printed
    assert {spec["authentication"]["type"] for spec in users.values()} == {"tls"}


@pytest.mark.parametrize("component", ["ingest", "worker", "sink"])
def test_each_service_presents_its_users_certificate(
    mtls: Rendered, component: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    workload = mtls.workload(component)
    container = main_container(workload)
    env = container_env(mtls, container) | {"HOOKSTREAM_SECRETS_DIR": ""}
    settings = settings_from(env, monkeypatch).kafka
    assert settings.security_protocol == "SSL"
    assert settings.sasl_username is None
    volumes = {volume["name"]: volume for volume in pod_spec(workload)["volumes"]}
    files = {
        f"{mount['mountPath']}/{item['path']}": (volume["secret"]["secretName"], item["key"])
        for mount in container["volumeMounts"]
        if "secret" in (volume := volumes.get(mount["name"], {}))
        for item in volume["secret"]["items"]
    }
    user = f"hookstream-{component}"
    assert files[str(settings.ssl_cert_file)] == (user, "user.crt")
    assert files[str(settings.ssl_key_file)] == (user, "user.key")
    assert files[str(settings.ssl_ca_file)] == ("hookstream-kafka-cluster-ca-cert", "ca.crt")


@pytest.mark.parametrize("component", ["worker", "sink"])
def test_lag_scalers_present_the_same_certificate(mtls: Rendered, component: str) -> None:
    (trigger,) = mtls.one("ScaledObject", f"hookstream-{component}")["spec"]["triggers"]
    assert "sasl" not in trigger["metadata"]
    assert trigger["metadata"]["tls"] == "enable"
    auth = mtls.one("TriggerAuthentication", trigger["authenticationRef"]["name"])["spec"]
    user = f"hookstream-{component}"
    assert {ref["parameter"]: (ref["name"], ref["key"]) for ref in auth["secretTargetRef"]} == {
        "ca": ("hookstream-kafka-cluster-ca-cert", "ca.crt"),
        "cert": (user, "user.crt"),
        "key": (user, "user.key"),
    }
    assert "env" not in auth
