"""Both overlays render with kustomize, and every rendered manifest validates offline: the
Kubernetes kinds with `kubernetes-validate --strict`, the CRD kinds (Strimzi, KEDA,
Prometheus Operator) against their published schemas kept in k8s/schemas."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs; used for validate() only
import pytest
import yaml

from tests.deploy._manifests import SCHEMAS, Doc, Rendered, run, tool

# apiVersion/kind -> the vendored schema (k8s/schemas/README.md says where each comes from).
CRD_SCHEMAS = {
    ("kafka.strimzi.io/v1", "KafkaTopic"): "kafka.strimzi.io/kafkatopic_v1.json",
    ("kafka.strimzi.io/v1", "KafkaUser"): "kafka.strimzi.io/kafkauser_v1.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh/scaledobject_v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda.sh/triggerauthentication_v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com/servicemonitor_v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com/prometheusrule_v1.json",
}


# The built-in API groups kubernetes-validate has schemas for, as used here.
KUBERNETES_API_VERSIONS = {"v1", "apps/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1"}


def _is_crd(doc: Doc) -> bool:
    return (doc["apiVersion"], doc["kind"]) in CRD_SCHEMAS


def _kubernetes_validate(docs: list[Doc], path: Path) -> tuple[int, str]:
    path.write_text(yaml.safe_dump_all(docs))
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", path)
    return result.returncode, result.stdout + result.stderr


def _crd_errors(doc: Doc) -> list[str]:
    schema = json.loads((SCHEMAS / CRD_SCHEMAS[doc["apiVersion"], doc["kind"]]).read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{doc['kind']}/{doc['metadata']['name']}: {'/'.join(map(str, error.path))}: "
        f"{error.message}"
        for error in validator.iter_errors(doc)
    ]


def test_every_rendered_kind_is_a_kubernetes_kind_or_a_vendored_crd(rendered: Rendered) -> None:
    # kubernetes-validate only warns on a kind it has no schema for, so nothing else may appear.
    kinds = {(doc["apiVersion"], doc["kind"]) for doc in rendered.docs}
    assert {kind for kind in kinds if kind in CRD_SCHEMAS} == set(CRD_SCHEMAS)
    core_api_versions = {
        api_version for api_version, kind in kinds if (api_version, kind) not in CRD_SCHEMAS
    }
    assert core_api_versions <= KUBERNETES_API_VERSIONS


def test_kubernetes_kinds_pass_strict_schema_validation(rendered: Rendered, tmp_path: Path) -> None:
    core = [doc for doc in rendered.docs if not _is_crd(doc)]
    assert len(core) > 15
    returncode, output = _kubernetes_validate(core, tmp_path / "core.yaml")
    assert returncode == 0, output


def test_strict_validation_refuses_an_unknown_field(prod: Rendered, tmp_path: Path) -> None:
    # The control for the check above: the validator does reject what it must.
    statefulset = copy.deepcopy(prod.one("StatefulSet", "hookstream-ingest"))
    statefulset["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    returncode, output = _kubernetes_validate([statefulset], tmp_path / "bad.yaml")
    assert returncode != 0
    assert "readinessprobe" in output


def test_crd_instances_validate_against_their_published_schemas(rendered: Rendered) -> None:
    crds = [doc for doc in rendered.docs if _is_crd(doc)]
    assert len(crds) > 50
    errors = [error for doc in crds for error in _crd_errors(doc)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    ("kind", "name", "breakage"),
    [
        ("KafkaTopic", "intercom.notifications", {"spec": {"partitions": 0}}),
        ("KafkaUser", "hookstream-worker", {"spec": {"authentication": {"type": "scram"}}}),
        ("TriggerAuthentication", "hookstream-sink-kafka", {"spec": {"env": [{"name": "x"}]}}),
        ("ScaledObject", "hookstream-worker", {"spec": {"maxReplicas": 12}}),
        ("ServiceMonitor", "hookstream", {"spec": {"endpoints": [{"scheme": "ftp"}]}}),
        ("PrometheusRule", "hookstream", {"spec": {"groups": [{"rules": [{"alert": "x"}]}]}}),
    ],
)
def test_crd_validation_refuses_a_broken_instance(
    prod: Rendered, kind: str, name: str, breakage: dict[str, Any]
) -> None:
    doc = copy.deepcopy(prod.one(kind, name))
    doc["spec"].update(breakage["spec"])
    assert _crd_errors(doc)


def test_vendored_schemas_are_valid_json_schemas_and_documented() -> None:
    readme = (SCHEMAS / "README.md").read_text()
    for relative in CRD_SCHEMAS.values():
        schema = json.loads((SCHEMAS / relative).read_text())
        # Formats are not checked: the Prometheus Operator's patterns are Go (RE2) regular
        # expressions, some with inline flags Python's `re` refuses (`^(?i)(abort|warn)?$`).
        jsonschema.Draft7Validator.check_schema(schema, format_checker=None)
        assert relative in readme, f"{relative} needs its source recorded in the README"
