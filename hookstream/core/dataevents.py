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

The rules are one JSON Schema (draft 2020-12), `DATA_EVENT_SCHEMA`, and validation is that
schema's validator (`hookstream.core.schemas`): what `hookstream contract schemas` publishes
is what is checked. Its errors become one `FieldError` per field, in the words below.
`DATA_EVENTS_REQUEST_SCHEMA` is `POST /events`'s body: one event or a list of them.

Lengths: Intercom documents none for data events, so names, identifiers, metadata keys,
strings and a rich link's value are bounded at 255 characters, and links at 2,048. With 10
metadata keys, an event's JSON is then at most `MAX_EVENT_BYTES` (about 160 KB, every
character escaped), far below a topic's default `max.message.bytes` (1 MiB): Kafka never
refuses an accepted event for its size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonschema_rs
import orjson

from hookstream.core.errors import DataEventInvalid, DataEventsInvalid, FieldError
from hookstream.core.schemas import Schema, compile_schema, field_path

__all__ = [
    "DATA_EVENTS_REQUEST_SCHEMA",
    "DATA_EVENT_SCHEMA",
    "IDENTIFIER_FIELDS",
    "MAX_EVENT_BYTES",
    "MAX_LINK_CHARS",
    "MAX_METADATA_KEYS",
    "MAX_TEXT_CHARS",
    "REQUEST_ONLY_PROPERTIES",
    "DataEvent",
    "DataEventInvalid",
    "DataEventsInvalid",
    "FieldError",
    "Identity",
    "data_events_request_schema",
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

# -- the schema ---------------------------------------------------------------------------

_NOT_BLANK = r"\S"
_EMAIL = r"^\S+@[^\s@]+$"
_LINK_PREFIX = "^[Hh][Tt][Tt][Pp][Ss]?://"
_LINK = (
    _LINK_PREFIX
    + r"(?:[^\s/?#@]*@)?(?:\[[0-9A-Fa-f:.]+\]|[^\s/?#@:\[\]]+)(?::[0-9]*)?(?:[/?#]\S*)?$"
)
_CURRENCY = "^[A-Za-z]{3}$"

_TEXT: Schema = {"type": "string", "pattern": _NOT_BLANK, "maxLength": MAX_TEXT_CHARS}
_UNIX_SECONDS: Schema = {
    "type": "integer",
    "minimum": 0,
    "maximum": MAX_UNIX_SECONDS,
    "description": "Unix seconds (a millisecond timestamp is refused, not guessed at).",
}
_LINK_SCHEMA: Schema = {"type": "string", "pattern": _LINK, "maxLength": MAX_LINK_CHARS}
_RICH_LINK: Schema = {
    "description": "A rich link.",
    "properties": {"url": _LINK_SCHEMA, "value": {"type": "string", "maxLength": MAX_TEXT_CHARS}},
    "required": ["url", "value"],
    "additionalProperties": False,
}
_MONEY: Schema = {
    "description": "A monetary amount: cents and an ISO 4217 currency code.",
    "properties": {
        "amount": {"type": "integer", "exclusiveMinimum": 0},
        "currency": {"type": "string", "pattern": _CURRENCY},
    },
    "required": ["amount", "currency"],
    "additionalProperties": False,
}
_METADATA_VALUE: Schema = {
    "description": "A string, a number, a link (an http(s) URL), a rich link or a monetary amount.",
    "type": ["string", "number", "object"],
    "allOf": [
        {
            "if": {"type": "string", "pattern": _LINK_PREFIX},
            "then": {"pattern": _LINK, "maxLength": MAX_LINK_CHARS},
            "else": {"maxLength": MAX_TEXT_CHARS},
        },
        {
            "if": {"type": "object", "required": ["amount"]},
            "then": _MONEY,
            "else": {"if": {"type": "object"}, "then": _RICH_LINK},
        },
    ],
}
_EVENT_PROPERTIES: Schema = {
    "event_name": {**_TEXT, "description": "The event's name."},
    "created_at": _UNIX_SECONDS,
    "user_id": {**_TEXT, "description": "Your id of the contact."},
    "id": {**_TEXT, "description": "Intercom's id of the contact (needed for leads)."},
    "email": {
        "type": "string",
        "pattern": _EMAIL,
        "maxLength": MAX_TEXT_CHARS,
        "description": "The contact's email address.",
    },
    "metadata": {
        "type": ["object", "null"],
        "maxProperties": MAX_METADATA_KEYS,
        "propertyNames": {"minLength": 1, "maxLength": MAX_TEXT_CHARS},
        "patternProperties": {"_date$": {**_UNIX_SECONDS, "description": "A date."}},
        "additionalProperties": _METADATA_VALUE,
        "description": "At most ten flat keys (Intercom silently drops the rest: we refuse).",
    },
}
DATA_EVENT_SCHEMA: Schema = {
    "description": "A data event as Intercom's `POST /events` takes it: exactly one of "
    "user_id, id or email.",
    "type": "object",
    "properties": _EVENT_PROPERTIES,
    "required": ["event_name", "created_at"],
    "oneOf": [{"required": [name]} for name in IDENTIFIER_FIELDS],
    "additionalProperties": False,
}
"""One data event: the sink's input record and the body Intercom is sent."""


REQUEST_ONLY_PROPERTIES: Schema = {
    "workspace_id": {
        **_TEXT,
        "description": "The Intercom workspace (its app_id) the event is for; the ingest moves "
        "it into the record's `intercom-app-id` header.",
    }
}
"""Fields an event of `POST /events` may have that the ingest takes out of the body before
it is queued (so neither the sink's input nor Intercom's body has them)."""


def data_events_request_schema(max_events: int | None = None) -> Schema:
    """The body of the ingest's `POST /events`: one event (with `REQUEST_ONLY_PROPERTIES`),
    or a list of at most `max_events` (HOOKSTREAM_EVENTS_MAX_PER_REQUEST) of them."""
    event: Schema = {
        **DATA_EVENT_SCHEMA,
        "properties": {**_EVENT_PROPERTIES, **REQUEST_ONLY_PROPERTIES},
    }
    events: Schema = {"type": "array", "items": event, "minItems": 1}
    if max_events is not None:
        events["maxItems"] = max_events
    return {
        "description": "One data event, or a list of them (all are queued, or none).",
        "oneOf": [event, events],
    }


DATA_EVENTS_REQUEST_SCHEMA: Schema = data_events_request_schema()
"""The body of `POST /events` (its list's length is bounded by a setting: see
`data_events_request_schema`)."""

_VALIDATOR = compile_schema(DATA_EVENT_SCHEMA)

# -- the error messages -------------------------------------------------------------------

_NESTED = (
    "nested objects are not supported; an object value must be a rich link "
    "{url, value} or a monetary amount {amount, currency}"
)
_PATTERN_MESSAGES = {
    _NOT_BLANK: "must not be empty",
    _EMAIL: "is not an email address",
    _LINK: "looks like a link but is not a valid http(s) URL",
    _CURRENCY: "a currency is a three-letter ISO 4217 code",
}
_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer of Unix seconds",
    "object": "an object",
    "null": "null",
    "number": "a number",
}
_Kind = jsonschema_rs.ValidationErrorKind

