"""POST /webhooks/intercom against the real broker: what is accepted, what is refused, and
what lands on the raw topic."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hookstream.core.contract import decode_headers
from hookstream.core.topics import ensure_topics
from tests.support.ingest import (
    EXAMPLES,
    SECRET,
    ingest_client,
    ingest_settings,
    intercom_signature,
    notification,
    signed_headers,
)
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration
URL = "/webhooks/intercom"


async def test_signed_webhook_is_one_record_keyed_by_id_with_identical_bytes(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingest_settings(kafka_bootstrap, tmp_path)
    body = notification("conversation.user.created", delivery_attempts=2)
    async with ingest_client(settings) as client:
        response = await client.post(URL, content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text
    notification_id = orjson.loads(body)["id"]
    assert response.json() == {"status": "accepted", "id": notification_id, "durable_in": "kafka"}
    records = await read_topic(kafka_bootstrap, settings.topics.raw, expect=1)
    assert len(records) == 1
    assert records[0].key == notification_id.encode()
    assert records[0].value == body
    headers = decode_headers(records[0].headers)
    assert headers["intercom-topic"] == "conversation.user.created"
    assert headers["intercom-delivery-attempts"] == "2"
    assert headers["intercom-notification-id"] == notification_id
    assert int(headers["hookstream-received-at"]) > 1_700_000_000_000


async def test_a_body_at_the_limit_reaches_the_raw_topic(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingest_settings(kafka_bootstrap, tmp_path)  # the default limit, 1 MiB
    await ensure_topics(settings)  # as deployments do: room for the largest body
    envelope = orjson.loads(notification())
    envelope["data"]["item"]["body"] = ""
    padding = settings.topics.max_body_bytes - len(orjson.dumps(envelope))
    envelope["data"]["item"]["body"] = "x" * padding
    body = orjson.dumps(envelope)
    assert len(body) == settings.topics.max_body_bytes
    async with ingest_client(settings) as client:
        response = await client.post(URL, content=body, headers=signed_headers(body))
        assert response.status_code == 200, response.text
        records = await read_topic(kafka_bootstrap, settings.topics.raw, expect=1)
        assert {r.value for r in records} == {body}  # twice if a slow ack had it spooled too
        assert (await client.admin.get("/readyz")).json()["kafka"] == "up"


SAMPLES = sorted(p.name for p in EXAMPLES.glob("*.json"))


def test_every_sample_payload_is_exercised() -> None:
    assert len(SAMPLES) >= 8, f"Intercom's samples are missing from {EXAMPLES}"


@pytest.mark.parametrize("example", SAMPLES)
async def test_real_intercom_payloads_are_accepted_byte_for_byte(
    kafka_bootstrap: str, tmp_path: Path, example: str
) -> None:
    settings = ingest_settings(kafka_bootstrap, tmp_path)
    body = (EXAMPLES / example).read_bytes()
    async with ingest_client(settings) as client:
        response = await client.post(URL, content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text
    records = await read_topic(kafka_bootstrap, settings.topics.raw, expect=1)
    assert [r.value for r in records] == [body]
    envelope = orjson.loads(body)
    if envelope["id"] is None:  # ping: keyed by a synthetic id, no notification-id header
        assert records[0].key.startswith(b"ping-")
        assert "intercom-notification-id" not in decode_headers(records[0].headers)
    else:
        assert records[0].key == envelope["id"].encode()


async def test_refused_requests_say_why_and_store_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingest_settings(kafka_bootstrap, tmp_path, hookstream_max_body_bytes=4096)
    good = notification()
    not_json = b"{not json"
    not_notification = orjson.dumps({"type": "something_else", "id": "x", "topic": "t"})
    null_id = notification("conversation.user.created", id=None)
    too_large = notification(padding="x" * 5000)
    cases = [
        (good, {"Content-Type": "application/json"}, 401, "signature_missing"),
        (good, {"X-Hub-Signature": intercom_signature(good, "wrong")}, 401, "signature_invalid"),
        (not_json, signed_headers(not_json), 400, "not_a_notification"),
        (not_notification, signed_headers(not_notification), 400, "not_a_notification"),
        (null_id, signed_headers(null_id), 400, "not_a_notification"),
        (too_large, signed_headers(too_large), 413, "body_too_large"),
    ]
    async with ingest_client(settings) as client:
        for body, headers, status, code in cases:
            response = await client.post(URL, content=body, headers=headers)
            assert response.status_code == status, (code, response.text)
            assert response.headers["content-type"] == "application/json"
            error = response.json()["error"]
            assert error["code"] == code
            assert error["message"]
        # and a valid one afterwards goes through, alone
        response = await client.post(URL, content=good, headers=signed_headers(good))
        assert response.status_code == 200
    records = await read_topic(kafka_bootstrap, settings.topics.raw, expect=1)
    assert [r.value for r in records] == [good]


async def test_head_validates_the_url_and_health_endpoints_answer(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingest_settings(kafka_bootstrap, tmp_path)
    async with ingest_client(settings) as client:
        assert (await client.head(URL)).status_code == 200
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.admin.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["kafka"] == "up"
        body = notification()
        await client.post(URL, content=body, headers=signed_headers(body))
        metrics = (await client.admin.get("/metrics")).text
    assert 'hookstream_ingest_requests_total{endpoint="/webhooks/intercom",outcome="accepted"}' in (
        metrics
    )
    assert "hookstream_ingest_spool_depth 0.0" in metrics
    assert "hookstream_ingest_produce_latency_seconds_bucket" in metrics


def _request_durations(exposition: str) -> dict[tuple[str, str], dict[str, float]]:
    """{(endpoint, outcome): {le: cumulative count}} of the request-duration histogram."""
    (family,) = (
        f
        for f in text_string_to_metric_families(exposition)
        if f.name == "hookstream_ingest_request_duration_seconds"
    )
    buckets: dict[tuple[str, str], dict[str, float]] = {}
    for sample in family.samples:
        if sample.name.endswith("_bucket"):
            series = (sample.labels["endpoint"], sample.labels["outcome"])
            buckets.setdefault(series, {})[sample.labels["le"]] = sample.value
    return buckets


async def test_answer_times_are_a_histogram_per_endpoint_and_status_with_the_alerting_buckets(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = ingest_settings(kafka_bootstrap, tmp_path)
    async with ingest_client(settings) as client:
        before = _request_durations((await client.admin.get("/metrics")).text)
        body = notification()
        assert (await client.post(URL, content=body, headers=signed_headers(body))).is_success
        assert (await client.post(URL, content=body)).status_code == 401  # unsigned
        assert (await client.post("/events", json={})).status_code == 401  # no token
        await client.get("/healthz")  # not timed: probes would drown the answers
        after = _request_durations((await client.admin.get("/metrics")).text)
    grew = {
        series: buckets["+Inf"] - before.get(series, {}).get("+Inf", 0)
        for series, buckets in after.items()
    }
    assert {series: n for series, n in grew.items() if n} == {
        (URL, "200"): 1,
        (URL, "401"): 1,
        ("/events", "401"): 1,
    }
    for buckets in after.values():  # what the latency alert and the dashboard resolve
        assert {"0.05", "0.1", "0.25", "0.5", "1.0", "5.0"} <= buckets.keys()


async def test_rotated_secrets_are_both_accepted(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = ingest_settings(
        kafka_bootstrap, tmp_path, intercom_client_secrets=["next-client-secret-0123"]
    )
    first, second = notification(), notification()
    async with ingest_client(settings) as client:
        old = await client.post(URL, content=first, headers=signed_headers(first, SECRET))
        new = await client.post(
            URL, content=second, headers=signed_headers(second, "next-client-secret-0123")
        )
    assert (old.status_code, new.status_code) == (200, 200)
    records = await read_topic(kafka_bootstrap, settings.topics.raw, expect=2)
    assert sorted(r.value for r in records) == sorted([first, second])
