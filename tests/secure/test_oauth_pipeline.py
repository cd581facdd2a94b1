"""The whole pipeline on SASL_SSL + OAUTHBEARER: the broker checks each service's JWT against
the JWKS of a local OIDC provider and takes the principal from its `sub`; each service fetches
its tokens by client credentials (hookstream's OidcTokenProvider) and, as they expire during
the run (the broker ends a session when its token does), fetches new ones, while webhooks keep
flowing in and are routed exactly once and data events are delivered."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from hookstream.devtools.localkafka.security import BrokerSecurity
from hookstream.ops.acls import default_user
from tests.secure.conftest import API_TOKEN, TOKEN_SECONDS
from tests.secure.oidc import OidcProvider
from tests.support.ingest import notification, signed_headers

pytestmark = pytest.mark.integration

TOPIC = "contact.user.tag.created"


def _operator_tail(security: BrokerSecurity, bootstrap: str, expect: int) -> list[str]:
    """The ids on the routed topic (read_committed), read as the operator's user: stops once
    nothing more came for 5 s."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "HOOKSTREAM_"))
    } | security.client_settings(default_user("operator"), bootstrap)
    tailed = subprocess.run(
        [sys.executable, "-m", "hookstream.cli", "tail", f"intercom.{TOPIC}",
         "--from-beginning", "--max", str(expect + 1), "--timeout", "5", "--json"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert tailed.returncode == 0, tailed.stderr
    records = [orjson.loads(line) for line in tailed.stdout.splitlines()]
    return [record["value"]["id"] for record in records]


@pytest.mark.parametrize("secure_broker", ["oauth_broker"], indirect=True)
def test_the_pipeline_runs_on_oauthbearer_tokens_fetched_again_as_they_expire(
    secure_broker: tuple[str, BrokerSecurity],
    oidc_provider: OidcProvider,
    pipeline: dict[str, int],
    tmp_path: Path,
) -> None:
    bootstrap, security = secure_broker
    ingest = f"http://127.0.0.1:{pipeline['ingest']}"
    users = [default_user(service) for service in ("ingest", "worker", "sink")]
    first_tokens = {user: oidc_provider.tokens_for(user) for user in users}
    assert all(first_tokens.values()), first_tokens  # each started on a token of its own

    # Webhooks and data events keep coming for longer than a token lives.
    sent: list[str] = []
    events: list[dict[str, object]] = []
    until = time.monotonic() + TOKEN_SECONDS * 1.25
    while time.monotonic() < until:
        body = notification(TOPIC)
        accepted = httpx.post(
            f"{ingest}/webhooks/intercom", content=body, headers=signed_headers(body)
        )
        assert accepted.status_code == 200, accepted.text
        sent.append(orjson.loads(body)["id"])
        event = {"event_name": "oauth-plan", "created_at": int(time.time()), "user_id": "u-7"}
        event["metadata"] = {"n": len(events)}
        posted = httpx.post(
            f"{ingest}/events", json=event, headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        assert posted.status_code == 202, posted.text
        events.append(event)
        time.sleep(1)

    sandbox = f"http://127.0.0.1:{pipeline['sandbox']}"
    deadline = time.monotonic() + 30
    delivered: list[object] = []
    while time.monotonic() < deadline and len(delivered) < len(events):
        delivered = [e["event"] for e in httpx.get(f"{sandbox}/sandbox/accepted").json()["events"]]
        time.sleep(0.5)
    assert sorted(map(str, delivered)) == sorted(map(str, events))

    routed = _operator_tail(security, bootstrap, len(sent))
    assert sorted(routed) == sorted(sent)  # each once, none lost
    assert httpx.get(f"http://127.0.0.1:{pipeline['admin']}/readyz").json()["kafka"] == "up"

    # every service went on with a new token after its first one expired
    again = {user: oidc_provider.tokens_for(user) - first_tokens[user] for user in users}
    assert all(again.values()), again
    logs = " ".join(log.read_text() for log in tmp_path.glob("*.log"))
    assert not [secret for secret in security.passwords.values() if secret in logs]
