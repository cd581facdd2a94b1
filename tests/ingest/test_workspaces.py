"""Many workspaces through one ingest: each raw record says its workspace (`intercom-app-id`)
and which configured app's secret verified it (`hookstream-app`), through Kafka and through
the spool; `POST /events` moves an event's `workspace_id` into the header."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from hookstream.core.contract import decode_headers
from hookstream.devtools import localkafka
from hookstream.ingest import create_app
from hookstream.ingest.spool import read_spool_file
from hookstream.ops.send_webhook import send_webhook_command
from hookstream.sandbox.server import serving
from tests.support.ingest import (
    SECRET,
    ingest_client,
    ingest_settings,
    notification,
    signed_headers,
)
from tests.support.kafka import read_topic, unique_name

pytestmark = pytest.mark.integration
URL = "/webhooks/intercom"
SECRET_A = "app-a-client-secret-0123"
SECRET_B = "app-b-client-secret-4567"
NAMED = f"appA:{SECRET_A},appB:{SECRET_B}"
TOKEN = "events-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _away() -> str:
    """A broker address nobody listens on: the ingest spools everything."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{listener.getsockname()[1]}"


async def test_each_raw_record_names_its_workspace_and_the_app_whose_secret_verified_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingest_settings(kafka_bootstrap, tmp_path, intercom_client_secrets=NAMED)
    sent = {
        "ws-a": (notification(app_id="ws-a"), SECRET_A),
        "ws-b": (notification(app_id="ws-b"), SECRET_B),
        "unnamed": (notification(app_id="ws-c"), SECRET),  # INTERCOM_CLIENT_SECRET
        "no-app-id": (notification(app_id=None), SECRET_A),
    }
    async with ingest_client(settings) as client:
        for body, secret in sent.values():
            response = await client.post(URL, content=body, headers=signed_headers(body, secret))
            assert response.status_code == 200, response.text
    records = await read_topic(kafka_bootstrap, settings.topics.raw, expect=len(sent))
    by_body = {r.value: decode_headers(r.headers) for r in records}
    workspace = {case: by_body[body].get("intercom-app-id") for case, (body, _) in sent.items()}
    app = {case: by_body[body].get("hookstream-app") for case, (body, _) in sent.items()}
    assert workspace == {"ws-a": "ws-a", "ws-b": "ws-b", "unnamed": "ws-c", "no-app-id": None}
    assert app == {"ws-a": "appA", "ws-b": "appB", "unnamed": None, "no-app-id": "appA"}


