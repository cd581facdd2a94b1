"""The real worker with several workspaces: routes by workspace, and the `intercom-app-id` and
`hookstream-app` headers on routed records and dead letters."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from hookstream.core.contract import decode_headers
from tests.streams.support import (
    Raw,
    WorkerConfig,
    notification,
    produce,
    raw_notification,
    running_workers,
)
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration


def _from(workspace: str | None, notification_id: str, app: str | None = None) -> Raw:
    """A raw record as the ingest writes it for a notification of `workspace`."""
    plain = raw_notification(notification_id)
    body = orjson.loads(notification(notification_id))
    body["app_id"] = workspace
    headers = list(plain.headers)
    headers += [] if workspace is None else [("intercom-app-id", workspace.encode())]
    headers += [] if app is None else [("hookstream-app", app.encode())]
    return Raw(key=plain.key, value=orjson.dumps(body), headers=headers)


async def test_the_worker_routes_by_workspace_and_keeps_the_workspace_headers(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    routes = tmp_path / "routes.yaml"
    config = WorkerConfig(kafka_bootstrap, tmp_path, partitions=1, routes_file=routes)
    own = f"{config.prefix}acme.conversations"
    routes.write_text(
        "routes:\n"
        f"  - {{match: 'conversation.*', workspace: acme, to: ['{own}']}}\n"
        "  - {workspace: 'test-*', drop: true}\n"
    )
    poison = Raw(
        key=b"bad",
        value=b"not json",
        headers=[("intercom-app-id", b"acme"), ("hookstream-app", b"appA")],
    )
    records = [
        _from("acme", "notif_1", app="appA"),
        _from("test-1", "notif_2", app="appA"),
        _from("other", "notif_3"),
        _from(None, "notif_4"),
        poison,
    ]
    default = config.routed("conversation.user.created")
    with running_workers(config) as [worker]:
        await produce(kafka_bootstrap, config.raw_topic, records)
        await asyncio.to_thread(
            worker.wait_for_metric, "hookstream_worker_notifications_processed_total", 5
        )
        acme = await read_topic(kafka_bootstrap, own, expect=1)
        others = await read_topic(kafka_bootstrap, default, expect=2)
        (letter,) = await read_topic(kafka_bootstrap, config.dlq_topic, expect=1)
    (acme_headers,) = [decode_headers(r.headers) for r in acme]
    assert (acme_headers["intercom-app-id"], acme_headers["hookstream-app"]) == ("acme", "appA")
    assert [decode_headers(r.headers).get("intercom-app-id") for r in others] == ["other", None]
    assert all("hookstream-app" not in decode_headers(r.headers) for r in others)
    dead = decode_headers(letter.headers)
    assert (dead["intercom-app-id"], dead["hookstream-app"]) == ("acme", "appA")
    assert dead["hookstream-dlq-reason"] == "not-json"
