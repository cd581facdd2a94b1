"""Where each Intercom topic goes: the default `<prefix><topic>`, or a YAML routes file.

Routes file (`HOOKSTREAM_ROUTES_FILE`)::

    # The first rule whose pattern matches the Intercom topic wins.
    routes:
      - match: "conversation.admin.*"     # * any characters (dots too), ? one, [ab] a set
        to: ["support.conversations", "{default}"]
      - match: "contact.*.deleted"
        to: ["crm.deletions"]
      - match: "ping"
        drop: true
    # Topics no rule matches: `route` (the default) sends them to <prefix><topic>, `drop`
    # drops them.
    unmatched: route

In a destination, `{default}` is `<prefix><topic>` and `{topic}` is the Intercom topic.
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

from hookstream.core.contract import routed_topic
from hookstream.streams.errors import RouteFailed, RoutesFileError

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
_PLACEHOLDERS = frozenset({"topic", "default"})
_CACHE_LIMIT = 4096


def is_valid_topic_name(name: str) -> bool:
    """Whether Kafka accepts `name` as a topic name."""
    return bool(_TOPIC_NAME.fullmatch(name)) and name not in {".", ".."}


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str = Field(min_length=1)
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
        if self.drop == bool(self.to):
            raise ValueError(f"rule {self.match!r} needs either `to` or `drop: true`")
        return self


class _RoutesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routes: list[_Rule] = []
    unmatched: Literal["route", "drop"] = "route"


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a route table: a pattern and its destinations (none: drop)."""

    pattern: str
    destinations: tuple[str, ...]


class RouteTable:
    """Resolves an Intercom topic to the Kafka topics it is routed to (none: dropped)."""

    def __init__(
        self, prefix: str, rules: Iterable[Rule] = (), *, route_unmatched: bool = True
    ) -> None:
        self.prefix = prefix
        self.rules = tuple(rules)
        self.route_unmatched = route_unmatched
        self._cache: dict[str, tuple[str, ...]] = {}

    def destinations(self, intercom_topic: str) -> tuple[str, ...]:
        """The topics a notification of `intercom_topic` goes to; empty when it is dropped.

        Raises `RouteFailed` when a destination would not be a valid topic name.
        """
        cached = self._cache.get(intercom_topic)
        if cached is not None:
            return cached
        resolved = self._resolve(intercom_topic)
        if len(self._cache) >= _CACHE_LIMIT:  # topics come from the payload: bound the cache
            self._cache.clear()
        self._cache[intercom_topic] = resolved
        return resolved

    def static_destinations(self) -> set[str]:
        """The destinations that do not depend on the topic (to create them at start)."""
        return {
            destination
            for rule in self.rules
            for destination in rule.destinations
            if "{" not in destination
        }

    def _resolve(self, intercom_topic: str) -> tuple[str, ...]:
        default = routed_topic(self.prefix, intercom_topic)
        for rule in self.rules:
            if fnmatchcase(intercom_topic, rule.pattern):
                targets = [
                    d.format(topic=intercom_topic, default=default) for d in rule.destinations
                ]
                break
        else:
            targets = [default] if self.route_unmatched else []
        for target in targets:
            if not is_valid_topic_name(target):
                raise RouteFailed(f"{target!r} is not a valid Kafka topic name")
        return tuple(dict.fromkeys(targets))  # each destination once, in order


def route_table_from_mapping(prefix: str, document: Mapping[str, object]) -> RouteTable:
    """A route table from a parsed routes document (raises `RoutesFileError`)."""
    try:
        parsed = _RoutesFile.model_validate(document)
    except ValidationError as exc:
        raise RoutesFileError(f"invalid routes: {exc}") from exc
    rules = [Rule(rule.match, () if rule.drop else rule.to) for rule in parsed.routes]
    return RouteTable(prefix, rules, route_unmatched=parsed.unmatched == "route")


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
    return route_table_from_mapping(prefix, document)
