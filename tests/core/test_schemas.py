"""The contract's JSON Schemas (`hookstream.core.schemas`): each is a valid draft 2020-12
document, and an independent validator (the `jsonschema` library) reading the published
documents agrees with the validation hookstream runs, on every example Intercom publishes,
every event the tests send, and the invalid events Intercom's docs describe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookstream.core import contract
from hookstream.core.dataevents import (
    DataEventInvalid,
    data_events_request_schema,
    validate_event,
    validate_events,
)
from hookstream.core.errors import NotificationInvalid
from hookstream.core.notification import parse_notification
from hookstream.core.schemas import DRAFT, HEADER_SCHEMAS, schema_documents
from tests.sinks.support import event as sink_test_event
from tests.sinks.test_dataevents import BASE

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = schema_documents()
DATA_EVENTS = json.loads((Path(__file__).parent / "fixtures" / "data-events.json").read_text())
# Intercom's published examples (shared/intercom/examples, copied byte for byte) and the
# payloads the worker's tests send.
NOTIFICATION_FILES = sorted(
    [
        *(ROOT / "sandbox" / "samples").glob("*.json"),
        *(ROOT / "tests/streams/payloads").glob("*.json"),
    ]
)


def independent(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        DOCUMENTS[name], format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_document_is_a_valid_2020_12_schema(name: str) -> None:
    document = DOCUMENTS[name]
    assert document["$schema"] == DRAFT == jsonschema.Draft202012Validator.META_SCHEMA["$id"]
    jsonschema.Draft202012Validator.check_schema(document)


def test_there_is_a_document_for_each_header_and_each_record_kind() -> None:
    headers = {name for name in DOCUMENTS if name.startswith("headers/")}
    assert {f"headers/{name}.json" for name in HEADER_SCHEMAS} < headers
    assert "headers/routed-record.json" in headers


@pytest.mark.parametrize("path", NOTIFICATION_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_intercom_example_notification_validates(path: Path) -> None:
    body = path.read_bytes()
    independent("notification.json").validate(orjson.loads(body))
    assert parse_notification(body, require_envelope_type=True).topic


@pytest.mark.parametrize(
    "envelope",
    [
        {"topic": "contact.created", "id": "notif_1"},  # no type
        {"type": "notification", "topic": "contact.created", "id": "notif_1"},
        {"type": "notification_event", "id": "notif_1"},  # no topic
        {"type": "notification_event", "topic": "", "id": "notif_1"},
        {"type": "notification_event", "topic": "contact.created"},  # no id
        {"type": "notification_event", "topic": "contact.created", "id": None},  # not a ping
        {"type": "notification_event", "topic": "contact.created", "id": ""},
        {"type": "notification_event", "topic": "contact.created", "id": 7},
    ],
)
def test_invalid_notifications_fail_both_validators(envelope: dict[str, Any]) -> None:
    assert not independent("notification.json").is_valid(envelope)
    with pytest.raises(NotificationInvalid):
        parse_notification(orjson.dumps(envelope), require_envelope_type=True)


def _events_the_tests_send() -> list[dict[str, Any]]:
    return [
        BASE,
        sink_test_event("u-1", 3),
        sink_test_event("u-2", 4, metadata={"plan": "pro", "seats": 3}),
        *(example["event"] for example in DATA_EVENTS["valid"]),
    ]


@pytest.mark.parametrize("event", _events_the_tests_send())
def test_documented_and_test_events_validate(event: dict[str, Any]) -> None:
    independent("data-event.json").validate(event)
    independent("data-events-request.json").validate([event, event])
    assert validate_event(event).as_dict() == event


@pytest.mark.parametrize("case", DATA_EVENTS["invalid"], ids=lambda case: case["doc"])
def test_documented_invalid_events_fail_both_validators_on_the_same_field(
    case: dict[str, Any],
) -> None:
    errors = list(independent("data-event.json").iter_errors(case["event"]))
    assert errors
    with pytest.raises(DataEventInvalid) as refused:
        validate_event(case["event"])
    assert [error.field for error in refused.value.errors] == [case["field"]]


def test_the_request_is_one_event_or_a_bounded_non_empty_list() -> None:
    event = sink_test_event("u-1", 1)
    request = jsonschema.Draft202012Validator(data_events_request_schema(2))
    assert request.is_valid(event)
    assert request.is_valid([event, event])
    for refused in ([], [event] * 3, "nope", [{"event_name": "x"}]):
        assert not request.is_valid(refused)
        with pytest.raises(DataEventInvalid):
            validate_events(refused, max_events=2)


@pytest.mark.parametrize(
    ("metadata", "fields"),
    [
        ({"0": None}, ["metadata.0"]),  # jsonschema-rs reports the key "0" as the number 0
        ({"": {"url": None}}, ["metadata."]),  # and drops an empty key from its paths
        ({"": [1]}, ["metadata."]),
    ],
)
def test_metadata_keys_that_look_like_numbers_or_are_empty_are_named(
    metadata: dict[str, Any], fields: list[str]
) -> None:
    with pytest.raises(DataEventInvalid) as refused:
        validate_event({**BASE, "metadata": metadata})
    assert [error.field for error in refused.value.errors] == fields


_ascii = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)  # JSON has neither
    | _ascii,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_ascii, children, max_size=4),
    max_leaves=12,
)
_event_like = st.fixed_dictionaries(
    {},
    optional={
        "event_name": _ascii | _json,
        "created_at": st.integers(-5, 2**40) | _json,
        "user_id": _ascii | _json,
        "email": st.sampled_from(["a@b.c", "a b@c", "@c", "a@"]) | _json,
        "metadata": st.dictionaries(
            st.sampled_from(["k", "signup_date", "", "0"]) | _ascii,
            _json
            | st.sampled_from(["https://x.org/a", "https://", "http://[::1]:80/x"])
            | st.fixed_dictionaries({"url": _ascii | _json, "value": _json})
            | st.fixed_dictionaries({"amount": _json, "currency": _ascii}),
            max_size=11,
        ),
        "colour": _json,
    },
)


@settings(max_examples=300, deadline=None)
@given(value=_event_like | _json)
def test_hookstream_and_an_independent_validator_agree_on_any_input(value: object) -> None:
    """What the published schema accepts, hookstream accepts (ASCII text: the regex engines
    differ on which Unicode characters are whitespace)."""
    try:
        validate_event(value)
    except DataEventInvalid:
        accepted = False
    else:
        accepted = True
    assert accepted == independent("data-event.json").is_valid(value)


def test_workspace_id_is_a_field_of_the_request_only() -> None:
    event = {**sink_test_event("u-1", 1), "workspace_id": "ecahpwf5"}
    assert independent("data-events-request.json").is_valid(event)
    assert independent("data-events-request.json").is_valid([event])
    assert not independent("data-events-request.json").is_valid({**event, "workspace_id": " "})
    assert not independent("data-event.json").is_valid(event)  # the sink's input, Intercom's body
    with pytest.raises(DataEventInvalid):
        validate_event(event)


def test_every_header_of_the_contract_has_a_schema() -> None:
    names = {value for key, value in vars(contract).items() if key.startswith("HEADER_")}
    assert names == set(HEADER_SCHEMAS), "add the new header to hookstream.core.schemas"
