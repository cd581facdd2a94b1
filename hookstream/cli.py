"""The `hookstream` command: one entrypoint, a subcommand per service or operator task.

Subcommands live beside the code they drive (`hookstream.ingest.cli`, `hookstream.ops.tail`,
...) and are imported only when called, so `hookstream --help` stays fast and a service does
not load the others' dependencies (nor the operator and developer tools).
"""

from __future__ import annotations

import importlib

import click

from hookstream.core.settings import settings_table

# name -> "module:attribute" of a click command, loaded on use.
_LAZY_COMMANDS = {
    "ingest": ("hookstream.ingest.cli:ingest_command", "Serve the webhook ingest (FastAPI)."),
    "worker": (
        "hookstream.streams.cli:worker_command",
        "Run the streams worker: dedup and fan-out.",
    ),
    "sink": ("hookstream.sinks.cli:sink_command", "Run the sink: data events to Intercom."),
    "sandbox": ("hookstream.sandbox.cli:sandbox_command", "Serve the local Intercom sandbox API."),
    "send-webhook": (
        "hookstream.ops.send_webhook:send_webhook_command",
        "Sign and send test webhooks.",
    ),
    "dev": (
        "hookstream.devtools.dev:dev_command",
        "Run the whole pipeline locally (Ctrl-C stops it).",
    ),
    "kafka": (
        "hookstream.devtools.kafka_cli:kafka_group",
        "Run a real Apache Kafka broker locally, from its Maven jars.",
    ),
    "topics": (
        "hookstream.ops.commands:topics_command",
        "Create and describe hookstream's topics.",
    ),
    "spool": ("hookstream.ops.spool:spool_group", "List or export what a spool file holds."),
    "tail": ("hookstream.ops.commands:tail_command", "Follow a topic and print its records."),
    "replay": ("hookstream.ops.commands:replay_command", "Move dead letters back to their source."),
    "contract": (
        "hookstream.ops.contract:contract_group",
        "Write the topics' contract: AsyncAPI 3.0 and JSON Schemas.",
    ),
    "acls": (
        "hookstream.ops.acls:acls_command",
        "Print the Kafka ACLs each service needs (kafka-acls or Strimzi).",
    ),
    "verify-signature": (
        "hookstream.ops.signature:verify_signature_command",
        "Check a webhook body against a signature and secret.",
    ),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *_LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _LAZY_COMMANDS:
            module_name, attribute = _LAZY_COMMANDS[cmd_name][0].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            assert isinstance(command, click.Command)  # noqa: S101 - a wiring error, not input
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, short_help) for name, (_target, short_help) in _LAZY_COMMANDS.items()]
        rows += [
            (name, command.get_short_help_str())
            for name, command in self.commands.items()
            if not command.hidden
        ]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hookstream")
def main() -> None:
    """hookstream: Intercom webhooks into Kafka, deduplicated and routed per topic, and data
    events from Kafka back to Intercom.

    Every service reads its settings from environment variables (see the README).
    """


@main.command("settings")
@click.option("--markdown", is_flag=True, help="Print a Markdown table (as in the README).")
def settings_command(markdown: bool) -> None:
    """List every setting: its environment variable, default and meaning."""
    rows = settings_table()
    if markdown:
        click.echo("| variable | default | meaning |\n| --- | --- | --- |")
        for variable, default, description in rows:
            click.echo(f"| `{variable}` | {f'`{default}`' if default else ''} | {description} |")
        return
    for variable, default, description in rows:
        click.echo(f"{variable}={default}\n    {description}")


if __name__ == "__main__":
    main()