MetadataValue = str | int | float | dict[str, Any]
Identity = tuple[str, str, str, int]


# -- the public API ----------------------------------------------------------------------


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
    if not isinstance(obj, Mapping):
        raise DataEventInvalid([FieldError("", f"must be a JSON object, got {_kind(obj)}")])
    event = obj if isinstance(obj, dict) else dict(obj)
    try:
        valid = _VALIDATOR.is_valid(event)
    except ValueError as exc:  # not JSON data: a key that is not a string
        raise DataEventInvalid([FieldError("", f"is not JSON data: {exc}")]) from exc
    if not valid:
        raise DataEventInvalid(_field_errors(event))
    identifier_field = next(name for name in IDENTIFIER_FIELDS if name in event)
    return DataEvent(
        event["event_name"],
        int(event["created_at"]),  # JSON's 1.0 is an integer too; Intercom is sent 1
        identifier_field,
        event[identifier_field],
        dict(event.get("metadata") or {}),
    )


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


# -- the schema's errors in words ---------------------------------------------------------

_RANK = {"event_name": 1, "created_at": 2, "user_id": 3, "id": 3, "email": 3, "metadata": 4}


def _field_errors(event: dict[str, Any]) -> list[FieldError]:
    """The schema's errors as one FieldError per field (the first found), unknown fields
    first, then in the order of the rules."""
    found: dict[str, FieldError] = {}
    # The whole event's errors first: "give exactly one identifier" before each one's type.
    errors = sorted(_VALIDATOR.iter_errors(event), key=lambda error: len(error.instance_path))
    for error in errors:
        for problem in _describe(error, event):
            found.setdefault(problem.field, problem)
    return sorted(found.values(), key=lambda e: _RANK.get(e.field.split(".")[0], 0))


