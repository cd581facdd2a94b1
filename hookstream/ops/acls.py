"""`hookstream acls`: exactly the Kafka ACLs each service needs, for the current settings.

One principal per service (ingest, worker, sink, operator), each allowed only what its code
does with the topics, groups and transactional ids the settings name:

    ingest    writes the raw and data-events topics (idempotent producer: Write implies it);
              commits the events of one `POST /events` in one transaction (transactional ids
              HOOKSTREAM_INGEST_TRANSACTIONAL_ID_PREFIX)
    worker    reads the raw topic in its group; writes routed topics (prefix
              HOOKSTREAM_ROUTE_PREFIX, created when missing) and its dead letters in
              transactions (transactional ids `<worker id>-`); owns Faust's internal topics
              (`<worker id>-`); creates the catalogue topics at start-up
    sink      reads data events in its group; writes their dead letters; owns its internal
              topics (`<sink id>-`)
    operator  describes and reads every hookstream topic, creates the catalogue (`topics
              --create`), replays dead letters to their source (groups `hookstream-replay.`)

With HOOKSTREAM_CREATE_TOPICS=false (the topics owned by Strimzi `KafkaTopic`s) nobody is
granted Create: no service creates a topic then.

`required_acls` is the one source: `hookstream acls` prints it as `kafka-acls` commands or
Strimzi `KafkaUser` resources, and the local secure broker creates exactly these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import click
import yaml
from pydantic import ValidationError

from hookstream.core.settings import Settings, load_settings
from hookstream.core.topics import topic_catalogue

SERVICES = ("ingest", "worker", "sink", "operator")
ResourceType = Literal["topic", "group", "transactionalId", "cluster"]
Pattern = Literal["literal", "prefixed"]
REPLAY_GROUP_PREFIX = "hookstream-replay."


@dataclass(frozen=True, slots=True)
class Acl:
    """Allow `operations` on a resource (Kafka's names: Read, Write, Describe, ...)."""

    resource_type: ResourceType
    name: str
    pattern: Pattern
    operations: tuple[str, ...]


def default_principal(service: str) -> str:
    """The principal of a service's own user: `User:hookstream-<service>`."""
    return f"User:{default_user(service)}"


def default_user(service: str) -> str:
    """The user (SCRAM name, or certificate CN) of a service."""
    return f"hookstream-{service}"


def required_acls(settings: Settings) -> dict[str, list[Acl]]:
    """Each service's ACLs for `settings`."""
    topics = settings.topics
    catalogue = [spec.name for spec in topic_catalogue(topics)]
    worker_id, sink_id = settings.worker.id, settings.sink.id
    create: tuple[str, ...] = ("Create",) if topics.create else ()
    rw_internal = ("Read", "Write", *create, "Describe", "DescribeConfigs")
    return {
        "ingest": [
            Acl("topic", topics.raw, "literal", ("Write", "Describe")),
            Acl("topic", topics.data_events, "literal", ("Write", "Describe")),
            Acl(
                "transactionalId",
                settings.ingest.transactional_id_prefix,
                "prefixed",
                ("Write", "Describe"),
            ),
        ],
        "worker": [
            *(
                Acl("topic", n, "literal", (*create, "Describe", "DescribeConfigs"))
                for n in catalogue
            ),
            Acl("topic", topics.raw, "literal", ("Read",)),
            Acl("topic", topics.dlq, "literal", ("Write",)),
            Acl("topic", topics.route_prefix, "prefixed", ("Write", *create, "Describe")),
            Acl("topic", f"{worker_id}-", "prefixed", rw_internal),
            Acl("group", worker_id, "literal", ("Read", "Describe")),
            Acl("transactionalId", f"{worker_id}-", "prefixed", ("Write", "Describe")),
        ],
        "sink": [
            Acl("topic", topics.data_events, "literal", ("Read", "Describe")),
            Acl("topic", topics.data_events_dlq, "literal", ("Write", "Describe")),
            Acl("topic", f"{sink_id}-", "prefixed", rw_internal),
            Acl("group", sink_id, "literal", ("Read", "Describe")),
        ],
        "operator": [
            *(
                Acl("topic", n, "literal", (*create, "Describe", "DescribeConfigs", "Read"))
                for n in catalogue
            ),
            Acl("topic", topics.raw, "literal", ("Write",)),
            Acl("topic", topics.data_events, "literal", ("Write",)),
            Acl("topic", topics.route_prefix, "prefixed", ("Describe", "Read")),
            Acl("group", REPLAY_GROUP_PREFIX, "prefixed", ("Read", "Describe")),
        ],
    }


_KAFKA_ACLS_RESOURCE = {
    "topic": "--topic",
    "group": "--group",
    "transactionalId": "--transactional-id",
    "cluster": "--cluster",
}


def kafka_acls_commands(
    acls: dict[str, list[Acl]], principals: dict[str, str], bootstrap: str
) -> list[str]:
    """`kafka-acls --add` commands, one per resource, grouped by service."""
    lines: list[str] = []
    for service, entries in acls.items():
        lines.append(f"# {service}: {principals[service]}")
        for acl in entries:
            operations = " ".join(f"--operation {op}" for op in acl.operations)
            resource = _KAFKA_ACLS_RESOURCE[acl.resource_type]
            target = resource if acl.resource_type == "cluster" else f"{resource} '{acl.name}'"
            lines.append(
                f"kafka-acls --bootstrap-server {bootstrap} --command-config admin.properties"
                f" --add --allow-principal '{principals[service]}' {operations} {target}"
                f" --resource-pattern-type {acl.pattern}"
            )
    return lines


# Strimzi spells Kafka's `prefixed` pattern `prefix`.
_STRIMZI_PATTERN: dict[Pattern, str] = {"literal": "literal", "prefixed": "prefix"}


def strimzi_users(
    acls: dict[str, list[Acl]], users: dict[str, str], cluster: str, authentication: str
) -> str:
    """Strimzi `KafkaUser` resources (`kafka.strimzi.io/v1`, as `k8s/` uses; YAML documents),
    one per service."""
    documents = []
    for service, entries in acls.items():
        documents.append(
            {
                "apiVersion": "kafka.strimzi.io/v1",
                "kind": "KafkaUser",
                "metadata": {"name": users[service], "labels": {"strimzi.io/cluster": cluster}},
                "spec": {
                    "authentication": {"type": authentication},
                    "authorization": {
                        "type": "simple",
                        "acls": [
                            {
                                "resource": {
                                    "type": acl.resource_type,
                                    **(
                                        {} if acl.resource_type == "cluster" else {"name": acl.name}
                                    ),
                                    "patternType": _STRIMZI_PATTERN[acl.pattern],
                                },
                                "operations": list(acl.operations),
                                "host": "*",
                            }
                            for acl in entries
                        ],
                    },
                },
            }
        )
    return yaml.safe_dump_all(documents, sort_keys=False)


@click.command("acls")
@click.option(
    "--format",
    "output",
    type=click.Choice(["kafka-acls", "strimzi"]),
    default="kafka-acls",
    show_default=True,
)
@click.option(
    "--user",
    "user_overrides",
    metavar="SERVICE=NAME",
    multiple=True,
    help="A service's user name (default hookstream-SERVICE); repeatable.",
)
@click.option("--strimzi-cluster", default="my-cluster", show_default=True)
@click.option(
    "--strimzi-authentication",
    type=click.Choice(["scram-sha-512", "tls"]),
    default="scram-sha-512",
    show_default=True,
)
def acls_command(
    output: str, user_overrides: tuple[str, ...], strimzi_cluster: str, strimzi_authentication: str
) -> None:
    """Print the ACLs each service (ingest, worker, sink, operator) needs, and nothing more,
    for the current settings (topic names, worker and sink ids, route prefix; no Create
    with HOOKSTREAM_CREATE_TOPICS=false)."""
    users = {service: default_user(service) for service in SERVICES}
    for override in user_overrides:
        service, _, name = override.partition("=")
        if service not in users or not name:
            raise click.BadParameter(f"expected SERVICE=NAME with SERVICE in {SERVICES}")
        users[service] = name
    try:
        settings = load_settings()
    except ValidationError as exc:
        raise click.ClickException(f"invalid settings: {exc}") from exc
    acls = required_acls(settings)
    if output == "strimzi":
        click.echo(strimzi_users(acls, users, strimzi_cluster, strimzi_authentication), nl=False)
        return
    principals = {service: f"User:{name}" for service, name in users.items()}
    for line in kafka_acls_commands(acls, principals, settings.kafka.bootstrap_servers):
        click.echo(line)
