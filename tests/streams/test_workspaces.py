"""Many workspaces through the worker: routed records and dead letters keep the workspace
(`intercom-app-id`) and the verifying app (`hookstream-app`); routes can match a workspace."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from hookstream.cli import main
from hookstream.core.contract import decode_headers
from hookstream.streams.dedup import Deduplicator
from hookstream.streams.errors import RoutesFileError
from hookstream.streams.metrics import WorkerMetrics
from hookstream.streams.processor import Outcome, Processor
from hookstream.streams.records import RawRecord
from hookstream.streams.routes import RouteTable, load_routes, route_table_from_mapping
from tests.streams.support import payload
from tests.streams.test_processor import Sink, Topics

ROUTES = {
    "routes": [
        {"match": "conversation.*", "workspace": "acme", "to": ["acme.conversations"]},
        {"workspace": "test-*", "drop": True},
        {"match": "contact.*", "workspace": "big-*", "to": ["intercom.ws.{workspace}.{topic}"]},
    ]
}


class Worker:
    """The processor with in-memory stand-ins, fed raw records as the ingest writes them."""

    def __init__(self, routes: RouteTable | None = None, refuse: set[str] | None = None) -> None:
        self.sink = Sink(refuse)
        self.processor = Processor(
            dedup=Deduplicator({}, ttl_seconds=3600),
            routes=routes or RouteTable("intercom."),
            topics=Topics(),
            sink=self.sink,
            dlq_topic="dlq",
            metrics=WorkerMetrics(),
        )
        self.offset = 0

    async def feed(
        self,
        app_id: str | None,
        *,
        topic: str = "conversation.user.created",
        app: str | None = None,
    ) -> Outcome:
        self.offset += 1
        body = payload("conversation.user.created")
        body.update(id=f"notif_{self.offset}", topic=topic, app_id=app_id)
        headers = [("intercom-topic", topic.encode())]
        headers += [] if app_id is None else [("intercom-app-id", app_id.encode())]
        headers += [] if app is None else [("hookstream-app", app.encode())]
        raw = RawRecord("raw", 0, self.offset, b"k", orjson.dumps(body), headers, 1_700_000_000_000)
        return await self.processor.process(raw)

    def sent(self) -> list[tuple[str, dict[str, str]]]:
        return [(r.topic, decode_headers(r.headers)) for r in self.sink.records]


async def test_routed_records_keep_the_workspace_and_the_verifying_app() -> None:
    worker = Worker()
    assert await worker.feed("ws-1", app="appA") is Outcome.ROUTED
    assert await worker.feed("ws-2") is Outcome.ROUTED
    (first_topic, first), (_, second) = worker.sent()
    assert first_topic == "intercom.conversation.user.created"
    assert (first["intercom-app-id"], first["hookstream-app"]) == ("ws-1", "appA")
    assert first["ce_source"] == "intercom://app/ws-1"
    assert second["intercom-app-id"] == "ws-2"
    assert "hookstream-app" not in second


async def test_a_notification_without_app_id_is_routed_as_before_with_no_workspace_header() -> None:
    worker = Worker(route_table_from_mapping("intercom.", ROUTES))
    assert await worker.feed(None) is Outcome.ROUTED
    ((topic, headers),) = worker.sent()
    assert topic == "intercom.conversation.user.created"  # no workspace rule matches it
    assert "intercom-app-id" not in headers
    assert headers["ce_source"] == "intercom://hookstream"


async def test_dead_letters_keep_the_workspace_and_the_verifying_app() -> None:
    worker = Worker(refuse={"intercom.conversation.user.created"})  # "too large"
    assert await worker.feed("ws-1", app="appA") is Outcome.DEAD_LETTERED
    ((topic, headers),) = worker.sent()
    assert topic == "dlq"
    assert (headers["intercom-app-id"], headers["hookstream-app"]) == ("ws-1", "appA")
    assert headers["hookstream-dlq-reason"] == "route-failed"


async def test_routes_send_a_workspace_to_its_own_topic_and_drop_another() -> None:
    worker = Worker(route_table_from_mapping("intercom.", ROUTES))
    assert await worker.feed("acme") is Outcome.ROUTED
    assert await worker.feed("acme", topic="contact.user.created") is Outcome.ROUTED
    assert await worker.feed("other") is Outcome.ROUTED
    assert await worker.feed("test-7") is Outcome.DROPPED
    assert await worker.feed("test-7", topic="contact.user.created") is Outcome.DROPPED
    assert await worker.feed("big-co", topic="contact.user.created") is Outcome.ROUTED
    assert [(topic, headers["intercom-app-id"]) for topic, headers in worker.sent()] == [
        ("acme.conversations", "acme"),
        ("intercom.contact.user.created", "acme"),  # acme's rule is for conversations only
        ("intercom.conversation.user.created", "other"),
        ("intercom.ws.big-co.contact.user.created", "big-co"),
    ]


def test_a_workspace_routes_file_is_read_and_its_fixed_topics_are_created_at_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        "routes:\n"
        "  - match: 'conversation.*'\n"
        "    workspace: acme\n"
        "    to: [acme.conversations]\n"
        "  - workspace: 'test-*'\n"
        "    drop: true\n"
    )
    routes = load_routes("intercom.", path)
    assert routes.destinations("conversation.user.created", "acme") == ("acme.conversations",)
    assert routes.destinations("conversation.user.created", "test-1") == ()
    assert routes.destinations("conversation.user.created") == (
        "intercom.conversation.user.created",
    )
    assert routes.static_destinations() == {"acme.conversations"}


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("- drop: true", "routes[1]: a rule needs `match` (Intercom topics), `workspace`"),
        (
            "- {match: 'contact.*', to: ['{workspace}.contacts']}",
            "routes[1] (match 'contact.*'): `{workspace}` is only known in a rule with",
        ),
        ("- {workspace: '', drop: true}", "routes[1] (workspace '').workspace: String should"),
        (
            "- {workspace: acme, to: ['bad topic']}",
            "routes[1] (workspace 'acme').to: 'bad topic' is not a valid Kafka topic name",
        ),
    ],
)
def test_an_invalid_entry_is_refused_naming_the_file_and_the_entry(
    tmp_path: Path, entry: str, why: str
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(f"routes:\n- {{match: ping, drop: true}}\n{entry}\n")
    with pytest.raises(RoutesFileError) as refused:
        load_routes("intercom.", path)
    assert f"invalid routes in routes file {path}: " in str(refused.value)
    assert why in str(refused.value)


def test_check_routes_shows_workspace_rules_and_where_a_workspaces_topic_goes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        "routes:\n"
        "  - {match: 'conversation.*', workspace: acme, to: [acme.conversations]}\n"
        "  - {workspace: 'test-*', drop: true}\n"
    )
    result = CliRunner().invoke(
        main,
        [
            *("worker", "--check-routes"),
            *("--show-route", "conversation.user.created@acme"),
            *("--show-route", "conversation.user.created@test-1"),
            *("--show-route", "conversation.user.created"),
        ],
        env={"HOOKSTREAM_ROUTES_FILE": str(path), "HOOKSTREAM_ROUTE_PREFIX": "intercom."},
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "conversation.* (workspace acme) -> acme.conversations",
        "* (workspace test-*) -> (dropped)",
        "(unmatched) -> intercom.<topic>",
        "conversation.user.created@acme: acme.conversations",
        "conversation.user.created@test-1: (dropped)",
        "conversation.user.created: intercom.conversation.user.created",
    ]
