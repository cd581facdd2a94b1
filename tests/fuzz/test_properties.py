"""Properties over arbitrary input: signature verification and data-event validation never
fail in any way but their own refusal."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from hookstream.core.dataevents import validate_event, validate_events
from hookstream.core.errors import DataEventInvalid
from hookstream.ingest import signature_for, verify_signature
from hookstream.ingest.errors import SignatureInvalid, SignatureMissing

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12), children, max_size=12)
    ),
    max_leaves=30,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "event_name": json_values,
        "created_at": json_values,
        "user_id": json_values,
        "id": json_values,
        "email": json_values,
        "metadata": st.dictionaries(st.text(max_size=15), json_values, max_size=12),
    },
)


@given(body=st.binary(max_size=2048), secret=st.binary(min_size=1, max_size=64))
def test_the_signature_of_any_body_verifies_and_matches_an_independent_hmac(
    body: bytes, secret: bytes
) -> None:
    signature = signature_for(body, secret)
    assert signature == "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest()
    verify_signature(body, signature, [b"other", secret])


@given(body=st.binary(max_size=512), header=st.one_of(st.none(), st.text(max_size=60)))
def test_any_header_is_either_the_signature_or_refused_as_such(
    body: bytes, header: str | None
) -> None:
    secret = b"fuzz-secret"
    expected = signature_for(body, secret)
    try:
        verify_signature(body, header, [secret])
    except (SignatureMissing, SignatureInvalid):
        assert header is None or header.strip().lower() != expected
    else:
        assert header is not None
        assert header.removeprefix("sha1=").strip().lower() == expected.removeprefix("sha1=")


@given(value=st.one_of(json_values, event_like))
def test_any_json_value_is_a_valid_event_or_a_refusal_naming_fields(value: object) -> None:
    try:
        event = validate_event(value)
    except DataEventInvalid as exc:
        problems = exc.errors
    else:
        assert validate_event(event.as_dict()) == event
        return
    assert problems, "a refusal lists at least one problem"
    assert all(isinstance(problem.message, str) and problem.message for problem in problems)


@given(values=st.lists(st.one_of(json_values, event_like), max_size=6))
def test_any_list_is_valid_as_a_whole_or_refused_as_a_whole(values: list[object]) -> None:
    try:
        events = validate_events(values)
    except DataEventInvalid as exc:
        problems = exc.errors
    else:
        assert len(events) == len(values)
        return
    assert problems, "a refusal lists at least one problem"
