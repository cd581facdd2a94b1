"""Check a `POST /events` body as Intercom's Data Events API does.

Published rules (OpenAPI `create_data_event_request`, the /events description): `event_name`
(string) and `created_at` (integer Unix seconds) are required with one of `user_id`, `id` or
`email`; `metadata` is flat, its values strings, numbers, `_date` Unix times, links, rich
links `{url, value}` or monetary amounts `{amount: cents > 0, currency}`; only the first ten
metadata keys are kept (Intercom ignores the rest without an error). Where Intercom does not
publish the code of a refusal, the sandbox uses: missing field 400 `parameter_not_found`,
wrong JSON type 400 `type_mismatch`, well-formed but invalid value 422 `unprocessable_entity`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from hookstream.sandbox.errors import BadRequest, ParameterNotFound, TypeMismatch, Unprocessable

METADATA_KEYS_KEPT = 10
IDENTIFIERS = ("id", "user_id", "email")  # the order Intercom resolves a contact by


@dataclass(frozen=True)
class DataEvent:
    """A valid event: the body as sent, the contact it is about and what Intercom ignored."""

    body: dict[str, Any]
    contact: tuple[str, str]
    event_name: str
    created_at: int
    ignored_metadata_keys: tuple[str, ...]

    @property
    def dedup_key(self) -> tuple[str, str, str, int]:
        """Intercom's identity of an event: contact, event name and created time."""
        return (*self.contact, self.event_name, self.created_at)


def parse_event(raw: bytes) -> DataEvent:
    """The event in `raw`, or the `ApiError` Intercom would answer with."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("The request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    return validate_event(body)


def validate_event(body: dict[str, Any]) -> DataEvent:
    """Check a decoded body; see the module docstring for the rules."""
    event_name = _required(body, "event_name", str)
    if not event_name.strip():
        raise Unprocessable("event_name cannot be blank", field="event_name")
    created_at = _required(body, "created_at", int)
    if created_at < 0:
        raise Unprocessable("created_at must be a Unix timestamp", field="created_at")
    contact = _contact(body)
    ignored: tuple[str, ...] = ()
    if "metadata" in body and body["metadata"] is not None:
        metadata = body["metadata"]
        if not isinstance(metadata, dict):
            raise TypeMismatch("metadata must be an object", field="metadata")
        keys = list(metadata)
        for key in keys[:METADATA_KEYS_KEPT]:
            _check_metadata_value(key, metadata[key])
        ignored = tuple(keys[METADATA_KEYS_KEPT:])
    return DataEvent(body, contact, event_name, created_at, ignored)


def _required(body: dict[str, Any], name: str, kind: type[Any]) -> Any:
    if name not in body or body[name] is None:
        raise ParameterNotFound(f"{name} is required", field=name)
    value = body[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeMismatch(f"{name} must be a {kind.__name__}", field=name)
    return value


def _contact(body: dict[str, Any]) -> tuple[str, str]:
    found: list[tuple[str, str]] = []
    for name in IDENTIFIERS:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise TypeMismatch(f"{name} must be a string", field=name)
        if not value.strip():
            raise Unprocessable(f"{name} cannot be blank", field=name)
        found.append((name, value.lower() if name == "email" else value))
    if not found:
        raise ParameterNotFound("One of user_id, id or email is required", field="user_id")
    return found[0]


def _is_link(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _check_metadata_value(key: str, value: object) -> None:
    field = f"metadata.{key}"
    if isinstance(value, bool) or value is None:
        raise Unprocessable(f"{key}: unsupported metadata value", field=field)
    if key.endswith("_date"):
        if not isinstance(value, int | float):
            raise Unprocessable(f"{key}: a _date value must be a Unix timestamp", field=field)
        return
    if isinstance(value, str | int | float):
        return
    if isinstance(value, dict):
        if set(value) == {"url", "value"} and _is_link(value["url"]):
            return
        amount = value.get("amount")
        if (
            set(value) == {"amount", "currency"}
            and isinstance(amount, int)
            and not isinstance(amount, bool)
            and amount > 0
            and isinstance(value["currency"], str)
        ):
            return
        raise Unprocessable(
            f"{key}: nested metadata is not supported (only rich links and monetary amounts)",
            field=field,
        )
    raise Unprocessable(f"{key}: unsupported metadata value", field=field)
