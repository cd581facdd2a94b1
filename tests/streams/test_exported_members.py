from __future__ import annotations

import subprocess
import sys

from hookstream import streams


def test_public_names_of_the_streams_package_are_pinned() -> None:
    assert sorted(streams.__all__) == sorted(
        [
            "Deduplicator",
            "OutRecord",
            "Outcome",
            "Processor",
            "RawRecord",
            "RejectedRecord",
            "Rejection",
            "RouteFailed",
            "RouteTable",
            "RoutesFileError",
            "StreamsError",
            "WorkerMetrics",
            "load_routes",
        ]
    )
    for name in streams.__all__:
        assert getattr(streams, name) is not None


def test_importing_the_package_does_not_load_faust() -> None:
    # Checking routes or processing a record needs no Faust; only `hookstream.streams.app` does.
    probe = "import sys, streams; print('faust' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
