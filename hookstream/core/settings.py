"""The one settings object of hookstream, read from environment variables.

Built once at an entrypoint (`hookstream.cli`) and passed down; nothing else reads
`os.environ`. Secrets are `SecretStr` and may also come from files in a secrets directory
(`HOOKSTREAM_SECRETS_DIR`, e.g. a mounted Kubernetes Secret: one file per variable name).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

INTERCOM_REGION_BASE_URLS = {
    "us": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}

MiB = 1024 * 1024


def _env(name: str, default: Any, description: str, **kwargs: Any) -> Any:
    """A field read from exactly the environment variable `name` (case-insensitive)."""
    return Field(
        default,
        validation_alias=AliasChoices(name, name.lower()),
        description=description,
        **kwargs,
    )


class Settings(BaseSettings):
    """Every setting of every hookstream service. The README's settings table mirrors it."""

    model_config = SettingsConfigDict(
        case_sensitive=False,
        populate_by_name=True,
        extra="ignore",
        secrets_dir=None,
    )

    # -- shared ---------------------------------------------------------------------------
    kafka_bootstrap_servers: str = _env(
        "KAFKA_BOOTSTRAP_SERVERS", "localhost:9092", "Kafka bootstrap servers, comma-separated."
    )
    raw_topic: str = _env(
        "HOOKSTREAM_RAW_TOPIC", "intercom.notifications", "Topic the ingest produces to."
    )
    dlq_topic: str = _env(
        "HOOKSTREAM_DLQ_TOPIC",
        "intercom.notifications.dlq",
        "Dead-letter topic for notifications the worker cannot process.",
    )
    data_events_topic: str = _env(
        "HOOKSTREAM_DATA_EVENTS_TOPIC", "intercom.data-events", "Data events to send to Intercom."
    )
    data_events_dlq_topic: str = _env(
        "HOOKSTREAM_DATA_EVENTS_DLQ_TOPIC",
        "intercom.data-events.dlq",
        "Dead-letter topic for data events that cannot be sent.",
    )
    topic_partitions: int = _env(
        "HOOKSTREAM_TOPIC_PARTITIONS", 6, "Partitions of the topics hookstream creates.", ge=1
    )
    topic_replication: int = _env(
        "HOOKSTREAM_TOPIC_REPLICATION", 1, "Replication factor of the topics it creates.", ge=1
    )
    log_level: Literal["debug", "info", "warning", "error"] = _env(
        "HOOKSTREAM_LOG_LEVEL", "info", "Log level. Payloads are logged only at debug."
    )
    log_format: Literal["auto", "json", "console"] = _env(
        "HOOKSTREAM_LOG_FORMAT", "auto", "json, console, or auto (console on a terminal)."
    )

    # -- ingest ---------------------------------------------------------------------------
    intercom_client_secret: SecretStr | None = _env(
        "INTERCOM_CLIENT_SECRET", None, "The Intercom app's client secret that signs webhooks."
    )
    intercom_client_secrets: Annotated[list[SecretStr], NoDecode] = _env(
        "INTERCOM_CLIENT_SECRETS",
        [],
        "More client secrets, comma-separated, accepted too (for rotation).",
    )
    ingest_host: str = _env("HOOKSTREAM_INGEST_HOST", "127.0.0.1", "Ingest listen address.")
    ingest_port: int = _env("HOOKSTREAM_INGEST_PORT", 8080, "Ingest listen port.")
    ingest_workers: int = _env(
        "HOOKSTREAM_INGEST_WORKERS", 1, "Ingest worker processes (one spool each).", ge=1
    )
    max_body_bytes: int = _env(
        "HOOKSTREAM_MAX_BODY_BYTES", MiB, "Largest webhook body accepted (413 above).", ge=1
    )
    produce_timeout_seconds: float = _env(
        "HOOKSTREAM_PRODUCE_TIMEOUT_SECONDS",
        0.3,
        "How long a request waits for Kafka's ack before the record goes to the spool.",
        gt=0,
    )
    spool_path: Path = _env(
        "HOOKSTREAM_SPOOL_PATH",
        Path("var/spool.sqlite3"),
        "SQLite file of the ingest's durable spool (one per ingest process).",
    )
    spool_max_bytes: int = _env(
        "HOOKSTREAM_SPOOL_MAX_BYTES",
        512 * MiB,
        "Spool capacity in payload bytes; past it the ingest answers 503.",
        ge=1,
    )
    api_token: SecretStr | None = _env(
        "HOOKSTREAM_API_TOKEN", None, "Bearer token that POST /events requires."
    )

    # -- streams worker -------------------------------------------------------------------
    worker_id: str = _env("HOOKSTREAM_WORKER_ID", "hookstream", "Faust app id (consumer group).")
    worker_web_port: int = _env(
        "HOOKSTREAM_WORKER_WEB_PORT", 6066, "Port of the worker's /metrics and health."
    )
    data_dir: Path = _env(
        "HOOKSTREAM_DATA_DIR", Path("var/faust"), "Faust data directory (RocksDB tables)."
    )
    store: str = _env(
        "HOOKSTREAM_STORE", "rocksdb://", "Table store: rocksdb:// in production, memory://."
    )
    route_prefix: str = _env(
        "HOOKSTREAM_ROUTE_PREFIX", "intercom.", "Prefix of the per-topic routed topics."
    )
    routes_file: Path | None = _env(
        "HOOKSTREAM_ROUTES_FILE", None, "YAML routes file that overrides the default routing."
    )
    dedup_ttl_seconds: float = _env(
        "HOOKSTREAM_DEDUP_TTL_SECONDS",
        7 * 24 * 3600,
        "How long a notification id is remembered for deduplication.",
        gt=0,
    )
    worker_commit_interval_seconds: float = _env(
        "HOOKSTREAM_WORKER_COMMIT_INTERVAL_SECONDS",
        0.5,
        "How often the worker commits its transaction: routed records become visible then.",
        gt=0,
    )
    worker_session_timeout_seconds: float = _env(
        "HOOKSTREAM_WORKER_SESSION_TIMEOUT_SECONDS",
        10.0,
        "How long the group waits for a silent worker before moving its partitions.",
        ge=6,
    )

    # -- sink -----------------------------------------------------------------------------
    intercom_access_token: SecretStr | None = _env(
        "INTERCOM_ACCESS_TOKEN", None, "Intercom access token for the Data Events API."
    )
    intercom_api_base_url: str | None = _env(
        "INTERCOM_API_BASE_URL", None, "Intercom API base URL (the sandbox in dev mode)."
    )
    intercom_region: Literal["us", "eu", "au"] = _env(
        "INTERCOM_REGION", "us", "Intercom region, used when no base URL is set."
    )
    intercom_version: str = _env("INTERCOM_VERSION", "2.14", "Intercom-Version header.")
    sink_rate_limit_per_minute: int = _env(
        "HOOKSTREAM_SINK_RATE_LIMIT_PER_MINUTE",
        10_000,
        "The app's Intercom budget (calls per minute), shared by all sink replicas.",
        ge=6,
    )
    sink_replicas: int = _env(
        "HOOKSTREAM_SINK_REPLICAS", 1, "Sink replicas that share the budget.", ge=1
    )
    sink_batch_size: int = _env(
        "HOOKSTREAM_SINK_BATCH_SIZE", 100, "Records taken from Kafka per batch.", ge=1
    )
    sink_batch_within_seconds: float = _env(
        "HOOKSTREAM_SINK_BATCH_WITHIN_SECONDS", 0.5, "Longest wait to fill a batch.", gt=0
    )
    sink_concurrency: int = _env(
        "HOOKSTREAM_SINK_CONCURRENCY", 32, "Calls to Intercom in flight at once.", ge=1
    )
    sink_request_timeout_seconds: float = _env(
        "HOOKSTREAM_SINK_REQUEST_TIMEOUT_SECONDS", 10.0, "Timeout of one call to Intercom.", gt=0
    )
    sink_retry_deadline_seconds: float = _env(
        "HOOKSTREAM_SINK_RETRY_DEADLINE_SECONDS",
        300.0,
        "How long a retryable failure is retried before the event is dead-lettered.",
        gt=0,
    )
    sink_dedup_window_seconds: float = _env(
        "HOOKSTREAM_SINK_DEDUP_WINDOW_SECONDS",
        24 * 3600,
        "The sink does not send one (identifier, event_name, created_at) twice within it.",
        ge=0,
    )
    sink_web_port: int = _env(
        "HOOKSTREAM_SINK_WEB_PORT", 6067, "Port of the sink's /metrics, /healthz and /readyz."
    )
    sink_id: str = _env(
        "HOOKSTREAM_SINK_ID", "hookstream-sink", "Faust app id of the sink (its consumer group)."
    )
    sink_dedup_max_entries: int = _env(
        "HOOKSTREAM_SINK_DEDUP_MAX_ENTRIES",
        1_000_000,
        "Most events the sink remembers for deduplication (about 90 bytes each).",
        ge=1,
    )
    sink_session_timeout_seconds: float = _env(
        "HOOKSTREAM_SINK_SESSION_TIMEOUT_SECONDS",
        10.0,
        "How long the group waits for a silent sink before moving its partitions.",
        ge=6,
    )
    sink_rate_window_seconds: float = _env(
        "HOOKSTREAM_SINK_RATE_WINDOW_SECONDS",
        10.0,
        "Length of Intercom's rate-limit window (10 s; shorter only against the sandbox).",
        gt=0,
    )

    # -- sandbox --------------------------------------------------------------------------
    sandbox_port: int = _env(
        "HOOKSTREAM_SANDBOX_PORT",
        8090,
        "Port of the local Intercom sandbox (`hookstream sandbox`, dev mode).",
        ge=0,
        le=65535,
    )

    @field_validator("intercom_client_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _check_ports(self) -> Settings:
        for name in ("ingest_port", "worker_web_port", "sink_web_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ValueError(f"{name} must be a TCP port, got {port}")
        return self

    @property
    def client_secrets(self) -> list[bytes]:
        """Every accepted webhook signing secret, as bytes, in the order given."""
        secrets = [self.intercom_client_secret] if self.intercom_client_secret else []
        secrets += self.intercom_client_secrets
        return [secret.get_secret_value().encode() for secret in secrets]

    @property
    def intercom_base_url(self) -> str:
        """Where the sink sends data events: the explicit base URL, else the region's host."""
        if self.intercom_api_base_url:
            return self.intercom_api_base_url.rstrip("/")
        return INTERCOM_REGION_BASE_URLS[self.intercom_region]


def settings_table() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) of every setting, in declaration order."""
    rows = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        variable = alias.choices[0] if isinstance(alias, AliasChoices) else name.upper()
        default = field.get_default(call_default_factory=True)
        shown = "" if default is None or default == [] else str(default)
        rows.append((str(variable), shown, field.description or ""))
    return rows


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment (and `HOOKSTREAM_SECRETS_DIR`), with overrides."""
    secrets_dir = os.environ.get("HOOKSTREAM_SECRETS_DIR")
    if secrets_dir:
        return Settings(_secrets_dir=secrets_dir, **overrides)
    return Settings(**overrides)
