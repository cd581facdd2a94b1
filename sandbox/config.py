"""What the sandbox does: its rate limit, the token it accepts and the failures it injects.

One `SandboxConfig` is built by `hookstream sandbox` (or a test) and may be changed at run
time through `POST /sandbox/config`, which validates a partial update against this model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Intercom: 10,000 calls a minute per app, 25,000 per workspace, enforced in 10-second windows
# (a sixth of the minute's budget per window).
WINDOW_SECONDS = 10
APP_LIMIT_PER_MINUTE = 10_000
WORKSPACE_LIMIT_PER_MINUTE = 25_000
APP_WINDOW_LIMIT = APP_LIMIT_PER_MINUTE * WINDOW_SECONDS // 60  # 1,666
WORKSPACE_WINDOW_LIMIT = WORKSPACE_LIMIT_PER_MINUTE * WINDOW_SECONDS // 60  # 4,166

DEFAULT_ACCESS_TOKEN = "sandbox-token"  # noqa: S105 - a public fixed token of a local fake

# The versions Intercom's OpenAPI descriptions publish (`intercom_version` enum of 2.14, plus
# 2.15 and 2.16 from the spec repository) and "Unstable".
KNOWN_VERSIONS = frozenset(
    [f"1.{minor}" for minor in range(5)] + [f"2.{minor}" for minor in range(17)] + ["Unstable"]
)
DEFAULT_VERSION = "2.14"


class WorkspaceConfig(BaseModel):
    """One more workspace of a public app: its own token, rate limit and region. The same
    shape as an entry of the sink's HOOKSTREAM_SINK_WORKSPACE_TOKENS_FILE, plus the
    sandbox's own `window_limit` and `revoked`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    token: str = Field(min_length=1, description="The workspace's bearer token.")
    region: Literal["us", "eu", "au"] = Field("us", description="Reported in the stats.")
    window_limit: int | None = Field(
        None, ge=0, description="Its calls per window; None: the sandbox's `window_limit`."
    )
    revoked: bool = Field(False, description="Answer its token with 401 (app uninstalled).")


class SandboxConfig(BaseModel):
    """The sandbox's behaviour. Every field can be changed at run time."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    window_limit: int | None = Field(
        APP_WINDOW_LIMIT,
        ge=0,
        description="Calls allowed per window; None for no limit.",
    )
    window_seconds: int = Field(
        WINDOW_SECONDS, ge=1, description="Length of a fixed rate-limit window, in seconds."
    )
    access_token: str = Field(
        DEFAULT_ACCESS_TOKEN, min_length=1, description="The one bearer token accepted."
    )
    error_rate: float = Field(
        0.0, ge=0, le=1, description="Share of calls answered with `error_status`."
    )
    error_status: int = Field(
        500, ge=400, le=599, description="Status of injected errors and of `fail_next`."
    )
    fail_next: int = Field(
        0, ge=0, description="Answer the next N calls with `error_status` (a burst)."
    )
    latency_seconds: float = Field(0.0, ge=0, description="Added to every API call.")
    timeout_rate: float = Field(
        0.0, ge=0, le=1, description="Share of calls that hang for `hang_seconds`, then 504."
    )
    hang_seconds: float = Field(
        30.0, gt=0, description="How long a hanging call hangs (longer than a client timeout)."
    )
    workspaces: dict[str, WorkspaceConfig] = Field(
        default_factory=dict,
        description="More workspaces by id, each with its own token, limit and region (the "
        "`access_token` one is the workspace `default`).",
    )
    max_recorded: int = Field(
        1_000_000, ge=1, description="Accepted events kept in memory (oldest dropped first)."
    )

    def updated(self, changes: dict[str, Any]) -> SandboxConfig:
        """A copy with `changes` applied and validated (unknown fields are refused)."""
        return SandboxConfig.model_validate({**self.model_dump(), **changes})
