"""schemathesis over the ingest's own OpenAPI schema, against a real `hookstream ingest`
on the real broker: whatever it is sent, it never answers 500, and every refusal is a JSON
error with a status the schema documents. Half the webhook bodies are signed correctly, so
the fuzzing reaches past the signature check."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, reject, settings
from schemathesis import Case
from schemathesis.openapi import from_url

from tests.support.ingest import start_ingest
from tests.support.kafka import unique_name

pytestmark = pytest.mark.integration
SECRET = "fuzz-client-secret-0123"
TOKEN = "fuzz-api-token-0123456"
EXAMPLES_PER_OPERATION = 60


@pytest.fixture(scope="module")
def ingest_urls(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """The webhook port's and the admin port's URLs of a running `hookstream ingest`."""
    work: Path = tmp_path_factory.mktemp("fuzz-ingest")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "INTERCOM_CLIENT_SECRET": SECRET,
        "HOOKSTREAM_API_TOKEN": TOKEN,
        "HOOKSTREAM_SPOOL_PATH": str(work / "spool.sqlite3"),
        "HOOKSTREAM_RAW_TOPIC": unique_name("fuzz.raw"),
        "HOOKSTREAM_DATA_EVENTS_TOPIC": unique_name("fuzz.events"),
        "HOOKSTREAM_MAX_BODY_BYTES": "65536",
        "HOOKSTREAM_LOG_LEVEL": "warning",
    }
    ingest = start_ingest(env, work / "ingest.log", ready="/readyz")
    try:
        yield ingest.url, ingest.admin_url
    finally:
        ingest.process.terminate()
        ingest.process.wait(timeout=30)


def test_no_input_yields_a_500_and_every_refusal_is_documented_json(
    ingest_urls: tuple[str, str],
) -> None:
    ingest_url, admin_url = ingest_urls
    schema = from_url(f"{admin_url}/openapi.json")  # the admin port describes the webhook port
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in operations} == {
        ("POST", "/webhooks/intercom"),
        ("HEAD", "/webhooks/intercom"),
        ("POST", "/events"),
        ("GET", "/healthz"),
    }
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Case) -> None:
            _send_and_check(case, ingest_url)

        check()


def _send_and_check(case: Case, ingest_url: str) -> None:
    headers = dict(case.headers or {})
    content: bytes | None = None
    if case.body is not None and not isinstance(case.body, schemathesis.core.NotSet):
        content = json.dumps(case.body).encode()
        headers["Content-Type"] = "application/json"
        signed = hashlib.sha256(content).digest()[0] % 2 == 0
        if case.path == "/webhooks/intercom" and signed:
            digest = hmac.new(SECRET.encode(), content, hashlib.sha1).hexdigest()
            headers["X-Hub-Signature"] = f"sha1={digest}"
        if case.path == "/events" and signed:
            headers["Authorization"] = f"Bearer {TOKEN}"
    try:
        response = httpx.request(
            case.method,
            ingest_url + case.formatted_path,
            params=case.query,
            headers={k: str(v) for k, v in headers.items()},
            content=content,
            timeout=10,
        )
    except httpx.LocalProtocolError:
        reject()  # not a valid HTTP request (e.g. a header ending in whitespace): unsendable
    assert response.status_code != 500, response.text
    documented = set(case.operation.definition.raw.get("responses", {})) | {"422"}
    if case.method.upper() != "HEAD":
        assert str(response.status_code) in documented, (response.status_code, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()
