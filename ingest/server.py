"""The process entrypoint uvicorn imports in each worker: settings and logging from the
environment, then the app (both ports)."""

from __future__ import annotations

from hookstream.core.logs import configure_logging
from hookstream.core.settings import load_settings
from hookstream.ingest.app import IngestApp, create_app


def app_from_environment() -> IngestApp:
    """Build the ingest app from the environment (uvicorn calls this once per worker)."""
    settings = load_settings()
    configure_logging(settings.log.level, settings.log.format)
    return create_app(settings)
