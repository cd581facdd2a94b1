"""What the deploy tests share: where the files are, the external tools, and reading the
manifests kustomize renders (workloads, their containers, the environment a container gets)."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hookstream.core.settings import Settings, load_settings, setting_fields

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
SCHEMAS = K8S / "schemas"
OVERLAYS = ("dev", "prod")
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
SECRET_NAME = "hookstream-secrets"

Doc = dict[str, Any]


def tool(name: str) -> Path:
    """The executable `name` from this virtualenv (where scripts/install-deploy-tools puts
    hadolint and kustomize), else from PATH. A missing tool fails the test, never skips it."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file():
        return beside_python
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run scripts/install-deploy-tools")
    return Path(found)


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run a tool from the repository root, capturing its output (never raising on failure)."""
    return subprocess.run(
        [str(arg) for arg in args], cwd=REPO, capture_output=True, text=True, check=False
    )


def settings_env_names() -> set[str]:
    """Every environment variable the settings read, plus the secrets directory variable."""
    return {"HOOKSTREAM_SECRETS_DIR", *(variable for variable, _field in setting_fields())}


def settings_from(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a process started with exactly `env` (of hookstream's variables) loads."""
    for name in settings_env_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def secret_setting_names() -> set[str]:
    """The environment variables of the settings that hold secrets (`SecretStr`)."""
    return {
        variable for variable, field in setting_fields() if "SecretStr" in repr(field.annotation)
    }


@dataclass(frozen=True)
class Rendered:
    """The output of `kustomize build` for one overlay."""

    overlay: str
    text: str
    docs: list[Doc]

    def of_kind(self, kind: str) -> list[Doc]:
        return [doc for doc in self.docs if doc["kind"] == kind]

    def one(self, kind: str, name: str) -> Doc:
        found = [doc for doc in self.of_kind(kind) if doc["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name} in {self.overlay}, got {len(found)}"
        return found[0]

    @property
    def namespace(self) -> str:
        (namespace,) = self.of_kind("Namespace")
        return str(namespace["metadata"]["name"])

    def workloads(self) -> list[Doc]:
        return [doc for doc in self.docs if doc["kind"] in WORKLOAD_KINDS]

    def workload(self, component: str) -> Doc:
        found = [doc for doc in self.workloads() if component_of(doc) == component]
        assert len(found) == 1, f"expected one {component} workload in {self.overlay}"
        return found[0]

    def configmap(self, name: str) -> dict[str, str]:
        data = self.one("ConfigMap", name).get("data", {})
        return {str(key): str(value) for key, value in data.items()}

    def hookstream_config(self) -> dict[str, str]:
        """The shared settings ConfigMap (its name carries kustomize's hash suffix)."""
        (config,) = [
            doc
            for doc in self.of_kind("ConfigMap")
            if doc["metadata"]["name"].startswith("hookstream-config-")
        ]
        return {str(key): str(value) for key, value in config["data"].items()}

    def secret_values(self) -> dict[str, str] | None:
        """The decoded values of the rendered `hookstream-secrets`, or None when the overlay
        leaves the Secret to be created out of band."""
        secrets = [
            doc for doc in self.of_kind("Secret") if doc["metadata"]["name"].startswith(SECRET_NAME)
        ]
        if not secrets:
            return None
        (secret,) = secrets
        values = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
        values.update(secret.get("stringData", {}))
        return values

    def topics(self) -> dict[str, Doc]:
        """KafkaTopic resources by the Kafka topic name they manage."""
        return {doc["spec"]["topicName"]: doc for doc in self.of_kind("KafkaTopic")}


def render(overlay: str) -> Rendered:
    """`kustomize build k8s/overlays/<overlay>`, parsed."""
    result = run(tool("kustomize"), "build", K8S / "overlays" / overlay)
    assert result.returncode == 0, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return Rendered(overlay=overlay, text=result.stdout, docs=docs)


def component_of(doc: Doc) -> str:
    return str(doc["metadata"]["labels"]["app.kubernetes.io/component"])


def pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Doc) -> Iterator[Doc]:
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def main_container(workload: Doc) -> Doc:
    container: Doc
    (container,) = pod_spec(workload)["containers"]
    return container


def container_env(rendered: Rendered, container: Doc) -> dict[str, str]:
    """The environment a container starts with: its ConfigMaps (envFrom), then `env`."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, "settings come from ConfigMaps, secrets from files"
        env.update(rendered.configmap(source["configMapRef"]["name"]))
    for variable in container.get("env", []):
        assert "value" in variable, f"{variable['name']} must be a literal or come from a file"
        env[variable["name"]] = str(variable["value"])
    return env


def _secret_sources(volume: Doc) -> list[Doc]:
    """The Secret sources of a volume: its `secret`, or the `secret`s its `projected` holds
    (each with `secretName` or `name`, `items` and `optional`)."""
    if "secret" in volume:
        return [volume["secret"]]
    sources = volume.get("projected", {}).get("sources", [])
    return [source["secret"] for source in sources if "secret" in source]


def _secrets_dir_volume(workload: Doc, container: Doc) -> tuple[str, Doc] | None:
    """(mount path, volume) of the projected volume of settings files (the secrets directory:
    `hookstream-secrets` and the KafkaUser's Secret)."""
    volumes = {volume["name"]: volume for volume in pod_spec(workload).get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})
        if "projected" in volume:
            return str(mount["mountPath"]), volume
    return None


def mounted_secret_sources(
    workload: Doc, container: Doc, *, optional: bool | None = None
) -> dict[str, tuple[str, str]]:
    """For the secrets directory: file name -> (Secret name, key); only the optional items,
    or only the required ones, when `optional` says so."""
    found = _secrets_dir_volume(workload, container)
    if found is None:
        return {}
    return {
        item["path"]: (secret.get("secretName") or secret["name"], item["key"])
        for secret in _secret_sources(found[1])
        if optional is None or bool(secret.get("optional", False)) == optional
        for item in secret["items"]
    }


def mounted_secret_items(
    workload: Doc, container: Doc, *, optional: bool | None = None
) -> dict[str, str]:
    """For `hookstream-secrets` in the secrets directory: file name -> Secret key (only the
    optional items, or only the required ones, when `optional` says so)."""
    return {
        path: key
        for path, (secret, key) in mounted_secret_sources(
            workload, container, optional=optional
        ).items()
        if secret.startswith(SECRET_NAME)
    }


def secrets_dir_mount(workload: Doc, container: Doc) -> str | None:
    found = _secrets_dir_volume(workload, container)
    return None if found is None else found[0]


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a Kubernetes label selector (matchLabels, matchExpressions) selects `labels`."""
    if selector is None:
        return False
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
