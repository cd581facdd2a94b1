"""Which token and which Intercom host serve a workspace: the tokens file and its watcher.

A public Intercom app calls the API with one OAuth token per installed workspace, each on its
workspace's regional host. The sink reads them from `HOOKSTREAM_SINK_WORKSPACE_TOKENS_FILE`,
a YAML (or JSON, which is YAML) file, typically a key of a mounted Kubernetes Secret:

    workspaces:
      abc123de:                 # the workspace id: Intercom's app_id, the record's
        token: dG9rOmFiYzEyM... #   `intercom-app-id` header
        region: eu              # us (default), eu or au
      f00ba4:
        token: dG9rOmYwMGJh...

`TokenFile.load()` reads it and refuses a malformed file with `WorkspaceTokensInvalid`, which
names the file and the entry at fault, never a token. `TokenWatcher` checks the file every
`HOOKSTREAM_SINK_WORKSPACE_TOKENS_POLL_SECONDS`: its identity is `os.stat` of the path, which
follows symlinks, so a Kubernetes projected Secret (updated by swapping the `..data` symlink
to a new directory) shows a new inode, and an edit in place a new mtime or size. A changed
file that does not parse keeps the last good mapping and logs `workspace_tokens_invalid`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from hookstream.core.logs import get_logger
from hookstream.core.settings import INTERCOM_REGION_BASE_URLS
from hookstream.sinks.errors import SinkError

log = get_logger(__name__)

Region = Literal["us", "eu", "au"]
# libyaml's safe loader when built in (ten thousand workspaces parse in a fraction of a second).
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class WorkspaceTokensInvalid(SinkError):
    """The workspace tokens file is missing, unreadable or malformed."""


@dataclass(frozen=True, slots=True)
class Workspace:
    """Where and as whom the sink calls Intercom for one workspace. `id` is None for the
    single workspace of INTERCOM_ACCESS_TOKEN."""

    id: str | None
    token: SecretStr
    base_url: str

    @property
    def fingerprint(self) -> str:
        """A short digest of the token, to tell a changed token from the same one (never
        logged with the token)."""
        return hashlib.sha256(self.token.get_secret_value().encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        """How logs and /readyz name it."""
        return self.id if self.id is not None else "default"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: SecretStr = Field(min_length=1)
    region: Region = "us"


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workspaces: dict[str, _Entry]


def parse_tokens(text: str, *, source: str, base_url: str | None = None) -> dict[str, Workspace]:
    """The workspaces of a tokens file's text. `base_url` (INTERCOM_API_BASE_URL) overrides
    every region's host (the sandbox). Raises `WorkspaceTokensInvalid` naming `source`."""
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        # Only the problem: the error's own text quotes the line, which may hold a token.
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise WorkspaceTokensInvalid(f"{source}: not YAML or JSON{where}: {problem}") from None
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(top)'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise WorkspaceTokensInvalid(f"{source}: {problems}") from None
    workspaces = {}
    for workspace_id, entry in parsed.workspaces.items():
        if not workspace_id.strip() or not entry.token.get_secret_value().strip():
            raise WorkspaceTokensInvalid(f"{source}: workspaces.{workspace_id}: empty id or token")
        host = base_url.rstrip("/") if base_url else INTERCOM_REGION_BASE_URLS[entry.region]
        token = SecretStr(entry.token.get_secret_value().strip())
        workspaces[workspace_id] = Workspace(workspace_id, token, host)
    return workspaces


@dataclass(frozen=True, slots=True)
class _Identity:
    device: int
    inode: int
    mtime_ns: int
    size: int


class TokenFile:
    """The tokens file at `path`: `load()` reads it, `changed()` says whether to read again."""

    def __init__(self, path: Path, base_url: str | None = None) -> None:
        self.path = path
        self._base_url = base_url
        self._seen: _Identity | None = None

    def _identity(self) -> _Identity | None:
        try:
            st = self.path.stat()  # follows the symlinks of a projected Secret
        except OSError:
            return None
        return _Identity(st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def changed(self) -> bool:
        """Whether the file (or what its symlinks point to) is not the one last loaded."""
        return self._identity() != self._seen

    def load(self) -> dict[str, Workspace]:
        """Read and parse the file (`WorkspaceTokensInvalid` when that fails)."""
        identity = self._identity()
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self._seen = identity
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            message = f"{self.path}: cannot read: {type(exc).__name__}: {why}"
            raise WorkspaceTokensInvalid(message) from None
        self._seen = identity
        return parse_tokens(text, source=str(self.path), base_url=self._base_url)


class TokenWatcher:
    """Polls a `TokenFile` and hands each good new mapping to `on_change`."""

    def __init__(
        self,
        file: TokenFile,
        on_change: Callable[[Mapping[str, Workspace]], None],
        every: float,
    ) -> None:
        self._file = file
        self._on_change = on_change
        self._every = every
        self._task: asyncio.Task[None] | None = None

    def check(self) -> bool:
        """Reload if the file changed; True when a new mapping was applied."""
        return self._file.changed() and self._apply(self._load())

    def _load(self) -> dict[str, Workspace] | WorkspaceTokensInvalid:
        try:
            return self._file.load()
        except WorkspaceTokensInvalid as exc:
            return exc

    def _apply(self, loaded: dict[str, Workspace] | WorkspaceTokensInvalid) -> bool:
        if isinstance(loaded, WorkspaceTokensInvalid):
            log.error("workspace_tokens_invalid", file=str(self._file.path), error=str(loaded))
            return False
        self._on_change(loaded)
        log.info("workspace_tokens_loaded", file=str(self._file.path), workspaces=len(loaded))
        return True

    def start(self) -> None:
        """Poll in a task of the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._poll(), name="sink-workspace-tokens")

    async def stop(self) -> None:
        """Stop polling (harmless when not started)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            if self._file.changed():  # a stat; parsing a large file happens off the loop
                self._apply(await asyncio.to_thread(self._load))
