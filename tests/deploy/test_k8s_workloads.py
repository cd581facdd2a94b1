"""What a platform team checks on the rendered workloads: hardening, resources, probes, the
ingest's spool volume and shutdown, images, and that the settings and secrets the pods get
are the ones hookstream reads."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import pytest

from hookstream.ingest.app import secrets_refusal
from tests.deploy._manifests import (
    K8S,
    REPO,
    Doc,
    Rendered,
    component_of,
    container_env,
    containers,
    load_yaml,
    main_container,
    mounted_secret_items,
    mounted_secret_sources,
    pod_spec,
    secret_setting_names,
    secrets_dir_mount,
    selects,
    settings_env_names,
    settings_from,
)

# What uvicorn gives requests in flight after SIGTERM before the ingest drains (ingest/cli.py).
INGEST_GRACEFUL_SHUTDOWN_SECONDS = 20
PREFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def _bytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([KMG]i)?", quantity).groups()  # type: ignore[union-attr]
    return int(number) * PREFIXES.get(unit or "", 1)


def _project_version() -> str:
    match = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert match
    return match.group(1)


def test_every_container_runs_hardened(rendered: Rendered) -> None:
    for workload in rendered.workloads():
        pod = pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] >= 10000
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        for container in containers(workload):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, container["name"]
            assert context["readOnlyRootFilesystem"] is True, container["name"]
            assert context["capabilities"]["drop"] == ["ALL"], container["name"]


def test_every_container_has_cpu_and_memory_requests_and_limits(rendered: Rendered) -> None:
    for workload in rendered.workloads():
        for container in containers(workload):
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), (container["name"], kind)
            assert _bytes(resources["requests"]["memory"]) <= _bytes(resources["limits"]["memory"])


def test_every_writable_path_is_a_volume(rendered: Rendered) -> None:
    # With a read-only root, the spool, the Faust data dir and /tmp must be mounts.
    for workload in rendered.workloads():
        container = main_container(workload)
        env = container_env(rendered, container)
        mounts = [PurePosixPath(mount["mountPath"]) for mount in container["volumeMounts"]]
        needed = [PurePosixPath("/tmp")]  # noqa: S108 - the container's own /tmp, an emptyDir
        if component_of(workload) == "ingest":
            needed.append(PurePosixPath(env["HOOKSTREAM_SPOOL_PATH"]).parent)
        if component_of(workload) in ("worker", "sink"):
            needed.append(PurePosixPath(env["HOOKSTREAM_DATA_DIR"]))
        for path in needed:
            assert any(path == mount or mount in path.parents for mount in mounts), (
                component_of(workload),
                path,
            )


def test_ingest_is_a_statefulset_with_a_persistent_spool_per_replica(rendered: Rendered) -> None:
    ingest = rendered.workload("ingest")
    assert ingest["kind"] == "StatefulSet"
    (claim,) = ingest["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    # A scale-in or a deleted StatefulSet must not delete a volume that may hold a backlog.
    assert ingest["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    container = main_container(ingest)
    env = container_env(rendered, container)
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == claim["metadata"]["name"]]
    assert PurePosixPath(env["HOOKSTREAM_SPOOL_PATH"]).parent == PurePosixPath(mount["mountPath"])
    # Room for a full spool twice over: SQLite's pages, indexes and WAL sit beside the payload.
    capacity = _bytes(claim["spec"]["resources"]["requests"]["storage"])
    assert capacity >= 2 * int(env["HOOKSTREAM_SPOOL_MAX_BYTES"])


def test_ingest_probes_readiness_on_its_admin_port_and_liveness_on_its_webhook_port(
    rendered: Rendered,
) -> None:
    container = main_container(rendered.workload("ingest"))
    env = container_env(rendered, container)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {
        "http": int(env["HOOKSTREAM_INGEST_PORT"]),
        "admin": int(env["HOOKSTREAM_INGEST_ADMIN_PORT"]),
    }
    readiness = container["readinessProbe"]["httpGet"]
    liveness = container["livenessProbe"]["httpGet"]
    assert readiness == {"path": "/readyz?allow_spool=true", "port": "admin"}
    assert liveness == container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert env["HOOKSTREAM_INGEST_HOST"] == "0.0.0.0"


def test_the_ingest_services_expose_the_webhook_port_and_scrape_the_admin_port(
    rendered: Rendered,
) -> None:
    public = rendered.one("Service", "hookstream-ingest")
    assert [port["targetPort"] for port in public["spec"]["ports"]] == ["http"]
    headless = rendered.one("Service", "hookstream-ingest-headless")
    assert [(port["name"], port["targetPort"]) for port in headless["spec"]["ports"]] == [
        ("metrics", "admin")
    ]


def test_the_ingress_routes_only_the_webhook_to_the_webhook_port(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    (ingress,) = rendered.of_kind("Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    paths = [path for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]
    assert [(path["path"], path["pathType"]) for path in paths] == [("/webhooks/intercom", "Exact")]
    backend = paths[0]["backend"]["service"]
    assert backend == {"name": "hookstream-ingest", "port": {"name": "http"}}
    annotations = ingress["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    # nginx refuses what the ingest would refuse: a body over HOOKSTREAM_MAX_BODY_BYTES
    env = container_env(rendered, main_container(rendered.workload("ingest")))
    env.pop("HOOKSTREAM_SECRETS_DIR")  # the pod's; no secret matters here, but SASL_SSL
    env["KAFKA_SASL_PASSWORD"] = "the-kafka-user-password"  # needs a password to validate
    max_body = settings_from(env, monkeypatch).topics.max_body_bytes
    size = annotations[prefix + "proxy-body-size"]  # nginx's k, m, g are 1024-based
    assert _bytes(size[:-1] + size[-1].upper() + "i") == max_body
    # and waits on a pod no longer than Intercom waits for an answer (5 s)
    for timeout in ("proxy-read-timeout", "proxy-send-timeout", "proxy-connect-timeout"):
        assert 0 < int(annotations[prefix + timeout]) <= 5, timeout


def test_ingest_drains_before_it_can_be_killed(rendered: Rendered) -> None:
    ingest = rendered.workload("ingest")
    container = main_container(ingest)
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = int(command[1])
    assert pre_stop > 0
    grace = pod_spec(ingest)["terminationGracePeriodSeconds"]
    # The grace period covers the preStop pause, uvicorn's wait for requests in flight, and the
    # drain of the producer and the spool after it.
    assert grace >= pre_stop + INGEST_GRACEFUL_SHUTDOWN_SECONDS + 20


@pytest.mark.parametrize("component", ["worker", "sink"])
def test_worker_and_sink_probe_their_web_port(rendered: Rendered, component: str) -> None:
    container = main_container(rendered.workload(component))
    env = container_env(rendered, container)
    variable = {"worker": "HOOKSTREAM_WORKER_WEB_PORT", "sink": "HOOKSTREAM_SINK_WEB_PORT"}
    (port,) = container["ports"]
    assert port["containerPort"] == int(env[variable[component]])
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}


def test_services_select_pods_and_name_their_ports(rendered: Rendered) -> None:
    for service in rendered.of_kind("Service"):
        selected = [
            workload
            for workload in rendered.workloads()
            if selects(
                {"matchLabels": service["spec"]["selector"]},
                workload["spec"]["template"]["metadata"]["labels"],
            )
        ]
        assert len(selected) == 1, service["metadata"]["name"]
        port_names = {port["name"] for port in main_container(selected[0])["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, service["metadata"]["name"]


def test_disruption_budgets_and_autoscaler_target_the_workloads(rendered: Rendered) -> None:
    for budget in rendered.of_kind("PodDisruptionBudget"):
        covered = [
            workload
            for workload in rendered.workloads()
            if selects(
                budget["spec"]["selector"], workload["spec"]["template"]["metadata"]["labels"]
            )
        ]
        assert len(covered) == 1, budget["metadata"]["name"]
    components = {component_of(budget) for budget in rendered.of_kind("PodDisruptionBudget")}
    assert {"ingest", "worker", "sink"} <= components
    (autoscaler,) = rendered.of_kind("HorizontalPodAutoscaler")
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("StatefulSet", "hookstream-ingest")
    (metric,) = autoscaler["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert "replicas" not in rendered.workload("ingest")["spec"], "the autoscaler owns it"


def test_images_are_pinned_and_prod_runs_the_project_version(rendered: Rendered) -> None:
    for workload in rendered.workloads():
        for container in containers(workload):
            image = container["image"]
            assert "@sha256:" in image or re.search(r":[\w.-]+$", image), image
            assert not image.endswith(":latest"), image
    if rendered.overlay == "prod":
        image = main_container(rendered.workload("ingest"))["image"]
        assert image.endswith(f":{_project_version()}")
        assert "/" in image, "production pulls from a registry"


def test_every_variable_given_to_a_container_is_a_setting(rendered: Rendered) -> None:
    known = settings_env_names()
    for workload in rendered.workloads():
        for container in containers(workload):
            unknown = set(container_env(rendered, container)) - known
            assert not unknown, (container["name"], unknown)
            assert not set(mounted_secret_sources(workload, container)) - known


def test_secrets_are_mounted_as_files_the_settings_read(rendered: Rendered) -> None:
    secret_names = secret_setting_names()
    mounted = {
        component_of(workload): set(mounted_secret_sources(workload, main_container(workload)))
        for workload in rendered.workloads()
    }
    password = "KAFKA_SASL_PASSWORD"  # from the service's KafkaUser Secret
    assert mounted["ingest"] == {
        "INTERCOM_CLIENT_SECRET",
        "INTERCOM_CLIENT_SECRETS",
        "HOOKSTREAM_API_TOKEN",
        password,
    }
    assert mounted["sink"] == {"INTERCOM_ACCESS_TOKEN", password}
    assert mounted["worker"] == {password}
    for workload in rendered.workloads():
        container = main_container(workload)
        env = container_env(rendered, container)
        assert not secret_names & set(env), "secrets never travel in the environment"
        mount = secrets_dir_mount(workload, container)
        assert env.get("HOOKSTREAM_SECRETS_DIR") == mount


@pytest.mark.parametrize("component", ["ingest", "worker", "sink"])
def test_each_service_loads_its_settings_from_what_the_pod_gets(
    rendered: Rendered,
    component: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The real settings loader, fed the pod's environment and its Secret volume's files.
    workload = rendered.workload(component)
    container = main_container(workload)
    env = container_env(rendered, container)
    secrets = rendered.secret_values() or _example_secret_values()
    # What the User Operator writes into the KafkaUser's Secret, which the pod mounts
    user_secret = {"password": f"scram-password-of-{component}"}
    if "HOOKSTREAM_SECRETS_DIR" in env:
        for path, (name, key) in mounted_secret_sources(workload, container).items():
            if not name.startswith("hookstream-secrets"):
                (tmp_path / path).write_text(user_secret[key])
            elif key in secrets:  # an optional key the Secret lacks is no file (as the kubelet)
                (tmp_path / path).write_text(secrets[key])
        env["HOOKSTREAM_SECRETS_DIR"] = str(tmp_path)
    settings = settings_from(env, monkeypatch)
    assert settings.kafka.bootstrap_servers == env["KAFKA_BOOTSTRAP_SERVERS"]
    assert settings.kafka.security_protocol == "SASL_SSL"
    assert settings.kafka.sasl_username == f"hookstream-{component}"
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == user_secret["password"]
    assert str(settings.kafka.ssl_ca_file) in _mounted_files(workload, container)
    if component == "ingest":
        assert settings.ingest.client_secrets == [secrets["INTERCOM_CLIENT_SECRET"].encode()]
        assert settings.ingest.api_token is not None
    if component == "sink":
        assert settings.sink.intercom_access_token is not None
        assert (
            settings.sink.intercom_access_token.get_secret_value()
            == secrets["INTERCOM_ACCESS_TOKEN"]
        )
        expected = "http://hookstream-sandbox:8090" if rendered.overlay == "dev" else None
        assert settings.sink.intercom_api_base_url == expected


def _mounted_files(workload: Doc, container: Doc) -> set[str]:
    """The paths of the files of every Secret volume mounted in `container`."""
    volumes = {volume["name"]: volume for volume in pod_spec(workload)["volumes"]}
    return {
        f"{mount['mountPath']}/{item['path']}"
        for mount in container["volumeMounts"]
        for item in volumes.get(mount["name"], {}).get("secret", {}).get("items", [])
    }


def test_ingest_mounts_each_signing_secret_key_the_secret_has_and_the_api_token(
    rendered: Rendered,
) -> None:
    workload = rendered.workload("ingest")
    container = main_container(workload)
    # none is required of the kubelet: the ingest itself needs one of the two client keys
    assert mounted_secret_items(workload, container, optional=False) == {}
    assert mounted_secret_items(workload, container, optional=True) == {
        "INTERCOM_CLIENT_SECRET": "INTERCOM_CLIENT_SECRET",
        "INTERCOM_CLIENT_SECRETS": "INTERCOM_CLIENT_SECRETS",
        "HOOKSTREAM_API_TOKEN": "HOOKSTREAM_API_TOKEN",
    }


CURRENT, ROTATION = "k3J9-vQ2x-Lm8P-zT4r", "n3xt-s3cr3t-0001-aaaa,n3xt-s3cr3t-0002-bbbb"
NAMED = "appA:k3J9-vQ2x-Lm8P-zT4r,appB:q8Wm-2cXv-Rt5L-yN7e"


class SecretCase(NamedTuple):
    secret: dict[str, str]  # the keys of hookstream-secrets
    signing: list[tuple[str | None, str]]  # what the ingest then verifies with
    refusal: str | None  # why it refuses to start, if it does


@pytest.mark.parametrize(
    "case",
    [
        SecretCase(  # one app, a rotation under way: the current secret, then the next two
            {"INTERCOM_CLIENT_SECRET": CURRENT, "INTERCOM_CLIENT_SECRETS": ROTATION},
            [(None, CURRENT), *((None, s) for s in ROTATION.split(","))],
            None,
        ),
        SecretCase(  # several Intercom apps, named secrets only
            {"INTERCOM_CLIENT_SECRETS": NAMED},
            [("appA", "k3J9-vQ2x-Lm8P-zT4r"), ("appB", "q8Wm-2cXv-Rt5L-yN7e")],
            None,
        ),
        SecretCase(
            {}, [], "set INTERCOM_CLIENT_SECRET (or INTERCOM_CLIENT_SECRETS) for the ingest"
        ),
    ],
    ids=["rotation", "named-only", "neither"],
)
def test_the_ingest_pods_files_give_its_signing_secrets_or_its_refusal_names_the_keys(
    rendered: Rendered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: SecretCase
) -> None:
    # What the pod's files give the settings from a Secret with these keys and no API token
    # (edited in the Secret only, never in the manifests).
    workload = rendered.workload("ingest")
    container = main_container(workload)
    for path, (name, key) in mounted_secret_sources(workload, container).items():
        if not name.startswith("hookstream-secrets"):  # the KafkaUser's password
            (tmp_path / path).write_text("scram-password-of-ingest")
        elif key in case.secret:
            (tmp_path / path).write_text(case.secret[key] + "\n")
    env = container_env(rendered, container) | {"HOOKSTREAM_SECRETS_DIR": str(tmp_path)}
    settings = settings_from(env, monkeypatch)
    expected = [(app, value.encode()) for app, value in case.signing]
    assert settings.ingest.signing_secrets == expected
    assert settings.ingest.api_token is None  # no token: not a reason to refuse
    assert secrets_refusal(settings) == case.refusal


def _example_secret_values() -> dict[str, str]:
    example = load_yaml(K8S / "examples" / "hookstream-secrets.example.yaml")
    values: dict[str, str] = example["stringData"]
    return values


def test_the_example_secret_has_every_secret_key_and_only_placeholders() -> None:
    example = load_yaml(K8S / "examples" / "hookstream-secrets.example.yaml")
    assert example["kind"] == "Secret"
    assert example["metadata"]["name"] == "hookstream-secrets"
    assert set(example["stringData"]) == {
        "INTERCOM_CLIENT_SECRET",
        "INTERCOM_ACCESS_TOKEN",
        "HOOKSTREAM_API_TOKEN",
    }
    assert set(example["stringData"]) <= secret_setting_names()
    assert all(value.startswith("REPLACE_ME") for value in example["stringData"].values())


def test_prod_renders_no_secret_and_dev_only_development_values(
    prod: Rendered, dev: Rendered
) -> None:
    assert prod.secret_values() is None, "production secrets are created out of band"
    dev_values = dev.secret_values()
    assert dev_values is not None
    assert set(dev_values) == {
        "INTERCOM_CLIENT_SECRET",
        "INTERCOM_ACCESS_TOKEN",
        "HOOKSTREAM_API_TOKEN",
    }
    assert all(value.startswith(("dev-", "sandbox-")) for value in dev_values.values())


def test_namespaces_enforce_the_restricted_pod_security_standard(rendered: Rendered) -> None:
    (namespace,) = rendered.of_kind("Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in rendered.docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == rendered.namespace, doc["metadata"]["name"]


def test_only_dev_runs_the_intercom_sandbox(prod: Rendered, dev: Rendered) -> None:
    assert "sandbox" not in {component_of(workload) for workload in prod.workloads()}
    sandbox = main_container(dev.workload("sandbox"))
    assert sandbox["args"][:1] == ["sandbox"]
    config = dev.hookstream_config()
    port = sandbox["ports"][0]["containerPort"]
    assert config["INTERCOM_API_BASE_URL"] == f"http://hookstream-sandbox:{port}"


def _doc_names(docs: list[Doc]) -> list[str]:
    return [doc["metadata"]["name"] for doc in docs]


def test_every_resource_name_is_unique_per_kind(rendered: Rendered) -> None:
    for kind in {doc["kind"] for doc in rendered.docs}:
        names = _doc_names(rendered.of_kind(kind))
        assert len(names) == len(set(names)), kind
