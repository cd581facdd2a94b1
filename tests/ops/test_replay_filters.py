"""What replay selects and what it puts back, without a broker."""

from __future__ import annotations

import pytest
from aiokafka import ConsumerRecord

from hookstream.core import contract
from hookstream.ops.replay import ReplayFilter, parse_time, replayed_headers

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _record(key: bytes | None, reason: str, timestamp: int = T0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="dlq",
        partition=0,
        offset=0,
        timestamp=timestamp,
        timestamp_type=0,
        key=key,
        value=b"{}",
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=2,
        headers=[("hookstream-dlq-reason", reason.encode())],
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:00:00Z", T0),
        ("2026-01-01T01:00:00+01:00", T0),
        ("2026-01-01", T0),  # no zone: UTC
        ("1767225600", T0),  # Unix seconds
        ("1767225600.5", T0 + 500),
        ("1767225600000", T0),  # Unix milliseconds
    ],
)
def test_times_are_read_as_iso_or_unix_seconds_or_milliseconds(text: str, expected: int) -> None:
    assert parse_time(text) == expected


def test_an_unreadable_time_is_refused() -> None:
    with pytest.raises(ValueError, match="Invalid isoformat"):
        parse_time("yesterday")


def test_reason_matches_as_substring_or_exactly() -> None:
    record = _record(b"k", "unparseable: not JSON")
    assert ReplayFilter(reasons=("unparseable",)).matches(record)
    assert ReplayFilter(reasons=("nope", "not JSON")).matches(record)
    assert not ReplayFilter(reasons=("unparseable",), exact_reason=True).matches(record)
    assert ReplayFilter(reasons=("unparseable: not JSON",), exact_reason=True).matches(record)


def test_every_given_criterion_must_hold() -> None:
    record = _record(b"user-1", "rejected", timestamp=T0 + 10)
    assert ReplayFilter().matches(record)
    assert ReplayFilter(since_ms=T0, until_ms=T0 + 11, keys=("user-1",)).matches(record)
    assert not ReplayFilter(since_ms=T0 + 11).matches(record)
    assert not ReplayFilter(until_ms=T0 + 10).matches(record)  # the end is exclusive
    assert not ReplayFilter(keys=("user-2",), reasons=("rejected",)).matches(record)
    assert not ReplayFilter(keys=("user-1",)).matches(_record(None, "rejected"))


def test_every_dead_letter_header_of_the_contract_is_stripped_and_the_rest_kept() -> None:
    dlq_names = [value for name, value in vars(contract).items() if name.startswith("HEADER_DLQ_")]
    assert len(dlq_names) >= 4
    original = [("intercom-topic", b"x"), ("intercom-notification-id", b"n1")]
    headers = [*original[:1], *[(name, b"v") for name in dlq_names], *original[1:]]
    assert replayed_headers(headers) == original
