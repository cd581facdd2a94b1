"""The sandbox's state: config, rate limiter, failure injection and recorder, under one owner.

The HTTP layer (`hookstream.sandbox.app`) is a thin shell over this; tests reach it through the API.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hookstream.sandbox.config import DEFAULT_VERSION, KNOWN_VERSIONS, SandboxConfig
from hookstream.sandbox.errors import NotAcceptable, Unauthorized, VersionInvalid
from hookstream.sandbox.faults import FaultInjector
from hookstream.sandbox.ratelimit import Clock, FixedWindowLimiter
from hookstream.sandbox.recorder import Recorder

_JSON_MEDIA_RANGES = ("application/json", "application/*", "*/*")
DEFAULT_WORKSPACE = "default"
"""The workspace of the sandbox's `access_token`."""


@dataclass
class WorkspaceState:
    """One workspace's rate limiter and answers."""

    limiter: FixedWindowLimiter
    region: str = "us"
    by_status: Counter[int] = field(default_factory=Counter)

    def stats(self) -> dict[str, Any]:
        """Its counters and windows, as JSON."""
        return {
            "region": self.region,
            "calls": self.by_status.total(),
            "accepted": self.by_status.get(202, 0),
            "by_status": {str(status): n for status, n in sorted(self.by_status.items())},
            "windows": [window.as_dict() for window in self.limiter.windows()],
        }


class Sandbox:
    """Everything one sandbox process knows."""

    def __init__(self, config: SandboxConfig, clock: Clock, rng: random.Random) -> None:
        self.config = config
        self.clock = clock
        self.limiter = FixedWindowLimiter(config.window_limit, config.window_seconds, clock)
        self.faults = FaultInjector(rng)
        self.recorder = Recorder(config.max_recorded)
        self.workspaces: dict[str, WorkspaceState] = {}
        self._by_token: dict[str, str] = {}
        self._configure_workspaces()

    def identify(self, authorization: str | None) -> str | None:
        """The workspace whose token the call carries (revoked or not), or None."""
        if authorization is None:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme != "Bearer":
            return None
        if token == self.config.access_token:
            return DEFAULT_WORKSPACE
        return self._by_token.get(token)

    def check_auth(self, workspace: str | None) -> None:
        """Refuse a call without the token of a workspace, or with a revoked one's."""
        named = self.config.workspaces.get(workspace) if workspace is not None else None
        if workspace is None or (named is not None and named.revoked):
            raise Unauthorized("Access Token Invalid")

    def limiter_for(self, workspace: str | None) -> FixedWindowLimiter:
        """The rate limiter of `workspace` (the default one's when unknown)."""
        state = self.workspaces.get(workspace) if workspace is not None else None
        return state.limiter if state is not None else self.limiter

    def answered(self, status: int, workspace: str | None) -> None:
        """Count one answer, in all and for its workspace."""
        self.recorder.answered(status)
        state = self.workspaces.get(workspace) if workspace is not None else None
        if state is not None:
            state.by_status[status] += 1

    def _configure_workspaces(self) -> None:
        config = self.config
        kept = {DEFAULT_WORKSPACE: self.workspaces.get(DEFAULT_WORKSPACE)}
        kept |= {name: self.workspaces.get(name) for name in config.workspaces}
        states: dict[str, WorkspaceState] = {}
        for name, state in kept.items():
            named = config.workspaces.get(name)
            limit = config.window_limit
            if named is not None and named.window_limit is not None:
                limit = named.window_limit
            if name == DEFAULT_WORKSPACE:
                limiter = self.limiter
            elif state is None:
                limiter = FixedWindowLimiter(limit, config.window_seconds, self.clock)
            else:
                limiter = state.limiter
                limiter.reconfigure(limit, config.window_seconds)
            region = named.region if named is not None else "us"
            by_status = state.by_status if state is not None else Counter()
            states[name] = WorkspaceState(limiter, region, by_status)
        self.workspaces = states
        self._by_token = {named.token: name for name, named in config.workspaces.items()}

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
        self._configure_workspaces()
        self.recorder.max_recorded = self.config.max_recorded
        return self.config

    def configure_workspace(self, name: str, changes: dict[str, Any]) -> SandboxConfig:
        """Add a workspace or change some of its fields (token, region, window_limit,
        revoked); raises pydantic's ValidationError."""
        workspaces = {key: value.model_dump() for key, value in self.config.workspaces.items()}
        workspaces[name] = {**workspaces.get(name, {}), **changes}
        return self.configure({"workspaces": workspaces})

    def reset(self) -> None:
        """Forget accepted events, counters and windows; keep the config."""
        self.recorder.reset()
        self.limiter.reset()
        for state in self.workspaces.values():
            state.limiter.reset()
            state.by_status.clear()

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
            "workspaces": {name: state.stats() for name, state in self.workspaces.items()},
            "config": self.config.model_dump(),
        }
