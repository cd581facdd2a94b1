"""OAUTHBEARER token providers for aiokafka (and Faust, through `OAuthCredentials`).

    OidcTokenProvider    OIDC client-credentials tokens from a token endpoint
    MskIamTokenProvider  AWS MSK IAM tokens, signed by AWS's own library

Both cache the token and fetch a new one before it expires (at 80% of its lifetime, and at
least a minute early), so a long-lived connection re-authenticates with a valid token. A
refusal by the token endpoint is a `KafkaAuthFailed` naming the setting to fix; the client
secret never appears in a message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
from aiokafka.abc import AbstractTokenProvider
from pydantic import SecretStr

from hookstream.core.errors import KafkaAuthFailed

_EARLY_SECONDS = 60.0
_REFRESH_AT = 0.8
_TIMEOUT = httpx.Timeout(10.0)


class _CachedToken(AbstractTokenProvider):  # type: ignore[misc]  # aiokafka is untyped
    """A token fetched by `_fetch` (token, lifetime in seconds), kept until shortly before it
    expires. `clock` is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._token: str | None = None
        self._refresh_after = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """The current token, fetched anew when it is about to expire."""
        async with self._lock:
            if self._token is None or self._clock() >= self._refresh_after:
                token, lifetime = await self._fetch()
                early = max(lifetime * (1 - _REFRESH_AT), min(_EARLY_SECONDS, lifetime / 2))
                self._token = token
                self._refresh_after = self._clock() + lifetime - early
            return self._token

    def _fetch(self) -> Awaitable[tuple[str, float]]:
        raise NotImplementedError


class OidcTokenProvider(_CachedToken):
    """Client-credentials tokens from an OIDC token endpoint."""

    def __init__(
        self,
        endpoint: str,
        client_id: str,
        client_secret: SecretStr,
        scope: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(clock)
        self._endpoint = endpoint
        self._client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._transport = transport

    async def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        auth = (self._client_id, self._client_secret.get_secret_value())
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=_TIMEOUT) as client:
                response = await client.post(self._endpoint, data=form, auth=auth)
        except httpx.HTTPError as exc:
            raise KafkaAuthFailed(
                f"cannot reach the OIDC token endpoint {self._endpoint}: {type(exc).__name__}",
                setting="KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL",
            ) from None
        if response.status_code in (400, 401, 403):
            raise KafkaAuthFailed(
                f"the OIDC token endpoint refused client {self._client_id!r}"
                f" ({response.status_code}): check KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET and"
                " KAFKA_SASL_OAUTHBEARER_CLIENT_ID",
                setting="KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET",
            )
        try:
            response.raise_for_status()
            body = response.json()
            return str(body["access_token"]), float(body.get("expires_in", 300))
        except (httpx.HTTPStatusError, ValueError, KeyError) as exc:
            raise KafkaAuthFailed(
                f"the OIDC token endpoint {self._endpoint} gave no token"
                f" ({response.status_code}, {type(exc).__name__})",
                setting="KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL",
            ) from None


class MskIamTokenProvider(_CachedToken):
    """AWS MSK IAM tokens for `region`, signed with the usual AWS credential chain."""

    def __init__(self, region: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self._region = region

    async def _fetch(self) -> tuple[str, float]:
        # Imported only where MSK is used; the library ships no type information.
        from aws_msk_iam_sasl_signer import (  # noqa: PLC0415
            MSKAuthTokenProvider,
        )

        try:
            token, expiry_ms = await asyncio.to_thread(
                MSKAuthTokenProvider.generate_auth_token, self._region
            )
        except Exception as exc:  # botocore's credential errors have no common root
            raise KafkaAuthFailed(
                f"cannot sign an MSK IAM token for {self._region}: {type(exc).__name__}"
                " (no AWS credentials?)",
                setting="AWS_REGION",
            ) from None
        return str(token), max(1.0, expiry_ms / 1000 - time.time())
