"""Where each notification goes: the default `<prefix><topic>`, or a YAML routes file.

Routes file (`HOOKSTREAM_ROUTES_FILE`)::

    # The first rule that matches the notification wins: its Intercom topic (`match`) and,
    # if the rule says, its workspace (`workspace`, the notification's `app_id`).
    routes:
      - match: "conversation.*"           # * any characters (dots too), ? one, [ab] a set
        workspace: "ecahpwf5"             # the same wildcards; absent: every workspace
        to: ["acme.conversations"]
      - workspace: "test-*"               # no `match`: every topic of these workspaces
        drop: true
      - match: "conversation.admin.*"
        to: ["support.conversations", "{default}"]
      - match: "contact.*.deleted"
        to: ["crm.deletions"]
      - match: "ping"
        drop: true
    # Notifications no rule matches: `route` (the default) sends them to <prefix><topic>,
    # `drop` drops them.
    unmatched: route

In a destination, `{default}` is `<prefix><topic>`, `{topic}` the Intercom topic and, in a
rule with `workspace`, `{workspace}` the notification's workspace. A rule with `workspace`
never matches a notification that names none.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from hookstream.core.contract import routed_topic
from hookstream.streams.errors import RouteFailed, RoutesFileError

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
_PLACEHOLDERS = frozenset({"topic", "default", "workspace"})
_CACHE_LIMIT = 16384  # (topic, workspace) pairs: many workspaces times their topics


def is_valid_topic_name(name: str) -> bool:
    """Whether Kafka accepts `name` as a topic name."""
    return bool(_TOPIC_NAME.fullmatch(name)) and name not in {".", ".."}


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str | None = Field(None, min_length=1)
    workspace: str | None = Field(None, min_length=1)
    to: tuple[str, ...] = ()
    drop: bool = False

    @field_validator("to")
    @classmethod
    def _check_destinations(cls, destinations: tuple[str, ...]) -> tuple[str, ...]:
        for destination in destinations:
            fields = {name for _, name, _, _ in string.Formatter().parse(destination) if name}
            if unknown := fields - _PLACEHOLDERS:
                raise ValueError(f"unknown placeholder {sorted(unknown)} in {destination!r}")
            if not fields and not is_valid_topic_name(destination):
                raise ValueError(f"{destination!r} is not a valid Kafka topic name")
        return destinations

    @model_validator(mode="after")
    def _to_or_drop(self) -> _Rule:
        if self.match is None and self.workspace is None:
            raise ValueError("a rule needs `match` (Intercom topics), `workspace`, or both")
        if self.drop == bool(self.to):
            raise ValueError("a rule needs either `to` or `drop: true`")
        if self.workspace is None and any("{workspace}" in d for d in self.to):
            raise ValueError("`{workspace}` is only known in a rule with `workspace`")
        return self


class _RoutesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routes: list[_Rule] = []
    unmatched: Literal["route", "drop"] = "route"


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a route table: a pattern of Intercom topics, optionally one of workspaces
    (None: any, or none), and its destinations (none: drop)."""

    pattern: str
    destinations: tuple[str, ...]
    workspace: str | None = None

    def matches(self, intercom_topic: str, workspace: str | None) -> bool:
        """Whether a notification of this topic, from this workspace, takes this rule."""
        if self.workspace is not None and (
            workspace is None or not fnmatchcase(workspace, self.workspace)
        ):
            return False
        return fnmatchcase(intercom_topic, self.pattern)

    def __str__(self) -> str:
        where = "" if self.workspace is None else f" (workspace {self.workspace})"
        return f"{self.pattern}{where} -> {', '.join(self.destinations) or '(dropped)'}"


class RouteTable:
    """Resolves an Intercom topic (and workspace) to the Kafka topics it is routed to (none:
    dropped)."""

    def __init__(
        self, prefix: str, rules: Iterable[Rule] = (), *, route_unmatched: bool = True
    ) -> None:
        self.prefix = prefix
        self.rules = tuple(rules)
        self.route_unmatched = route_unmatched
        # Without workspace rules the workspace changes nothing: cache by topic alone.
        self._by_workspace = any(rule.workspace is not None for rule in self.rules)
        self._cache: dict[tuple[str, str | None], tuple[str, ...]] = {}

    def destinations(self, intercom_topic: str, workspace: str | None = None) -> tuple[str, ...]:
        """The topics a notification of `intercom_topic` from `workspace` (its `app_id`, None
        when it names none) goes to; empty when it is dropped.

        Raises `RouteFailed` when a destination would not be a valid topic name.
        """
        key = (intercom_topic, workspace if self._by_workspace else None)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        resolved = self._resolve(intercom_topic, workspace)
        if len(self._cache) >= _CACHE_LIMIT:  # both come from the payload: bound the cache
            self._cache.clear()
        self._cache[key] = resolved
        return resolved

    def static_destinations(self) -> set[str]:
        """The destinations that do not depend on the topic (to create them at start)."""
        return {
            destination
            for rule in self.rules
            for destination in rule.destinations
            if "{" not in destination
        }

    def _resolve(self, intercom_topic: str, workspace: str | None) -> tuple[str, ...]:
        default = routed_topic(self.prefix, intercom_topic)
        for rule in self.rules:
            if rule.matches(intercom_topic, workspace):
                targets = [
                    d.format(topic=intercom_topic, default=default, workspace=workspace or "")
                    for d in rule.destinations
                ]
                break
        else:
            targets = [default] if self.route_unmatched else []
        for target in targets:
            if not is_valid_topic_name(target):
                raise RouteFailed(f"{target!r} is not a valid Kafka topic name")
        return tuple(dict.fromkeys(targets))  # each destination once, in order


def route_table_from_mapping(
    prefix: str, document: Mapping[str, object], source: str = "the routes document"
) -> RouteTable:
    """A route table from a parsed routes document (raises `RoutesFileError`, naming
    `source` and each refused entry)."""
    try:
        parsed = _RoutesFile.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(_problem(document, error) for error in exc.errors())
        raise RoutesFileError(f"invalid routes in {source}: {problems}") from exc
    rules = [
        Rule(rule.match or "*", () if rule.drop else rule.to, rule.workspace)
        for rule in parsed.routes
    ]
    return RouteTable(prefix, rules, route_unmatched=parsed.unmatched == "route")


def _problem(document: Mapping[str, object], error: ErrorDetails) -> str:
    """One validation error, saying which entry it is about: `routes[2] (match
    "conversation.*", workspace "abc")`, then the field within it."""
    location = list(error["loc"])
    where = ".".join(str(part) for part in location) or "the document"
    rules = document.get("routes")
    if location[:1] == ["routes"] and len(location) > 1 and isinstance(rules, list):
        index = location[1]
        entry = rules[index] if isinstance(index, int) and index < len(rules) else None
        named = (
            [f"{key} {entry[key]!r}" for key in ("match", "workspace") if key in entry]
            if isinstance(entry, dict)
            else []
        )
        where = f"routes[{index}]" + (f" ({', '.join(named)})" if named else "")
        where += "".join(f".{part}" for part in location[2:])
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}"


def load_routes(prefix: str, path: Path | None) -> RouteTable:
    """The route table of the settings: the routes file at `path`, or the default routing."""
    if path is None:
        return RouteTable(prefix)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RoutesFileError(f"cannot read routes file {path}: {exc}") from exc
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise RoutesFileError(f"routes file {path} must be a mapping with `routes:`")
    return route_table_from_mapping(prefix, document, f"routes file {path}")
