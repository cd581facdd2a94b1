"""The sandbox's state: config, rate limiter, failure injection and recorder, under one owner.

The HTTP layer (`hookstream.sandbox.app`) is a thin shell over this; tests reach it through the API.
"""

from __future__ import annotations

import random
from typing import Any

from hookstream.sandbox.config import DEFAULT_VERSION, KNOWN_VERSIONS, SandboxConfig
from hookstream.sandbox.errors import NotAcceptable, Unauthorized, VersionInvalid
from hookstream.sandbox.faults import FaultInjector
from hookstream.sandbox.ratelimit import Clock, FixedWindowLimiter
from hookstream.sandbox.recorder import Recorder

_JSON_MEDIA_RANGES = ("application/json", "application/*", "*/*")


class Sandbox:
    """Everything one sandbox process knows."""

    def __init__(self, config: SandboxConfig, clock: Clock, rng: random.Random) -> None:
        self.config = config
        self.clock = clock
        self.limiter = FixedWindowLimiter(config.window_limit, config.window_seconds, clock)
        self.faults = FaultInjector(rng)
        self.recorder = Recorder(config.max_recorded)

    def check_auth(self, authorization: str | None) -> None:
        """Refuse a call without `Authorization: Bearer <the configured token>`."""
        expected = f"Bearer {self.config.access_token}"
        if authorization is None or authorization.strip() != expected:
            raise Unauthorized("Access Token Invalid")

    @staticmethod
    def check_accept(accept: str | None) -> None:
        """Refuse a call whose Accept header does not allow JSON (Intercom answers 406)."""
        if accept is None:
            raise NotAcceptable("An Accept header of application/json is required")
        for media_range in accept.split(","):
            media_type = media_range.split(";", 1)[0].strip().lower()
            if media_type in _JSON_MEDIA_RANGES:
                return
        raise NotAcceptable(f"Cannot answer with any of: {accept}")

    @staticmethod
    def check_version(version: str | None) -> str:
        """The Intercom-Version of the call (the app's default when absent)."""
        if version is None:
            return DEFAULT_VERSION
        if version.strip() not in KNOWN_VERSIONS:
            raise VersionInvalid("The requested version could not be found")
        return version.strip()

    def configure(self, changes: dict[str, Any]) -> SandboxConfig:
        """Apply a validated partial update of the config (raises pydantic's ValidationError)."""
        self.config = self.config.updated(changes)
        self.limiter.reconfigure(self.config.window_limit, self.config.window_seconds)
        self.recorder.max_recorded = self.config.max_recorded
        return self.config

    def reset(self) -> None:
        """Forget accepted events, counters and windows; keep the config."""
        self.recorder.reset()
        self.limiter.reset()

    def stats(self) -> dict[str, Any]:
        """Counters, per-window counts and the config, as JSON."""
        current = self.limiter.peek()
        return {
            **self.recorder.stats(),
            "current_window": {
                "limit": current.limit,
                "remaining": current.remaining,
                "reset": current.reset,
            },
            "windows": [window.as_dict() for window in self.limiter.windows()],
            "config": self.config.model_dump(),
        }
