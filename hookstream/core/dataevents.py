"""Data events as Intercom's Data Events API takes them: validation, the request body, the
record key. One code path for both ways in (the ingest's `POST /events` and the sink reading
`HOOKSTREAM_DATA_EVENTS_TOPIC`), so an event the ingest accepts is one the sink can send.

Public API:
    validate_event(obj) -> DataEvent          one decoded JSON object; raises DataEventInvalid
    validate_events(objs, max_events=...) -> list[DataEvent]
                                              a JSON list of at most `max_events`, all or
                                              nothing; raises DataEventsInvalid with the errors
                                              of every item
    parse_event(raw) -> DataEvent             the bytes of a Kafka record (JSON, then as above)
    event_key(event) -> bytes                 the Kafka record key: the identifier, UTF-8

The rules, from Intercom's docs (see the shared INTERCOM.md):
    event_name   a non-empty string of at most 255 characters
    created_at   an integer, Unix seconds (a millisecond timestamp is refused, not guessed at)
    identifier   exactly one of `user_id`, `id` (Intercom's contact id, needed for leads) or
                 `email`, a non-empty string of at most 255 characters
    metadata     optional, a flat object of at most 10 keys (Intercom silently ignores keys past
                 the tenth: we refuse instead); each value one of the documented types:
                 string, number, date (key ending `_date`, integer Unix seconds), link (an
                 http/https URL string), rich link `{"url": <link>, "value": <string>}`,
                 monetary amount `{"amount": <integer cents > 0>, "currency": <ISO 4217 code>}`
    no other top-level field (Intercom's request schema has none)

Lengths: Intercom documents none for data events, so names, identifiers, metadata keys,
strings and a rich link's value are bounded at 255 characters, and links at 2,048. With 10
metadata keys, an event's JSON is then at most `MAX_EVENT_BYTES` (about 160 KB, every
character escaped), far below a topic's default `max.message.bytes` (1 MiB): Kafka never
refuses an accepted event for its size.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson

from hookstream.core.errors import DataEventInvalid, DataEventsInvalid, FieldError

__all__ = [
    "IDENTIFIER_FIELDS",
    "MAX_EVENT_BYTES",
    "MAX_LINK_CHARS",
    "MAX_METADATA_KEYS",
    "MAX_TEXT_CHARS",
    "DataEvent",
    "DataEventInvalid",
    "DataEventsInvalid",
    "FieldError",
    "Identity",
    "event_key",
    "parse_event",
    "validate_event",
    "validate_events",
]

IdentifierField = Literal["user_id", "id", "email"]
IDENTIFIER_FIELDS: tuple[IdentifierField, ...] = ("user_id", "id", "email")
MAX_METADATA_KEYS = 10
MAX_TEXT_CHARS = 255  # names, identifiers, metadata keys and strings (Intercom: undocumented)
MAX_LINK_CHARS = 2048  # a link or a rich link's url
_MAX_ESCAPED = 6  # bytes of one character in JSON at worst (a control character: \u0000)
# An event with every field at its longest and every character escaped, plus its punctuation.
MAX_EVENT_BYTES = (
    _MAX_ESCAPED * (3 * MAX_TEXT_CHARS + MAX_METADATA_KEYS * (2 * MAX_TEXT_CHARS + MAX_LINK_CHARS))
    + 4096
)
DEFAULT_MAX_EVENTS = 1000
# Unix seconds beyond this (the year 2286) are almost surely milliseconds.
MAX_UNIX_SECONDS = 9_999_999_999
_TOP_LEVEL = frozenset({"event_name", "created_at", "metadata", *IDENTIFIER_FIELDS})
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")

MetadataValue = str | int | float | dict[str, Any]
Identity = tuple[str, str, str, int]


@dataclass(frozen=True, slots=True)
class DataEvent:
    """A valid data event. `body()` is the JSON Intercom is sent; metadata keeps its order."""

    event_name: str
    created_at: int
    identifier_field: IdentifierField
    identifier: str
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The request body as a dict: event_name, created_at, the identifier, metadata."""
        body: dict[str, Any] = {
            "event_name": self.event_name,
            "created_at": self.created_at,
            self.identifier_field: self.identifier,
        }
        if self.metadata:
            body["metadata"] = dict(self.metadata)
        return body

    def body(self) -> bytes:
        """The request body of `POST /events`, JSON-encoded."""
        return orjson.dumps(self.as_dict())

    @property
    def identity(self) -> Identity:
        """What Intercom deduplicates on: (identifier field, identifier, name, created_at)."""
        return (self.identifier_field, self.identifier, self.event_name, self.created_at)


