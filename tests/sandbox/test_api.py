"""The sandbox's Data Events API, driven in-process through its ASGI app."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from hookstream.sandbox import APP_WINDOW_LIMIT, DEFAULT_ACCESS_TOKEN, SandboxConfig, create_app

HEADERS = {
    "Authorization": f"Bearer {DEFAULT_ACCESS_TOKEN}",
    "Accept": "application/json",
    "Content-Type": "application/json",
    "Intercom-Version": "2.14",
}
RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


class FakeClock:
    """Unix time that moves only when a test moves it."""

    def __init__(self, now: float = 1_700_000_003.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def event(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"event_name": "placed-order", "created_at": 1_700_000_000}
    body["user_id"] = "user-1"
    body.update(fields)
    return {name: value for name, value in body.items() if value is not None}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@asynccontextmanager
async def sandbox_client(
    config: SandboxConfig, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(config, clock=clock, rng=random.Random(7))  # noqa: S311 - seeded draws
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        yield client


@pytest.fixture
async def api(clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    async with sandbox_client(SandboxConfig(window_limit=5), clock) as client:
        yield client


async def post(
    api: httpx.AsyncClient, body: object, *, without: str = "", **headers: str
) -> httpx.Response:
    merged = {**HEADERS, **headers}
    merged.pop(without, None)
    if isinstance(body, bytes):
        return await api.post("/events", content=body, headers=merged)
    return await api.post("/events", json=body, headers=merged)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["type"] == "error.list"
    assert body["request_id"]
    assert body["errors"][0]["code"] == code
    assert all(name in response.headers for name in RATE_HEADERS)
    error: dict[str, Any] = body["errors"][0]
    return error


async def test_a_valid_event_is_accepted_with_202_an_empty_body_and_rate_headers(
    api: httpx.AsyncClient,
) -> None:
    response = await post(api, event())

    assert response.status_code == 202
    assert response.content == b""
    assert response.headers["x-ratelimit-limit"] == "5"
    assert response.headers["x-ratelimit-remaining"] == "4"
    assert response.headers["x-ratelimit-reset"] == "1700000010"


async def test_default_limit_is_a_sixth_of_intercoms_per_minute_app_budget() -> None:
    assert APP_WINDOW_LIMIT == 1666
    assert SandboxConfig().window_limit == 1666


async def test_wrong_or_missing_token_is_refused_with_401_access_token_invalid(
    api: httpx.AsyncClient,
) -> None:
    wrong = await post(api, event(), Authorization="Bearer nope")
    missing = await post(api, event(), without="Authorization")

    for response in (wrong, missing):
        error = assert_error(response, 401, "unauthorized")
        assert error["message"] == "Access Token Invalid"
    stats = (await api.get("/sandbox/stats")).json()
    assert stats["current_window"]["remaining"] == 5  # unauthenticated calls are not counted


async def test_accept_header_without_json_is_refused_with_406(api: httpx.AsyncClient) -> None:
    assert_error(await post(api, event(), Accept="text/html"), 406, "not_acceptable")
    assert_error(await post(api, event(), Accept=""), 406, "not_acceptable")
    assert (await post(api, event(), Accept="text/html, application/json;q=0.9")).status_code == 202


async def test_unknown_intercom_version_is_refused_with_400(api: httpx.AsyncClient) -> None:
    error = assert_error(
        await post(api, event(), **{"Intercom-Version": "9.9"}), 400, "intercom_version_invalid"
    )
    assert error["message"] == "The requested version could not be found"
    assert (await post(api, event(created_at=1), without="Intercom-Version")).status_code == 202
    accepted = (await api.get("/sandbox/accepted")).json()["events"]
    assert accepted[-1]["intercom_version"] == "2.14"  # the app's default when absent


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (b"{not json", 400, "bad_request", None),
        (b"[1, 2]", 400, "bad_request", None),
        (event(event_name=None), 400, "parameter_not_found", "event_name"),
        (event(created_at=None), 400, "parameter_not_found", "created_at"),
        (event(user_id=None), 400, "parameter_not_found", "user_id"),
        (event(created_at="2024-01-01"), 400, "type_mismatch", "created_at"),
        (event(created_at=True), 400, "type_mismatch", "created_at"),
        (event(user_id=42), 400, "type_mismatch", "user_id"),
        (event(metadata=["a"]), 400, "type_mismatch", "metadata"),
        (event(event_name="  "), 422, "unprocessable_entity", "event_name"),
        (event(metadata={"nested": {"a": 1}}), 422, "unprocessable_entity", "metadata.nested"),
        (event(metadata={"flag": True}), 422, "unprocessable_entity", "metadata.flag"),
        (event(metadata={"paid_date": "today"}), 422, "unprocessable_entity", "metadata.paid_date"),
        (
            event(metadata={"price": {"amount": -5, "currency": "eur"}}),
            422,
            "unprocessable_entity",
            "metadata.price",
        ),
    ],
)
async def test_invalid_bodies_get_intercoms_error_shape(
    api: httpx.AsyncClient, body: object, status: int, code: str, field: str | None
) -> None:
    error = assert_error(await post(api, body), status, code)
    assert error.get("field") == field
    assert (await api.get("/sandbox/accepted")).json()["events"] == []


async def test_documented_metadata_types_are_accepted(api: httpx.AsyncClient) -> None:
    metadata = {
        "source": "desktop",
        "load": 3.67,
        "contact_date": 1392036272,
        "article": "https://example.org/ab1de.html",
        "guide": {"url": "https://example.org/ab1de.html", "value": "the dude abides"},
        "price": {"amount": 34999, "currency": "eur"},
    }
    response = await post(api, event(email="A@Example.com", user_id=None, metadata=metadata))

    assert response.status_code == 202
    (entry,) = (await api.get("/sandbox/accepted")).json()["events"]
    assert entry["event"]["metadata"] == metadata


async def test_metadata_beyond_ten_keys_is_ignored_as_intercom_does(
    api: httpx.AsyncClient,
) -> None:
    metadata = {f"key{index:02d}": index for index in range(12)}
    response = await post(api, event(metadata=metadata))

    assert response.status_code == 202
    (entry,) = (await api.get("/sandbox/accepted")).json()["events"]
    assert entry["ignored_metadata_keys"] == ["key10", "key11"]


async def test_window_budget_runs_out_with_429_then_resets_at_the_next_window(
    api: httpx.AsyncClient, clock: FakeClock
) -> None:
    answers = [await post(api, event(created_at=index)) for index in range(7)]

    assert [answer.status_code for answer in answers] == [202] * 5 + [429] * 2
    assert [answer.headers["x-ratelimit-remaining"] for answer in answers] == [
        "4", "3", "2", "1", "0", "0", "0",
    ]  # fmt: skip
    limited = assert_error(answers[-1], 429, "rate_limit_exceeded")
    assert limited["message"]
    assert "retry-after" not in answers[-1].headers  # Intercom documents none
    assert {answer.headers["x-ratelimit-reset"] for answer in answers} == {"1700000010"}

    clock.now = 1_700_000_010.0  # the reset time
    fresh = await post(api, event(created_at=100))
    assert fresh.status_code == 202
    assert fresh.headers["x-ratelimit-remaining"] == "4"
    assert fresh.headers["x-ratelimit-reset"] == "1700000020"

    windows = (await api.get("/sandbox/stats")).json()["windows"]
    assert [(w["start"], w["admitted"], w["rejected"]) for w in windows] == [
        (1_700_000_000, 5, 2),
        (1_700_000_010, 1, 0),
    ]


async def test_duplicates_are_accepted_flagged_and_still_charged(api: httpx.AsyncClient) -> None:
    first = await post(api, event())
    again = await post(api, event(metadata={"changed": "yes"}))
    other_name = await post(api, event(event_name="cancelled-order"))

    assert [first.status_code, again.status_code, other_name.status_code] == [202, 202, 202]
    assert again.headers["x-ratelimit-remaining"] == "3"
    entries = (await api.get("/sandbox/accepted")).json()["events"]
    assert [entry["duplicate"] for entry in entries] == [False, True, False]
    stats = (await api.get("/sandbox/stats")).json()
    assert (stats["accepted"], stats["unique_accepted"], stats["duplicates"]) == (3, 2, 1)


async def test_accepted_log_keeps_arrival_order_and_pages_by_sequence(
    api: httpx.AsyncClient,
) -> None:
    for index in range(4):
        await post(api, event(user_id=f"user-{index}"))

    first_page = (await api.get("/sandbox/accepted", params={"limit": 3})).json()
    rest = (await api.get("/sandbox/accepted", params={"since": first_page["last_seq"]})).json()

    ids = [entry["event"]["user_id"] for entry in first_page["events"] + rest["events"]]
    assert ids == ["user-0", "user-1", "user-2", "user-3"]
    assert [entry["seq"] for entry in rest["events"]] == [4]
    assert rest["total"] == 4


async def test_listing_a_users_events_returns_what_was_accepted(api: httpx.AsyncClient) -> None:
    await api.post("/sandbox/config", json={"window_limit": 10})
    await post(api, event(created_at=1))
    await post(api, event(created_at=2))
    await post(api, event(created_at=2))  # a duplicate is not listed twice
    await post(api, event(user_id="someone-else"))

    listed = await api.get("/events", params={"type": "user", "user_id": "user-1"}, headers=HEADERS)
    summary = await api.get(
        "/events", params={"type": "user", "user_id": "user-1", "summary": "true"}, headers=HEADERS
    )

    assert listed.status_code == 200
    assert "x-ratelimit-remaining" in listed.headers
    assert [item["created_at"] for item in listed.json()["events"]] == [1, 2]
    assert summary.json()["events"] == [
        {
            "name": "placed-order",
            "count": 2,
            "first": "1970-01-01T00:00:01.000+00:00",
            "last": "1970-01-01T00:00:02.000+00:00",
        }
    ]


async def test_a_changed_token_makes_every_call_answer_401(api: httpx.AsyncClient) -> None:
    changed = await api.post("/sandbox/config", json={"access_token": "rotated"})

    assert changed.status_code == 200
    assert_error(await post(api, event()), 401, "unauthorized")
    assert (await post(api, event(), Authorization="Bearer rotated")).status_code == 202


async def test_a_burst_of_5xx_answers_the_next_calls_then_stops(api: httpx.AsyncClient) -> None:
    await api.post("/sandbox/config", json={"fail_next": 2, "error_status": 503})

    answers = [await post(api, event(created_at=index)) for index in range(3)]

    assert [answer.status_code for answer in answers] == [503, 503, 202]
    assert_error(answers[0], 503, "service_unavailable")
    stats = (await api.get("/sandbox/stats")).json()
    assert stats["injected_errors"] == 2
    assert stats["by_status"] == {"202": 1, "503": 2}
    assert len((await api.get("/sandbox/accepted")).json()["events"]) == 1


async def test_error_rate_answers_about_that_share_of_calls_with_errors(clock: FakeClock) -> None:
    config = SandboxConfig(window_limit=None, error_rate=0.3)
    async with sandbox_client(config, clock) as api:
        answers = [await post(api, event(created_at=index)) for index in range(200)]
        statuses = [answer.status_code for answer in answers]
        assert set(statuses) == {202, 500}
        assert 30 <= statuses.count(500) <= 90
        assert_error(answers[statuses.index(500)], 500, "server_error")


async def test_latency_is_added_to_every_call(api: httpx.AsyncClient) -> None:
    await api.post("/sandbox/config", json={"latency_seconds": 0.2})

    started = time.perf_counter()
    response = await post(api, event())

    assert response.status_code == 202
    assert time.perf_counter() - started >= 0.2


async def test_a_hanging_call_answers_504_after_the_hang_and_records_nothing(
    api: httpx.AsyncClient,
) -> None:
    await api.post("/sandbox/config", json={"timeout_rate": 1.0, "hang_seconds": 0.3})

    started = time.perf_counter()
    response = await post(api, event())

    assert time.perf_counter() - started >= 0.3
    assert_error(response, 504, "request_timeout")
    stats = (await api.get("/sandbox/stats")).json()
    assert stats["injected_timeouts"] == 1
    assert stats["accepted"] == 0


async def test_config_changes_are_validated(api: httpx.AsyncClient) -> None:
    bad_rate = await api.post("/sandbox/config", json={"error_rate": 2})
    unknown = await api.post("/sandbox/config", json={"colour": "blue"})

    assert bad_rate.status_code == 422
    assert bad_rate.json()["errors"][0]["field"] == "error_rate"
    assert unknown.status_code == 422
    assert (await api.get("/sandbox/config")).json()["error_rate"] == 0.0


async def test_lowering_the_window_limit_applies_to_the_current_window(
    api: httpx.AsyncClient,
) -> None:
    await post(api, event(created_at=1))
    await post(api, event(created_at=2))
    await api.post("/sandbox/config", json={"window_limit": 2})

    assert_error(await post(api, event(created_at=3)), 429, "rate_limit_exceeded")
    await api.post("/sandbox/config", json={"window_limit": None})
    unlimited = await post(api, event(created_at=4))
    assert unlimited.status_code == 202
    assert int(unlimited.headers["x-ratelimit-remaining"]) > 1_000_000


async def test_reset_forgets_events_counters_and_windows(api: httpx.AsyncClient) -> None:
    for index in range(6):
        await post(api, event(created_at=index))

    assert (await api.post("/sandbox/reset")).status_code == 200

    stats = (await api.get("/sandbox/stats")).json()
    assert (stats["calls"], stats["accepted"], stats["rate_limited"]) == (0, 0, 0)
    assert (await api.get("/sandbox/accepted")).json()["events"] == []
    after = await post(api, event())
    assert after.status_code == 202  # not a duplicate of a forgotten event, budget is back
    assert after.headers["x-ratelimit-remaining"] == "4"


async def test_unknown_paths_answer_intercoms_not_found_shape(api: httpx.AsyncClient) -> None:
    response = await api.get("/contacts", headers=HEADERS)

    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


async def test_calls_refused_for_their_headers_are_not_charged_but_bad_bodies_are(
    api: httpx.AsyncClient,
) -> None:
    await post(api, event(), Accept="text/html")
    await post(api, event(), **{"Intercom-Version": "0.1"})
    bad_body = await post(api, event(created_at=None))

    assert bad_body.status_code == 400
    assert bad_body.headers["x-ratelimit-remaining"] == "4"
    windows = (await api.get("/sandbox/stats")).json()["windows"]
    assert [window["admitted"] for window in windows] == [1]
