"""A local OIDC provider for the OAUTHBEARER tests: a token endpoint that grants
client-credentials tokens (RS256 JWTs signed with PyJWT, `sub` the client id) and the JWKS the
broker checks them against. It serves from a thread of the test process and keeps a log of the
tokens it issued, so that a test can see each service fetch a new one."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from hookstream.devtools.localkafka.security import OAuthServer

AUDIENCE = "kafka"
KEY_ID = "hookstream-test-key"


@dataclass
class Issued:
    """One token the provider granted."""

    client_id: str
    at: float


@dataclass
class OidcProvider:
    """Grants tokens that live `lifetime` seconds to the `clients` (id -> secret)."""

    clients: dict[str, str] = field(repr=False)
    lifetime: int = 20
    issued: list[Issued] = field(default_factory=list)
    _key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        repr=False,
    )

    def jwks(self) -> dict[str, object]:
        """The public key set the broker fetches."""
        key = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {"keys": [key | {"kid": KEY_ID, "use": "sig", "alg": "RS256"}]}

    def grant(self, authorization: str, form: dict[str, list[str]], issuer: str) -> str | None:
        """A client-credentials token response (JSON), or None for an unknown client."""
        try:
            scheme, encoded = authorization.split(" ", 1)
            client_id, secret = base64.b64decode(encoded).decode().split(":", 1)
        except ValueError:
            return None
        if scheme != "Basic" or form.get("grant_type") != ["client_credentials"]:
            return None
        if self.clients.get(client_id) != secret:
            return None
        now = int(time.time())
        claims = {
            "iss": issuer,
            "sub": client_id,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": KEY_ID})
        self.issued.append(Issued(client_id, time.monotonic()))
        return json.dumps(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}
        )

    def tokens_for(self, client_id: str) -> int:
        """How many tokens `client_id` was granted so far."""
        return sum(1 for issued in self.issued if issued.client_id == client_id)


@contextmanager
def serving(provider: OidcProvider, reauth_ms: int) -> Iterator[OAuthServer]:
    """Serve `provider` on a free local port for a `with` block: the broker's `OAuthServer`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/jwks":
                self._answer(404, "{}")
                return
            self._answer(200, json.dumps(provider.jwks()))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = parse_qs(self.rfile.read(length).decode())
            answer = provider.grant(self.headers.get("Authorization", ""), form, issuer)
            if answer is None:
                self._answer(401, json.dumps({"error": "invalid_client"}))
            else:
                self._answer(200, answer)

        def _answer(self, status: int, body: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: pytest captures nothing useful from it."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield OAuthServer(
            jwks_url=f"{issuer}/jwks",
            token_url=f"{issuer}/token",
            issuer=issuer,
            audience=AUDIENCE,
            reauth_ms=reauth_ms,
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
