from __future__ import annotations

from pathlib import Path

import pytest

from hookstream.streams.errors import RouteFailed, RoutesFileError
from hookstream.streams.routes import (
    RouteTable,
    is_valid_topic_name,
    load_routes,
    route_table_from_mapping,
)


def test_without_a_routes_file_each_topic_goes_to_prefix_plus_topic() -> None:
    routes = load_routes("intercom.", None)
    assert routes.destinations("conversation.user.created") == (
        "intercom.conversation.user.created",
    )
    assert routes.destinations("ping") == ("intercom.ping",)


def test_first_matching_wildcard_rule_wins_and_can_fan_out_to_several_topics() -> None:
    routes = route_table_from_mapping(
        "intercom.",
        {
            "routes": [
                {"match": "conversation.admin.*", "to": ["support.admin", "{default}"]},
                {"match": "conversation.*", "to": ["support.all"]},
            ]
        },
    )
    assert routes.destinations("conversation.admin.open.assigned") == (
        "support.admin",
        "intercom.conversation.admin.open.assigned",
    )
    assert routes.destinations("conversation.user.created") == ("support.all",)
    assert routes.destinations("contact.user.created") == ("intercom.contact.user.created",)


def test_drop_rules_and_unmatched_drop_give_no_destination() -> None:
    routes = route_table_from_mapping(
        "x.",
        {
            "routes": [{"match": "ping", "drop": True}, {"match": "contact.*", "to": ["c"]}],
            "unmatched": "drop",
        },
    )
    assert routes.destinations("ping") == ()
    assert routes.destinations("conversation.user.created") == ()
    assert routes.destinations("contact.user.deleted") == ("c",)


def test_topic_placeholder_and_repeated_destinations_appear_once() -> None:
    routes = route_table_from_mapping(
        "intercom.",
        {"routes": [{"match": "*", "to": ["all.{topic}", "{default}", "intercom.{topic}"]}]},
    )
    assert routes.destinations("ticket.created") == (
        "all.ticket.created",
        "intercom.ticket.created",
    )


def test_a_destination_that_is_no_valid_topic_name_fails_the_route() -> None:
    routes = RouteTable("intercom.")
    with pytest.raises(RouteFailed):
        routes.destinations("conversation/../evil")


@pytest.mark.parametrize(
    "document",
    [
        {"routes": [{"match": "a"}]},  # neither to nor drop
        {"routes": [{"match": "a", "to": ["b"], "drop": True}]},  # both
        {"routes": [{"match": "a", "to": ["bad topic"]}]},
        {"routes": [{"match": "a", "to": ["{unknown}"]}]},
        {"routes": [{"match": "a", "to": ["b"], "extra": 1}]},
        {"unmatched": "maybe"},
    ],
)
def test_invalid_routes_are_refused_with_routes_file_error(document: dict[str, object]) -> None:
    with pytest.raises(RoutesFileError):
        route_table_from_mapping("intercom.", document)


def test_routes_file_is_read_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text('routes:\n  - match: "conversation.*"\n    to: [conversations]\n')
    routes = load_routes("intercom.", path)
    assert routes.destinations("conversation.user.replied") == ("conversations",)
    assert routes.static_destinations() == {"conversations"}


def test_unreadable_or_malformed_routes_file_is_a_routes_file_error(tmp_path: Path) -> None:
    with pytest.raises(RoutesFileError):
        load_routes("intercom.", tmp_path / "missing.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(RoutesFileError):
        load_routes("intercom.", path)
    path.write_text("routes: [\n")
    with pytest.raises(RoutesFileError):
        load_routes("intercom.", path)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("intercom.a-b_c", True),
        ("", False),
        (".", False),
        ("..", False),
        ("a b", False),
        ("x" * 250, False),
    ],
)
def test_topic_name_validity_follows_kafka(name: str, valid: bool) -> None:
    assert is_valid_topic_name(name) is valid
