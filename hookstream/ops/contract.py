"""`hookstream contract`: the machine-readable contract of hookstream's topics, for the teams
that consume them.

    hookstream contract asyncapi [-o FILE] [--json]   the AsyncAPI 3.0 document
    hookstream contract schemas DIR                    the JSON Schema (2020-12) files

Both are derived from the code and the settings in force (`hookstream.ops.asyncapi`,
`hookstream.core.schemas`); nothing connects to Kafka.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import ValidationError

from hookstream.core.errors import HookstreamError
from hookstream.core.schemas import schema_documents
from hookstream.core.settings import load_settings
from hookstream.ops.asyncapi import asyncapi_document


@click.group("contract")
def contract_group() -> None:
    """Write the contract of hookstream's topics: AsyncAPI and JSON Schemas.

    \b
    hookstream contract asyncapi                  AsyncAPI 3.0 (YAML) on stdout
    hookstream contract asyncapi -o api.yaml      ... into a file
    hookstream contract asyncapi --json           ... as JSON
    hookstream contract schemas schemas/          the JSON Schemas, one file each

    Derived from the code and the settings in force (the topic names, partitions,
    replication, HOOKSTREAM_ROUTE_PREFIX and HOOKSTREAM_ROUTES_FILE): run it with the
    environment of the deployment it should describe. Nothing connects to Kafka.
    """


@contract_group.command("asyncapi")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the document to this file instead of stdout.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of YAML.")
def asyncapi_command(output: Path | None, as_json: bool) -> None:
    """The AsyncAPI 3.0 document of every topic hookstream reads or writes.

    \b
    Channels    the raw, data-events and dead-letter topics, the routed topics (each
                destination of the routes file; `<prefix>{intercomTopic}` for the default
                routing) and the worker's dedup changelog, with their Kafka bindings
                (partitions, replicas, cleanup policy, retention, max message size)
    Messages    key, headers and payload as JSON Schemas (the ones the code validates with)
    Operations  which service (ingest, worker, sink, replay) sends and which receives
    """
    try:
        document = asyncapi_document(load_settings())
    except (ValidationError, HookstreamError) as exc:
        raise click.ClickException(str(exc)) from exc
    text = _dump(document, as_json=as_json)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@contract_group.command("schemas")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def schemas_command(directory: Path) -> None:
    """Write the JSON Schemas (draft 2020-12) into DIRECTORY (created if missing).

    \b
    data-event.json           one data event (the sink's input, Intercom's body)
    data-events-request.json  the ingest's POST /events body: one event or a list
    notification.json         an Intercom notification as the ingest accepts it
    routed-notification.json  ... as the worker routes it (`type` optional)
    headers/<name>.json       each Kafka header hookstream writes
    headers/<kind>-record.json  the headers of each kind of record, as one object
    """
    for name, document in schema_documents().items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        click.echo(str(path))


def _dump(document: dict[str, Any], *, as_json: bool) -> str:
    if as_json:
        return json.dumps(document, indent=2) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
