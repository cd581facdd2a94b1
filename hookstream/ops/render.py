"""How the operator commands show a Kafka record: readable text for people, one JSON object
per line for programs. Headers are decoded per `hookstream.core.contract`; a value that is JSON is
pretty-printed (text) or embedded as JSON (`--json`)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord

from hookstream.core.contract import HEADER_RECEIVED_AT, decode_headers

DEFAULT_MAX_CHARS = 2000
"""Longest value text `tail` prints unless `--full`."""

_TIME_HEADERS = {HEADER_RECEIVED_AT}  # Unix milliseconds: shown with their UTC time too


def iso_ms(milliseconds: int) -> str:
    """Unix milliseconds as an ISO 8601 UTC time: `2024-05-01T12:00:00.123Z`."""
    moment = datetime.fromtimestamp(milliseconds / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Value:
    """A record value, classified: `json` (parsed), `text`, `base64` (not UTF-8) or `null`."""

    kind: str
    data: Any
    size: int


def classify_value(value: bytes | None) -> Value:
    """What a value is: JSON if it parses, else UTF-8 text, else base64 of the bytes."""
    if value is None:
        return Value("null", None, 0)
    try:
        text = value.decode()
    except UnicodeDecodeError:
        return Value("base64", base64.b64encode(value).decode(), len(value))
    try:
        return Value("json", json.loads(text), len(value))
    except ValueError:
        return Value("text", text, len(value))


def _key_text(key: bytes | None) -> str | None:
    return None if key is None else key.decode(errors="backslashreplace")


def record_as_json(record: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
    """A record as one JSON-ready object; the value is never truncated."""
    value = classify_value(record.value)
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "time": iso_ms(record.timestamp),
        "key": _key_text(record.key),
        "headers": decode_headers(record.headers),
        "value_format": value.kind,
        "value": value.data,
    }


def json_line(record: ConsumerRecord[bytes, bytes]) -> str:
    """`record_as_json` on one line."""
    return json.dumps(record_as_json(record), ensure_ascii=False, separators=(",", ":"))


def _header_text(name: str, value: str) -> str:
    if name in _TIME_HEADERS and value.isdigit():
        return f"{value} ({iso_ms(int(value))})"
    return value


def _truncate(text: str, max_chars: int | None) -> str:
    if max_chars is None or len(text) <= max_chars:
        return text
    hidden = len(text) - max_chars
    return f"{text[:max_chars]}\n… ({hidden} more characters; --full shows all)"


def format_record(record: ConsumerRecord[bytes, bytes], *, max_chars: int | None) -> str:
    """A record as a readable block: where it is, its key, headers and value (a JSON value
    pretty-printed), the value cut after `max_chars` characters unless that is None."""
    value = classify_value(record.value)
    lines = [
        f"── {record.topic} [{record.partition}] @{record.offset}  {iso_ms(record.timestamp)}",
        f"key:     {_key_text(record.key) if record.key is not None else '(none)'}",
    ]
    headers = decode_headers(record.headers)
    if headers:
        width = max(len(name) for name in headers)
        lines.append("headers:")
        lines += [
            f"  {name.ljust(width)}  {_header_text(name, text)}" for name, text in headers.items()
        ]
    else:
        lines.append("headers: (none)")
    if value.kind == "null":
        lines.append("value:   (null)")
    elif value.kind == "json":
        lines.append(f"value:   JSON, {value.size} bytes")
        pretty = json.dumps(value.data, indent=2, ensure_ascii=False)
        lines.append(_truncate(pretty, max_chars))
    elif value.kind == "text":
        lines.append(f"value:   text, {value.size} bytes")
        lines.append(_truncate(value.data, max_chars))
    else:
        lines.append(f"value:   {value.size} bytes, not UTF-8 (base64)")
        lines.append(_truncate(value.data, max_chars))
    return "\n".join(lines)
