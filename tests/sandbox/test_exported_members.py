"""The sandbox package's public names are the ones it documents, and all of them import."""

from __future__ import annotations

from hookstream import sandbox


def test_every_public_name_is_exported_and_importable() -> None:
    for name in sandbox.__all__:
        assert getattr(sandbox, name) is not None, name
    assert {"create_app", "SandboxConfig", "build_notification", "sign", "deliver"} <= set(
        sandbox.__all__
    )
