"""docker-compose.yml: valid against the Compose specification's schema (offline, with
check-jsonschema's vendored copy), started in dependency order on health, with durable
volumes where state lives, and an environment each service's settings accept."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from hookstream.core.settings import TopicSettings
from hookstream.devtools.localkafka import KAFKA_VERSION
from tests.deploy._manifests import REPO, run, settings_env_names, settings_from, tool

COMPOSE = REPO / "docker-compose.yml"
SERVICES = ("ingest", "worker", "sink", "sandbox")


def _interpolate(value: str) -> str:
    """Compose's `${VAR:-default}` / `${VAR}` with an empty environment: the defaults."""
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda match: match.group(1) or "", value)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def service_env(name: str) -> dict[str, str]:
    env = compose()["services"][name].get("environment", {})
    return {key: _interpolate(str(value)) for key, value in env.items()}


def _check_jsonschema(path: Path) -> tuple[int, str]:
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", path)
    return result.returncode, result.stdout + result.stderr


def test_compose_file_validates_against_the_compose_specification() -> None:
    returncode, output = _check_jsonschema(COMPOSE)
    assert returncode == 0, output


def test_compose_validation_refuses_an_invalid_file(tmp_path: Path) -> None:
    # The control for the check above.
    broken = compose()
    broken["services"]["worker"]["depends_on"]["kafka"]["condition"] = "service_ready"
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    returncode, output = _check_jsonschema(path)
    assert returncode != 0
    assert "service_ready" in output


def test_kafka_is_the_official_image_in_kraft_mode_at_the_tested_version() -> None:
    kafka = compose()["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "kafka-data" in " ".join(kafka["volumes"])
    assert env["KAFKA_LOG_DIRS"] == kafka["volumes"][0].split(":")[1]
    # One broker: the internal topics cannot ask for more replicas than that.
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 1


def test_every_service_has_a_healthcheck() -> None:
    for name in ("kafka", *SERVICES):
        test = compose()["services"][name]["healthcheck"]["test"]
        assert test[0] == "CMD", name


def test_services_start_once_what_they_need_is_healthy() -> None:
    services = compose()["services"]
    for name in ("ingest", "worker", "sink"):
        depends = services[name]["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy", name
        assert depends["topics"]["condition"] == "service_completed_successfully", name
    assert services["sink"]["depends_on"]["sandbox"]["condition"] == "service_healthy"
    assert services["topics"]["command"] == ["topics", "create"]


def test_state_lives_in_named_volumes() -> None:
    config = compose()
    services = config["services"]
    spool = PurePosixPath(service_env("ingest")["HOOKSTREAM_SPOOL_PATH"])
    volumes = dict(entry.split(":", 1) for entry in services["ingest"]["volumes"])
    assert volumes["ingest-spool"] == str(spool.parent)
    for name in ("worker", "sink"):
        mounts = dict(entry.split(":", 1) for entry in services[name]["volumes"])
        assert str(service_env(name)["HOOKSTREAM_DATA_DIR"]) in mounts.values(), name
    declared = set(config["volumes"])
    used = {
        entry.split(":", 1)[0]
        for service in services.values()
        for entry in service.get("volumes", [])
    }
    assert used <= declared


def test_hookstream_services_share_the_hardened_project_image() -> None:
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert version
    for name in ("topics", *SERVICES):
        service = compose()["services"][name]
        assert service["image"] == f"hookstream:{version.group(1)}", name
        assert service["build"]["dockerfile"] == "Dockerfile", name
        assert service["build"]["args"] == {"HOOKSTREAM_VERSION": version.group(1)}, name
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name


@pytest.mark.parametrize("name", ["topics", "ingest", "worker", "sink", "tools"])
def test_each_service_environment_loads_as_settings(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = service_env(name)
    assert set(env) <= settings_env_names(), set(env) - settings_env_names()
    settings = settings_from(env, monkeypatch)
    assert settings.kafka.bootstrap_servers == "kafka:29092"
    if name == "ingest":
        assert settings.ingest.client_secrets
        assert settings.ingest.host == "0.0.0.0"
        ports = {entry.rsplit(":", 1)[1] for entry in compose()["services"][name]["ports"]}
        assert ports == {str(settings.ingest.port), str(settings.ingest.admin_port)}
    if name in {"ingest", "sink"}:  # the development defaults start, and say so
        assert settings.ingest.allow_dev_secrets is True
    if name == "sink":
        assert settings.sink.intercom_base_url == "http://sandbox:8090"
        assert settings.sink.intercom_access_token is not None


def test_internal_clients_use_the_brokers_internal_listener() -> None:
    env = compose()["services"]["kafka"]["environment"]
    advertised = dict(
        listener.split("://", 1) for listener in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    assert advertised["INTERNAL"] == service_env("worker")["KAFKA_BOOTSTRAP_SERVERS"]
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "INTERNAL"


def test_broker_accepts_the_largest_webhook_body() -> None:
    env = compose()["services"]["kafka"]["environment"]
    max_body = service_env("ingest").get(
        "HOOKSTREAM_MAX_BODY_BYTES", str(TopicSettings.model_fields["max_body_bytes"].default)
    )
    assert int(env["KAFKA_MESSAGE_MAX_BYTES"]) >= int(max_body) + 64 * 1024
