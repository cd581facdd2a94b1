"""What the ingest, streams and sinks packages share: settings, the topic contract, logging."""

from hookstream.settings import Settings, load_settings

__all__ = ["Settings", "load_settings"]
