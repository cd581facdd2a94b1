"""The running hookstream's version, from one place: the `version` in pyproject.toml, read back
from the installed distribution's metadata. `hookstream --version` shows it, each service logs
it at start-up and exports it as `hookstream_build_info{version=...} 1` (with the Python,
aiokafka and Faust it runs on: what a bug report needs), and the image carries it as its
`org.opencontainers.image.version` label."""

from __future__ import annotations

import platform
from importlib.metadata import version

from prometheus_client import CollectorRegistry, Info

__all__ = ["VERSION", "register_build_info"]

VERSION: str = version("hookstream")
_LIBRARIES = {"aiokafka": version("aiokafka"), "faust": version("faust-streaming")}


def register_build_info(registry: CollectorRegistry) -> Info:
    """Add `hookstream_build_info` (the version, and the Python, aiokafka and Faust it runs
    on) to `registry`."""
    info = Info(
        "hookstream_build",
        "The running hookstream's version, Python, aiokafka and Faust; the value is always 1.",
        registry=registry,
    )
    info.info({"version": VERSION, "python": platform.python_version(), **_LIBRARIES})
    return info
