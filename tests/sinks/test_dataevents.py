"""Data-event validation (`hookstream.core.dataevents`): what Intercom documents is accepted and
sent unchanged; everything else is refused with the field that is wrong."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookstream.core.dataevents import (
    DataEventInvalid,
    DataEventsInvalid,
    event_key,
    parse_event,
    validate_event,
    validate_events,
)

BASE: dict[str, Any] = {"event_name": "updated-plan", "created_at": 1_700_000_000, "user_id": "42"}


def fields_of(exc: pytest.ExceptionInfo[DataEventInvalid]) -> list[str]:
    return [error.field for error in exc.value.errors]


def test_every_documented_metadata_type_is_accepted_and_sent_unchanged() -> None:
    metadata = {
        "source": "desktop",
        "load": 3.67,
        "seats": 4,
        "contact_date": 1392036272,
        "article": "https://example.org/ab1de.html",
        "rich": {"url": "https://example.org/ab1de.html", "value": "the dude abides"},
        "price": {"amount": 34999, "currency": "eur"},
    }
    event = validate_event({**BASE, "metadata": metadata})
    assert orjson.loads(event.body()) == {**BASE, "metadata": metadata}
    assert list(orjson.loads(event.body())["metadata"]) == list(metadata)  # order kept


@pytest.mark.parametrize("identifier", ["user_id", "id", "email"])
def test_each_identifier_alone_is_accepted_and_is_the_record_key(identifier: str) -> None:
    value = "ann@example.com" if identifier == "email" else "abc-1"
    event = validate_event({"event_name": "x", "created_at": 1, identifier: value})
    assert event.identifier_field == identifier
    assert event_key(event) == value.encode()
    assert event.identity == (identifier, value, "x", 1)


def test_two_identifiers_are_refused() -> None:
    with pytest.raises(DataEventInvalid) as exc:
        validate_event({**BASE, "email": "ann@example.com"})
    assert fields_of(exc) == ["email"]
    assert "exactly one" in exc.value.errors[0].message


def test_no_identifier_is_refused() -> None:
    with pytest.raises(DataEventInvalid) as exc:
        validate_event({"event_name": "x", "created_at": 1})
    assert "one of user_id, id or email" in str(exc.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event_name": ""}, "event_name"),
        ({"event_name": 5}, "event_name"),
        ({"created_at": "2024-01-01"}, "created_at"),
        ({"created_at": 1.5}, "created_at"),
        ({"created_at": True}, "created_at"),
        ({"created_at": -1}, "created_at"),
        ({"created_at": 1_700_000_000_000}, "created_at"),
        ({"user_id": 42}, "user_id"),
        ({"user_id": " "}, "user_id"),
        ({"colour": "red"}, "colour"),
        ({"metadata": ["a"]}, "metadata"),
    ],
)
def test_wrong_top_level_fields_are_refused_by_name(change: dict[str, Any], field: str) -> None:
    with pytest.raises(DataEventInvalid) as exc:
        validate_event({**BASE, **change})
    assert fields_of(exc) == [field]


def test_missing_required_fields_are_all_reported_at_once() -> None:
    with pytest.raises(DataEventInvalid) as exc:
        validate_event({"user_id": "1"})
    assert fields_of(exc) == ["event_name", "created_at"]


def test_a_bad_email_is_refused() -> None:
    with pytest.raises(DataEventInvalid) as exc:
        validate_event({"event_name": "x", "created_at": 1, "email": "not an email"})
    assert fields_of(exc) == ["email"]


def test_more_than_ten_metadata_keys_are_refused_not_truncated() -> None:
    metadata = {f"k{i}": i for i in range(11)}
    with pytest.raises(DataEventInvalid) as exc:
        validate_event({**BASE, "metadata": metadata})
    assert fields_of(exc) == ["metadata"]
    assert "at most 10" in exc.value.errors[0].message
    assert validate_event({**BASE, "metadata": dict(list(metadata.items())[:10])})


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"nested": {"a": 1}}, "metadata.nested"),
        ({"list": [1, 2]}, "metadata.list"),
        ({"flag": True}, "metadata.flag"),
        ({"gone": None}, "metadata.gone"),
        ({"signup_date": "2024-01-01"}, "metadata.signup_date"),
        ({"signup_date": 1_700_000_000_000}, "metadata.signup_date"),
        ({"page": "https://"}, "metadata.page"),
        ({"rich": {"url": "ftp://x.org/a", "value": "a"}}, "metadata.rich.url"),
        ({"rich": {"url": "https://x.org/a", "value": 3}}, "metadata.rich.value"),
        ({"price": {"amount": 0, "currency": "eur"}}, "metadata.price.amount"),
        ({"price": {"amount": 9.99, "currency": "eur"}}, "metadata.price.amount"),
        ({"price": {"amount": 999, "currency": "euro"}}, "metadata.price.currency"),
        ({"price": {"amount": 999, "currency": "eur", "x": 1}}, "metadata.price"),
        ({"load": float("nan")}, "metadata.load"),
    ],
)
def test_undocumented_metadata_values_are_refused_by_path(
    metadata: dict[str, Any], field: str
) -> None:
    with pytest.raises(DataEventInvalid) as exc:
        validate_event({**BASE, "metadata": metadata})
    assert fields_of(exc) == [field]


def test_a_list_is_validated_all_or_nothing_with_errors_by_index() -> None:
    good = dict(BASE)
    with pytest.raises(DataEventsInvalid) as exc:
        validate_events([good, {**BASE, "created_at": "x"}, good, {"event_name": "x"}])
    assert sorted(exc.value.items) == [1, 3]
    assert exc.value.total == 4
    assert exc.value.items_as_dicts()[0] == {
        "index": 1,
        "errors": [{"field": "created_at", "message": exc.value.items[1][0].message}],
    }
    assert fields_of(exc)[0] == "[1].created_at"
    assert len(validate_events([good, good])) == 2


def test_a_single_object_counts_as_a_list_of_one_and_an_empty_list_is_refused() -> None:
    assert validate_events(BASE) == [validate_event(BASE)]
    with pytest.raises(DataEventInvalid):
        validate_events([])
    with pytest.raises(DataEventInvalid):
        validate_events("nope")


def test_records_that_are_not_json_objects_are_refused() -> None:
    with pytest.raises(DataEventInvalid, match="not JSON"):
        parse_event(b"{nope")
    with pytest.raises(DataEventInvalid, match="JSON object"):
        parse_event(b"[1]")
    assert parse_event(orjson.dumps(BASE)) == validate_event(BASE)


_scalar = st.one_of(
    st.text(max_size=20).filter(lambda s: not s.lower().startswith(("http://", "https://"))),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
)
_keys = st.text(min_size=1, max_size=12).filter(lambda k: not k.endswith("_date"))


@given(
    name=st.text(min_size=1, max_size=30).filter(str.strip),
    created_at=st.integers(min_value=0, max_value=4_000_000_000),
    identifier=st.sampled_from(["user_id", "id"]),
    value=st.text(min_size=1, max_size=30).filter(str.strip),
    metadata=st.dictionaries(_keys, _scalar, max_size=10),
)
def test_any_valid_event_round_trips_through_its_body_unchanged(
    name: str, created_at: int, identifier: str, value: str, metadata: dict[str, Any]
) -> None:
    obj: dict[str, Any] = {"event_name": name, "created_at": created_at, identifier: value}
    if metadata:
        obj["metadata"] = metadata
    event = parse_event(orjson.dumps(obj))
    assert orjson.loads(event.body()) == obj
