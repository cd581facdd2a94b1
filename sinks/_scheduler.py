"""Per-workspace state of the pipeline: each workspace's token, rate budget, calls and records
in flight, queue of held records, and whether Intercom refused its token (parked).

`Workspaces` resolves a record's `intercom-app-id` header to a `WorkspaceState`:
- without a tokens file the sink has one workspace (INTERCOM_ACCESS_TOKEN) and every record
  goes to it, header or not, as before workspaces existed;
- with one, a record without the header goes to INTERCOM_ACCESS_TOKEN's workspace (when set)
  and a record with it to the file's entry; a workspace in neither has no state (the
  pipeline dead-letters its records with `no_token_for_workspace`).

States are kept for the life of the process once created (at most one per workspace of the
file, plus the default one): a budget forgotten while idle would forget the window's calls.
When the file changes, `update` swaps each state's token; a parked workspace whose token
changed (or that left the file) is resumed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from hookstream.sinks.deadletter import SourceRecord
from hookstream.sinks.ratelimit import RateBudget
from hookstream.sinks.workspaces import Workspace

DEFAULT_KEY = ""
"""The state key of INTERCOM_ACCESS_TOKEN's workspace."""


@dataclass(eq=False, slots=True)
class WorkspaceState:
    """One workspace as the pipeline sees it."""

    key: str
    label: str
    has_token: bool
    workspace: Workspace | None
    """What the client sends as: None for the default workspace (the client's own token)."""
    budget: RateBudget
    calls: asyncio.Semaphore
    queue: deque[SourceRecord] = field(default_factory=deque)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    """Its records' tasks not yet done: how many it has in flight."""
    denied: str | None = None
    """Why Intercom refused the token, while the workspace is parked."""
    denied_fingerprint: str | None = None
    resumed: asyncio.Event = field(default_factory=asyncio.Event)


class Workspaces:
    """The workspaces the pipeline sends for, and their states (see the module doc)."""

    def __init__(
        self,
        *,
        default: bool,
        named: Mapping[str, Workspace] | None,
        default_budget: RateBudget,
        new_budget: Callable[[], RateBudget],
        concurrency: int,
    ) -> None:
        self._default = default
        self._named: Mapping[str, Workspace] | None = named
        self._new_budget = new_budget
        self._concurrency = concurrency
        self._states: dict[str, WorkspaceState] = {}
        self._default_budget = default_budget

    @property
    def multi(self) -> bool:
        """Whether a tokens file names the workspaces."""
        return self._named is not None

    def __iter__(self) -> Iterator[WorkspaceState]:
        return iter(list(self._states.values()))

    def known(self) -> int:
        """Workspaces the sink has a token for."""
        return int(self._default) + (len(self._named) if self._named is not None else 0)

    def state_for(self, app_id: str | None) -> WorkspaceState | None:
        """The state of the record's workspace; None when the sink has no token for it."""
        key = DEFAULT_KEY if self._named is None or not app_id else app_id
        state = self._states.get(key)
        if state is not None:
            return state
        if key == DEFAULT_KEY:
            if not self._default:
                return None
            state = self._new_state(key, None, self._default_budget)
        else:
            workspace = self._named.get(key) if self._named is not None else None
            if workspace is None:
                return None
            state = self._new_state(key, workspace, self._new_budget())
        self._states[key] = state
        return state

    def _new_state(
        self, key: str, workspace: Workspace | None, budget: RateBudget
    ) -> WorkspaceState:
        return WorkspaceState(
            key=key,
            label=workspace.label if workspace is not None else "default",
            has_token=True,
            workspace=workspace,
            budget=budget,
            calls=asyncio.Semaphore(self._concurrency),
        )

    def update(self, named: Mapping[str, Workspace]) -> list[WorkspaceState]:
        """A new tokens file: swap the tokens; returns the parked states to resume (their
        token changed, or they left the file and their records are to be dead-lettered)."""
        self._named = dict(named)
        resumed = []
        for state in self._states.values():
            if state.key == DEFAULT_KEY:
                continue
            workspace = self._named.get(state.key)
            state.workspace = workspace
            state.has_token = workspace is not None
            if state.denied is None:
                continue
            if workspace is None or workspace.fingerprint != state.denied_fingerprint:
                resumed.append(state)
        return resumed

    def parked(self) -> list[WorkspaceState]:
        """The workspaces whose token Intercom refused, by label."""
        return sorted(
            (s for s in self._states.values() if s.denied is not None), key=lambda s: s.label
        )
