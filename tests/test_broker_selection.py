"""Which broker the test session uses (HOOKSTREAM_TEST_BROKER, tests/support/kafka.py)."""

from __future__ import annotations

import pytest

from tests.support.kafka import choose_broker


def _no_docker_call() -> bool:
    raise AssertionError("the Docker API is asked only when nothing else decides")


def test_the_setting_wins_over_what_the_machine_has() -> None:
    assert choose_broker("testcontainers", bootstrap=None, java=True, docker=_no_docker_call) == (
        "testcontainers"
    )
    assert choose_broker("launcher", bootstrap="b:9092", java=False, docker=_no_docker_call) == (
        "launcher"
    )
    assert choose_broker("external", bootstrap="b:9092", java=True, docker=_no_docker_call) == (
        "external"
    )


def test_a_named_bootstrap_server_is_used_when_nothing_is_set() -> None:
    assert choose_broker(None, bootstrap="b:9092", java=True, docker=_no_docker_call) == "external"


def test_the_launcher_where_java_is_present() -> None:
    assert choose_broker(None, bootstrap=None, java=True, docker=_no_docker_call) == "launcher"
    assert choose_broker("", bootstrap=None, java=True, docker=_no_docker_call) == "launcher"


def test_testcontainers_without_java_where_a_docker_api_answers() -> None:
    assert choose_broker(None, bootstrap=None, java=False, docker=lambda: True) == (
        "testcontainers"
    )


def test_no_java_and_no_docker_says_what_to_install() -> None:
    with pytest.raises(RuntimeError, match="install Java 17\\+ and Maven"):
        choose_broker(None, bootstrap=None, java=False, docker=lambda: False)


def test_an_unknown_or_incomplete_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="one of launcher, testcontainers, external"):
        choose_broker("docker", bootstrap=None, java=True, docker=_no_docker_call)
    with pytest.raises(ValueError, match="needs KAFKA_BOOTSTRAP_SERVERS"):
        choose_broker("external", bootstrap=None, java=True, docker=_no_docker_call)