def _describe(  # noqa: PLR0911, PLR0912 - one branch per keyword of the schema
    error: jsonschema_rs.ValidationError, event: dict[str, Any]
) -> list[FieldError]:
    kind = error.kind
    path = field_path(error)
    depth = len(error.instance_path)
    try:
        value = _value_at(event, error.instance_path)
    except (LookupError, TypeError):  # under an empty key, which jsonschema-rs's path drops:
        return []  # that key is refused already ("metadata keys must be non-empty strings")
    in_metadata_object = depth == 3 and error.instance_path[0] == "metadata"
    if path == "metadata" and isinstance(value, Mapping) and not isinstance(kind, _OF_METADATA):
        return []  # the value of an empty key, whose path jsonschema-rs drops: refused already
    if isinstance(kind, _Kind.AdditionalProperties) and depth == 0:
        return [
            FieldError(str(name), "unknown field (Intercom's data event has none)")
            for name in kind.unexpected
        ]
    if isinstance(kind, _Kind.OneOfNotValid):
        return [FieldError("user_id", "one of user_id, id or email is required")]
    if isinstance(kind, _Kind.OneOfMultipleValid):
        given = [name for name in IDENTIFIER_FIELDS if name in event]
        return [FieldError(given[1], f"give exactly one identifier, got {', '.join(given)}")]
    if isinstance(kind, _Kind.Required) and depth == 0:
        name = str(kind.property)
        return [FieldError(name, "is required" + _REQUIRED_HINTS.get(name, ""))]
    if isinstance(kind, _Kind.MaxLength):
        message = f"the value has {len(value)} characters; at most {kind.limit}"
    elif isinstance(kind, _Kind.PropertyNames):
        key = str(kind.error.instance)
        message = (
            f"the key has {len(key)} characters; at most {MAX_TEXT_CHARS}"
            if key
            else "metadata keys must be non-empty strings"
        )
    elif isinstance(kind, _Kind.Required | _Kind.AdditionalProperties):
        message = _NESTED  # in metadata: an object that is neither rich link nor amount
    elif in_metadata_object:
        message = _METADATA_OBJECT_MESSAGES.get(str(error.instance_path[-1]), error.message)
    elif isinstance(kind, _Kind.Type):
        message = _type_message(path, value, kind.types)
    elif isinstance(kind, _Kind.Pattern):
        message = _PATTERN_MESSAGES[kind.pattern]
    elif isinstance(kind, _Kind.Minimum):
        message = "must not be negative"
    elif isinstance(kind, _Kind.Maximum):
        message = "must be Unix seconds; this looks like milliseconds"
    elif isinstance(kind, _Kind.MaxProperties):
        message = (
            f"has {len(value)} keys; Intercom keeps at most {kind.limit} "
            "(and silently drops the rest)"
        )
    else:
        message = error.message
    return [FieldError(path, message)]


_OF_METADATA = (_Kind.MaxProperties, _Kind.PropertyNames)  # errors of the object itself
_REQUIRED_HINTS = {"created_at": " (integer Unix seconds)"}
_METADATA_OBJECT_MESSAGES = {
    "url": "a rich link's url must be an http(s) URL",
    "value": "a rich link's value must be a string",
    "amount": "a monetary amount is a positive integer of cents",
    "currency": _PATTERN_MESSAGES[_CURRENCY],
}


def _type_message(path: str, value: object, types: Sequence[str]) -> str:
    if path.startswith("metadata.") and not path.endswith("_date"):
        if isinstance(value, float):
            return "must be a finite number"
        if isinstance(value, bool) or value is None:
            return f"{_kind(value)} is not a type Intercom documents for metadata"
        return f"{_kind(value)} is not allowed: metadata must be flat"
    expected = " or ".join(_TYPE_NAMES.get(name, name) for name in types)
    return f"must be {expected}, got {_kind(value)}"


def _value_at(event: dict[str, Any], path: Sequence[str | int]) -> Any:
    value: Any = event
    for part in path:  # jsonschema-rs gives a key such as "0" as the number 0
        value = value[str(part)] if isinstance(value, Mapping) else value[part]
    return value


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
