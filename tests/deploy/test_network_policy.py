"""The rendered NetworkPolicies, evaluated as Kubernetes does: a pod selected by a policy of
a direction is isolated in that direction, and a connection is allowed when some rule of some
policy selecting the pod admits its peer and port."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pytest

from tests.deploy._manifests import Doc, Rendered, component_of, selects


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Address:
    ip: str


Peer = Pod | Address


def _namespace_labels(namespace: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": namespace}


def _peer_matches(entry: Doc, peer: Peer, policy_namespace: str) -> bool:
    if "ipBlock" in entry:
        if not isinstance(peer, Address):
            return False  # pod traffic inside the cluster is not matched by ipBlock here
        address = ipaddress.ip_address(peer.ip)
        block = entry["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(excluded) for excluded in block.get("except", [])
        )
    if not isinstance(peer, Pod):
        return False
    if "namespaceSelector" in entry:
        namespace_ok = selects(entry["namespaceSelector"], _namespace_labels(peer.namespace))
    else:
        namespace_ok = peer.namespace == policy_namespace
    pod_ok = selects(entry.get("podSelector", {}), peer.labels)
    return namespace_ok and pod_ok


def _port_matches(ports: list[Doc] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    return any(
        entry.get("port") == port and entry.get("protocol", "TCP") == protocol for entry in ports
    )


def allowed(
    rendered: Rendered,
    direction: str,
    pod: Pod,
    peer: Peer,
    port: int,
    *,
    protocol: str = "TCP",
) -> bool:
    """Whether `pod` may receive from (Ingress) or send to (Egress) `peer` on `port`."""
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    policies = [
        policy
        for policy in rendered.of_kind("NetworkPolicy")
        if policy["metadata"]["namespace"] == pod.namespace
        and selects(policy["spec"]["podSelector"], pod.labels)
        and direction in policy["spec"]["policyTypes"]
    ]
    if not policies:
        return True
    for policy in policies:
        for rule in policy["spec"].get(key, []):
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(entry, peer, pod.namespace) for entry in peers)
            if peer_ok and _port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def _pods(rendered: Rendered) -> dict[str, Pod]:
    return {
        component_of(workload): Pod(
            rendered.namespace, dict(workload["spec"]["template"]["metadata"]["labels"])
        )
        for workload in rendered.workloads()
    }


INGRESS_CONTROLLER = Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
PROMETHEUS = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
KUBE_DNS = Pod("kube-system", {"k8s-app": "kube-dns"})
BROKER = Pod("kafka", {"strimzi.io/kind": "Kafka"})
STRANGER = Pod("default", {"app": "anything"})
INTERCOM = Address("52.20.30.40")  # a public address, as api.intercom.io resolves to
PRIVATE = Address("10.1.2.3")
METRICS_PORTS = {"ingest": 8081, "worker": 6066, "sink": 6067}
WEBHOOK_PORT = 8080
EVENTS_PRODUCER = Pod("shop", {"app": "checkout", "hookstream.io/events-producer": "true"})


def test_every_pod_is_isolated_in_both_directions(rendered: Rendered) -> None:
    for name, pod in _pods(rendered).items():
        assert not allowed(rendered, "Ingress", pod, STRANGER, 8080), name
        assert not allowed(rendered, "Egress", pod, STRANGER, 443), name


def test_webhooks_reach_the_ingest_only_through_the_ingress_controller(
    rendered: Rendered,
) -> None:
    pods = _pods(rendered)
    ingest = pods["ingest"]
    assert allowed(rendered, "Ingress", ingest, INGRESS_CONTROLLER, WEBHOOK_PORT)
    assert not allowed(rendered, "Ingress", ingest, INGRESS_CONTROLLER, METRICS_PORTS["ingest"])
    assert not allowed(rendered, "Ingress", ingest, INGRESS_CONTROLLER, 6066)
    assert not allowed(rendered, "Ingress", ingest, pods["worker"], WEBHOOK_PORT)


def test_producers_labelled_so_reach_the_webhook_port_and_not_the_admin_port(
    rendered: Rendered,
) -> None:
    ingest = _pods(rendered)["ingest"]
    assert allowed(rendered, "Ingress", ingest, EVENTS_PRODUCER, WEBHOOK_PORT)
    assert not allowed(rendered, "Ingress", ingest, EVENTS_PRODUCER, METRICS_PORTS["ingest"])
    assert not allowed(rendered, "Ingress", ingest, STRANGER, WEBHOOK_PORT)


def test_the_ingest_admin_port_is_reached_from_the_monitoring_namespace_only(
    rendered: Rendered,
) -> None:
    ingest = _pods(rendered)["ingest"]
    admin = METRICS_PORTS["ingest"]
    assert allowed(rendered, "Ingress", ingest, PROMETHEUS, admin)
    assert not allowed(rendered, "Ingress", ingest, PROMETHEUS, WEBHOOK_PORT)
    for peer in (INGRESS_CONTROLLER, STRANGER, EVENTS_PRODUCER, Pod(rendered.namespace, {})):
        assert not allowed(rendered, "Ingress", ingest, peer, admin), peer


@pytest.mark.parametrize("component", ["ingest", "worker", "sink"])
def test_prometheus_scrapes_every_service(rendered: Rendered, component: str) -> None:
    pod = _pods(rendered)[component]
    assert allowed(rendered, "Ingress", pod, PROMETHEUS, METRICS_PORTS[component])


@pytest.mark.parametrize("component", ["ingest", "worker", "sink"])
def test_services_reach_dns_and_kafka(rendered: Rendered, component: str) -> None:
    pod = _pods(rendered)[component]
    assert allowed(rendered, "Egress", pod, KUBE_DNS, 53, protocol="UDP")
    assert allowed(rendered, "Egress", pod, KUBE_DNS, 53, protocol="TCP")
    assert allowed(rendered, "Egress", pod, BROKER, 9092)
    assert not allowed(rendered, "Egress", pod, STRANGER, 9092)


def test_only_the_sink_reaches_the_internet_and_only_over_https(rendered: Rendered) -> None:
    pods = _pods(rendered)
    assert allowed(rendered, "Egress", pods["sink"], INTERCOM, 443)
    assert not allowed(rendered, "Egress", pods["sink"], INTERCOM, 80)
    assert not allowed(rendered, "Egress", pods["sink"], PRIVATE, 443)
    for component in ("ingest", "worker"):
        assert not allowed(rendered, "Egress", pods[component], INTERCOM, 443), component


def test_in_dev_the_sink_and_only_the_sink_reaches_the_sandbox(dev: Rendered) -> None:
    pods = _pods(dev)
    sandbox = pods["sandbox"]
    assert allowed(dev, "Egress", pods["sink"], sandbox, 8090)
    assert allowed(dev, "Ingress", sandbox, pods["sink"], 8090)
    assert not allowed(dev, "Ingress", sandbox, pods["worker"], 8090)
    assert not allowed(dev, "Egress", pods["worker"], sandbox, 8090)