async def test_the_unnamed_form_accepts_every_secret_and_adds_no_app_header(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingest_settings(
        kafka_bootstrap, tmp_path, intercom_client_secrets=f"{SECRET_A},{SECRET_B}"
    )
    bodies = [notification(app_id="ws-a"), notification(app_id="ws-b")]
    async with ingest_client(settings) as client:
        for body, secret in zip(bodies, (SECRET_A, SECRET_B), strict=True):
            response = await client.post(URL, content=body, headers=signed_headers(body, secret))
            assert response.status_code == 200, response.text
        wrong = await client.post(URL, content=bodies[0], headers=signed_headers(bodies[0], "appA"))
    assert wrong.status_code == 401
    records = await read_topic(kafka_bootstrap, settings.topics.raw, expect=2)
    headers = [decode_headers(r.headers) for r in records]
    assert sorted(h["intercom-app-id"] for h in headers) == ["ws-a", "ws-b"]
    assert all("hookstream-app" not in h for h in headers)


async def test_spooled_webhooks_keep_their_workspace_and_app_headers(tmp_path: Path) -> None:
    settings = ingest_settings(_away(), tmp_path, intercom_client_secrets=NAMED)
    body = notification(app_id="ws-b")
    async with ingest_client(settings) as client:
        response = await client.post(URL, content=body, headers=signed_headers(body, SECRET_B))
    assert response.json()["durable_in"] == "spool"
    (stored,) = read_spool_file(tmp_path / "spool.0.sqlite3")
    assert stored.record.value == body
    headers = decode_headers(stored.record.headers)
    assert (headers["intercom-app-id"], headers["hookstream-app"]) == ("ws-b", "appB")


def _event(user: str, **extra: object) -> dict[str, object]:
    return {"event_name": "updated-plan", "created_at": 1_750_000_000, "user_id": user, **extra}


async def test_an_events_workspace_id_moves_into_the_header_and_out_of_the_value(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingest_settings(
        kafka_bootstrap,
        tmp_path,
        hookstream_api_token=TOKEN,
        hookstream_data_events_topic=unique_name("it.events"),
    )
    async with ingest_client(settings) as client:
        listed = await client.post(
            "/events", json=[_event("u-1", workspace_id="ws-1"), _event("u-2")], headers=AUTH
        )
        single = await client.post("/events", json=_event("u-3", workspace_id="ws-3"), headers=AUTH)
    assert (listed.status_code, single.status_code) == (202, 202), listed.text + single.text
    records = await read_topic(kafka_bootstrap, settings.topics.data_events, expect=3)
    seen = {r.key: (orjson.loads(r.value), decode_headers(r.headers)) for r in records}
    assert seen[b"u-1"] == (_event("u-1"), {"intercom-app-id": "ws-1"})
    assert seen[b"u-2"] == (_event("u-2"), {})
    assert seen[b"u-3"] == (_event("u-3"), {"intercom-app-id": "ws-3"})


async def test_a_spooled_events_list_keeps_each_events_workspace(tmp_path: Path) -> None:
    settings = ingest_settings(_away(), tmp_path, hookstream_api_token=TOKEN)
    events = [_event("u-1", workspace_id="ws-1"), _event("u-2", workspace_id="ws-2")]
    async with ingest_client(settings) as client:
        response = await client.post("/events", json=events, headers=AUTH)
    assert response.json()["durable_in"] == "spool", response.text
    stored = read_spool_file(tmp_path / "spool.0.sqlite3")
    assert [orjson.loads(s.record.value) for s in stored] == [_event("u-1"), _event("u-2")]
    assert [decode_headers(s.record.headers) for s in stored] == [
        {"intercom-app-id": "ws-1"},
        {"intercom-app-id": "ws-2"},
    ]


@pytest.mark.parametrize(
    ("workspace_id", "message"),
    [
        ("", "non-empty string"),
        ("   ", "non-empty string"),
        (42, "non-empty string"),
        (None, "non-empty string"),
        ("w" * 256, "at most 255 characters"),
    ],
)
async def test_an_invalid_workspace_id_refuses_the_list_naming_the_item_and_field(
    tmp_path: Path, workspace_id: object, message: str
) -> None:
    settings = ingest_settings(_away(), tmp_path, hookstream_api_token=TOKEN)
    events = [
        _event("u-1", workspace_id="ws-1"),
        _event("u-2", workspace_id=workspace_id),
        {"event_name": "x", "workspace_id": workspace_id},  # and what else is wrong with it
    ]
    async with ingest_client(settings) as client:
        listed = await client.post("/events", json=events, headers=AUTH)
        single = await client.post("/events", json=events[1], headers=AUTH)
    assert (listed.status_code, single.status_code) == (422, 422)
    items = {item["index"]: item["errors"] for item in listed.json()["error"]["items"]}
    assert sorted(items) == [1, 2]
    assert [e["field"] for e in items[1]] == ["workspace_id"]
    assert message in items[1][0]["message"]
    fields = Counter(e["field"] for e in items[2])
    assert fields["workspace_id"] == 1
    assert {"created_at", "workspace_id"} <= fields.keys()
    assert [e["field"] for e in single.json()["error"]["errors"]] == ["workspace_id"]
    assert read_spool_file(tmp_path / "spool.0.sqlite3") == [], "none was queued"


async def test_send_webhook_spreads_notifications_over_workspaces_each_signed_by_its_app(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingest_settings(
        kafka_bootstrap,
        tmp_path,
        intercom_client_secrets=NAMED,
        hookstream_ingest_admin_port=localkafka.free_port(),
    )
    with serving(create_app(settings)) as base_url:
        result = await asyncio.to_thread(  # the command runs its own event loop
            CliRunner().invoke,
            send_webhook_command,
            [
                *("--url", f"{base_url}{URL}", "-n", "7", "--json"),
                *("--app-id", "ws1", "--app-id", "ws2", "--app-id", "ws3"),
                *("--secret", f"ws1:{SECRET_A}", "--secret", f"ws2:{SECRET_B}"),
                *("--secret", SECRET),  # the others: INTERCOM_CLIENT_SECRET's
            ],
        )
    assert result.exit_code == 0, result.output
    (summary,) = [line for line in result.output.splitlines() if line.startswith("{")]
    assert orjson.loads(summary)["delivered"] == 7  # (the ingest's log lines are there too)
    records = await read_topic(kafka_bootstrap, settings.topics.raw, expect=7)
    pairs = Counter(
        (orjson.loads(r.value)["app_id"], h.get("intercom-app-id"), h.get("hookstream-app"))
        for r in records
        for h in [decode_headers(r.headers)]
    )
    assert pairs == {("ws1", "ws1", "appA"): 3, ("ws2", "ws2", "appB"): 2, ("ws3", "ws3", None): 2}
