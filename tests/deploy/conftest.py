"""Fixtures of the deploy tests: each overlay rendered once per session."""

from __future__ import annotations

import pytest

from tests.deploy._manifests import OVERLAYS, Rendered, render


@pytest.fixture(scope="session")
def renders() -> dict[str, Rendered]:
    """Both overlays, rendered by kustomize."""
    return {overlay: render(overlay) for overlay in OVERLAYS}


@pytest.fixture(params=OVERLAYS)
def rendered(request: pytest.FixtureRequest, renders: dict[str, Rendered]) -> Rendered:
    """Each overlay in turn."""
    overlay: str = request.param
    return renders[overlay]


@pytest.fixture
def prod(renders: dict[str, Rendered]) -> Rendered:
    return renders["prod"]


@pytest.fixture
def dev(renders: dict[str, Rendered]) -> Rendered:
    return renders["dev"]