def event_key(event: DataEvent) -> bytes:
    """The Kafka record key of an event: its identifier, so one contact's events share a
    partition and keep their order."""
    return event.identifier.encode()


def parse_event(raw: bytes | str) -> DataEvent:
    """Decode a JSON record and validate it. Raises DataEventInvalid."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DataEventInvalid([FieldError("", f"not JSON: {exc}")]) from exc
    return validate_event(obj)


def validate_event(obj: object) -> DataEvent:
    """A DataEvent from one decoded JSON object. Raises DataEventInvalid listing every
    problem found, one FieldError per field."""
    errors: list[FieldError] = []
    if not isinstance(obj, Mapping):
        raise DataEventInvalid([FieldError("", f"must be a JSON object, got {_kind(obj)}")])
    for key in obj:
        if key not in _TOP_LEVEL:
            errors.append(FieldError(str(key), "unknown field (Intercom's data event has none)"))
    event_name = _check_event_name(obj, errors)
    created_at = _check_timestamp(obj.get("created_at"), "created_at", errors, required=True)
    identifier = _check_identifier(obj, errors)
    metadata = _check_metadata(obj.get("metadata"), errors)
    if errors:
        raise DataEventInvalid(errors)
    assert event_name is not None  # noqa: S101 - no errors means every part was found
    assert created_at is not None  # noqa: S101
    assert identifier is not None  # noqa: S101
    return DataEvent(event_name, created_at, identifier[0], identifier[1], metadata)


def validate_events(objs: object, *, max_events: int = DEFAULT_MAX_EVENTS) -> list[DataEvent]:
    """Every event of a JSON list of at most `max_events`, or none: raises DataEventsInvalid
    with the errors of each invalid item by its index (DataEventInvalid for a list that is
    empty, too long, or not a list)."""
    if isinstance(objs, Mapping):
        return [validate_event(objs)]
    if not isinstance(objs, Sequence) or isinstance(objs, str | bytes):
        raise DataEventInvalid([FieldError("", f"must be an event or a list, got {_kind(objs)}")])
    if not objs:
        raise DataEventInvalid([FieldError("", "the list is empty")])
    if len(objs) > max_events:
        raise DataEventInvalid(
            [FieldError("", f"the list has {len(objs)} events; at most {max_events} are accepted")]
        )
    events: list[DataEvent] = []
    failures: dict[int, list[FieldError]] = {}
    for index, obj in enumerate(objs):
        try:
            events.append(validate_event(obj))
        except DataEventInvalid as exc:
            failures[index] = exc.errors
    if failures:
        raise DataEventsInvalid(failures, total=len(objs))
    return events


def _kind(value: object) -> str:
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "a boolean"),
        ((int, float), "a number"),
        (str, "a string"),
        (Mapping, "an object"),
        (Sequence, "a list"),
    ]
    if value is None:
        return "null"
    return next((kind for cls, kind in kinds if isinstance(value, cls)), type(value).__name__)


def _check_event_name(obj: Mapping[str, Any], errors: list[FieldError]) -> str | None:
    if "event_name" not in obj:
        errors.append(FieldError("event_name", "is required"))
        return None
    name = obj["event_name"]
    if not isinstance(name, str):
        errors.append(FieldError("event_name", f"must be a string, got {_kind(name)}"))
        return None
    if not name.strip():
        errors.append(FieldError("event_name", "must not be empty"))
        return None
    if _too_long(name, MAX_TEXT_CHARS, "event_name", errors):
        return None
    return name


def _check_timestamp(
    value: object, path: str, errors: list[FieldError], *, required: bool
) -> int | None:
    if value is None and required:
        errors.append(FieldError(path, "is required (integer Unix seconds)"))
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(FieldError(path, f"must be an integer of Unix seconds, got {_kind(value)}"))
        return None
    if value < 0:
        errors.append(FieldError(path, "must not be negative"))
        return None
    if value > MAX_UNIX_SECONDS:
        errors.append(FieldError(path, "must be Unix seconds; this looks like milliseconds"))
        return None
    return value


def _check_identifier(
    obj: Mapping[str, Any], errors: list[FieldError]
) -> tuple[IdentifierField, str] | None:
    given = [name for name in IDENTIFIER_FIELDS if name in obj]
    if not given:
        errors.append(FieldError("user_id", "one of user_id, id or email is required"))
        return None
    if len(given) > 1:
        errors.append(FieldError(given[1], f"give exactly one identifier, got {', '.join(given)}"))
        return None
    name = given[0]
    value = obj[name]
    if not isinstance(value, str):
        errors.append(FieldError(name, f"must be a string, got {_kind(value)}"))
        return None
    if not value.strip():
        errors.append(FieldError(name, "must not be empty"))
    elif name == "email" and not _looks_like_email(value):
        errors.append(FieldError(name, "is not an email address"))
    elif not _too_long(value, MAX_TEXT_CHARS, name, errors):
        return name, value
    return None


def _looks_like_email(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return bool(at and local and domain) and not any(c.isspace() for c in value)


def _check_metadata(value: object, errors: list[FieldError]) -> dict[str, MetadataValue]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        errors.append(FieldError("metadata", f"must be an object, got {_kind(value)}"))
        return {}
    if len(value) > MAX_METADATA_KEYS:
        errors.append(
            FieldError(
                "metadata",
                f"has {len(value)} keys; Intercom keeps at most {MAX_METADATA_KEYS} "
                "(and silently drops the rest)",
            )
        )
    checked: dict[str, MetadataValue] = {}
    for key, item in value.items():
        path = f"metadata.{key}"
        if not isinstance(key, str) or not key:
            errors.append(FieldError(path, "metadata keys must be non-empty strings"))
            continue
        if _too_long(key, MAX_TEXT_CHARS, path, errors, what="key"):
            continue
        checked_value = _check_metadata_value(key, item, path, errors)
        if checked_value is not None:
            checked[key] = checked_value
    return checked


def _check_metadata_value(
    key: str, value: object, path: str, errors: list[FieldError]
) -> MetadataValue | None:
    if key.endswith("_date"):
        return _check_timestamp(value, path, errors, required=False)
    problem: str | None = None
    if isinstance(value, bool) or value is None:
        problem = f"{_kind(value)} is not a type Intercom documents for metadata"
    elif isinstance(value, str):
        is_link = value.lower().startswith(("http://", "https://"))
        if _too_long(value, MAX_LINK_CHARS if is_link else MAX_TEXT_CHARS, path, errors):
            return None
        if is_link and not _is_link(value):
            problem = "looks like a link but is not a valid http(s) URL"
    elif isinstance(value, float):
        if not math.isfinite(value):
            problem = "must be a finite number"
    elif isinstance(value, Mapping):
        return _check_object_value(value, path, errors)
    elif not isinstance(value, int):
        problem = f"{_kind(value)} is not allowed: metadata must be flat"
    if problem:
        errors.append(FieldError(path, problem))
        return None
    assert isinstance(value, str | int | float)  # noqa: S101 - narrowed by the branches above
    return value


def _check_object_value(
    value: Mapping[str, Any], path: str, errors: list[FieldError]
) -> dict[str, Any] | None:
    keys = set(value)
    if keys == {"url", "value"}:
        url, text = value["url"], value["value"]
        ok = True
        if not isinstance(url, str) or not _is_link(url):
            errors.append(FieldError(f"{path}.url", "a rich link's url must be an http(s) URL"))
            ok = False
        elif _too_long(url, MAX_LINK_CHARS, f"{path}.url", errors):
            ok = False
        if not isinstance(text, str):
            errors.append(FieldError(f"{path}.value", "a rich link's value must be a string"))
            ok = False
        elif _too_long(text, MAX_TEXT_CHARS, f"{path}.value", errors):
            ok = False
        return dict(value) if ok else None
    if keys == {"amount", "currency"}:
        amount, currency = value["amount"], value["currency"]
        ok = True
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            errors.append(
                FieldError(f"{path}.amount", "a monetary amount is a positive integer of cents")
            )
            ok = False
        if not isinstance(currency, str) or not _CURRENCY.match(currency):
            errors.append(
                FieldError(f"{path}.currency", "a currency is a three-letter ISO 4217 code")
            )
            ok = False
        return dict(value) if ok else None
    errors.append(
        FieldError(
            path,
            "nested objects are not supported; an object value must be a rich link "
            "{url, value} or a monetary amount {amount, currency}",
        )
    )
    return None


def _too_long(
    value: str, limit: int, path: str, errors: list[FieldError], *, what: str = "value"
) -> bool:
    """Whether `value` is longer than `limit` characters (then an error says so)."""
    if len(value) <= limit:
        return False
    errors.append(FieldError(path, f"the {what} has {len(value)} characters; at most {limit}"))
    return True


def _is_link(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in {"http", "https"} and bool(parts.hostname) and " " not in value
