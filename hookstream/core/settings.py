"""hookstream's settings, read from environment variables, in one group per concern.

    settings.kafka     how to reach Kafka (every Kafka client, through `core.kafka`)
    settings.topics    topic names, partitions, replication, routed prefix, largest body
    settings.log       log level and format
    settings.tracing   whether and where traces go (OpenTelemetry's own variables)
    settings.ingest    the webhook ingest
    settings.faust     the Faust apps' data directory and table store (worker and sink)
    settings.worker    the streams worker
    settings.sink      the sink and the Intercom API it calls
    settings.sandbox   the local Intercom sandbox

Built once at an entrypoint (`hookstream.cli`) and passed down; a component takes the groups
it needs, not the whole object; nothing else reads `os.environ`. Each field is read from
exactly one environment variable, the public contract the README's table lists (the group
structure is internal: the variable names are what they always were). Secrets are `SecretStr`
and may also come from files in a secrets directory (`HOOKSTREAM_SECRETS_DIR`, e.g. a mounted
Kubernetes Secret: one file per variable name).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    SettingsConfigDict,
)

INTERCOM_REGION_BASE_URLS = {
    "us": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}

MiB = 1024 * 1024

_Port = Annotated[int, Field(ge=0, le=65535)]


MIN_SECRET_BYTES = 16
# The development values of dev mode, the compose stack and the dev overlay: fine locally,
# refused anywhere else.
DEV_SECRETS = frozenset({"dev-client-secret", "dev-api-token", "sandbox-token"})
# Values that say "put the real secret here" (normalised: lower case, letters and digits).
_PLACEHOLDERS = frozenset({"changeme", "secret", "password", "token", "example", "test", "todo"})
_PLACEHOLDER_PREFIXES = ("replaceme", "changeme", "yoursecret", "yourtoken")


def _blank(value: object) -> bool:
    return isinstance(value, SecretStr) and not value.get_secret_value().strip()


def _env(name: str, default: Any, description: str, **kwargs: Any) -> Any:
    """A field read from exactly the environment variable `name` (case-insensitive)."""
    return Field(
        default,
        validation_alias=AliasChoices(name, name.lower()),
        description=description,
        **kwargs,
    )


class _Group(BaseSettings):
    """A group of settings, each read from its own environment variable and from nothing
    else (no `populate_by_name`: with it pydantic-settings also reads the bare field name, so
    `PORT` would set HOOKSTREAM_INGEST_PORT and OpenSSL's `SSL_CERT_FILE` would set
    KAFKA_SSL_CERT_FILE). Code builds a group by the variables' names, in lower case
    (`TopicSettings(hookstream_topic_partitions=1)`). A secret that is empty or only
    whitespace (an empty variable, an empty secret file) is unset."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        if isinstance(value, SecretStr):
            return value if value.get_secret_value().strip() else None
        if isinstance(value, list) and any(isinstance(item, SecretStr) for item in value):
            return [item for item in value if not _blank(item)]
        return value


class KafkaSettings(_Group):
    """How every Kafka client reaches the cluster."""

    bootstrap_servers: str = _env(
        "KAFKA_BOOTSTRAP_SERVERS", "localhost:9092", "Kafka bootstrap servers, comma-separated."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = _env(
        "KAFKA_SECURITY_PROTOCOL",
        "PLAINTEXT",
        "PLAINTEXT, SSL (TLS, optionally with a client certificate), SASL_PLAINTEXT or SASL_SSL.",
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] = _env(
        "KAFKA_SASL_MECHANISM",
        "PLAIN",
        "SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER.",
    )
    sasl_username: str | None = _env(
        "KAFKA_SASL_USERNAME", None, "SASL user name (this service's principal)."
    )
    sasl_password: SecretStr | None = _env("KAFKA_SASL_PASSWORD", None, "SASL password.")
    ssl_ca_file: Path | None = _env(
        "KAFKA_SSL_CA_FILE",
        None,
        "PEM file of the CA(s) that sign the brokers' certificates (default: system trust).",
    )
    ssl_cert_file: Path | None = _env(
        "KAFKA_SSL_CERT_FILE", None, "PEM client certificate (mutual TLS)."
    )
    ssl_key_file: Path | None = _env(
        "KAFKA_SSL_KEY_FILE", None, "PEM private key of the client certificate (mutual TLS)."
    )
    ssl_key_password: SecretStr | None = _env(
        "KAFKA_SSL_KEY_PASSWORD", None, "Password of the client key, if it is encrypted."
    )
    sasl_oauthbearer_provider: Literal["oidc", "aws-msk-iam"] = _env(
        "KAFKA_SASL_OAUTHBEARER_PROVIDER",
        "oidc",
        "Where OAUTHBEARER tokens come from: oidc (client credentials) or aws-msk-iam.",
    )
    sasl_oauthbearer_token_endpoint_url: str | None = _env(
        "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL", None, "OIDC token endpoint (oidc provider)."
    )
    sasl_oauthbearer_client_id: str | None = _env(
        "KAFKA_SASL_OAUTHBEARER_CLIENT_ID", None, "OIDC client id (oidc provider)."
    )
    sasl_oauthbearer_client_secret: SecretStr | None = _env(
        "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET", None, "OIDC client secret (oidc provider)."
    )
    sasl_oauthbearer_scope: str | None = _env(
        "KAFKA_SASL_OAUTHBEARER_SCOPE", None, "OIDC scope to ask for, if the provider needs one."
    )
    aws_region: str | None = _env(
        "AWS_REGION", None, "AWS region of the MSK cluster (aws-msk-iam provider)."
    )
    ssl_check_hostname: bool = _env(
        "KAFKA_SSL_CHECK_HOSTNAME",
        True,
        "Check that the broker's certificate names the host connected to.",
    )

    @model_validator(mode="after")
    def _complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL_") and self.sasl_mechanism == "OAUTHBEARER":
            self._oauthbearer_complete()
        elif self.security_protocol.startswith("SASL_") and not (
            self.sasl_username and self.sasl_password
        ):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs KAFKA_SASL_USERNAME"
                " and KAFKA_SASL_PASSWORD"
            )
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            raise ValueError("KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together")
        return self

    def _oauthbearer_complete(self) -> None:
        if self.sasl_oauthbearer_provider == "aws-msk-iam":
            if not self.aws_region:
                raise ValueError("KAFKA_SASL_OAUTHBEARER_PROVIDER=aws-msk-iam needs AWS_REGION")
            return
        missing = [
            name
            for name, value in (
                (
                    "KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL",
                    self.sasl_oauthbearer_token_endpoint_url,
                ),
                ("KAFKA_SASL_OAUTHBEARER_CLIENT_ID", self.sasl_oauthbearer_client_id),
                ("KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET", self.sasl_oauthbearer_client_secret),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"KAFKA_SASL_MECHANISM=OAUTHBEARER (oidc) needs {', '.join(missing)}")


class TopicSettings(_Group):
    """The topics hookstream reads and writes, and how it creates them."""

    raw: str = _env(
        "HOOKSTREAM_RAW_TOPIC", "intercom.notifications", "Topic the ingest produces to."
    )
    dlq: str = _env(
        "HOOKSTREAM_DLQ_TOPIC",
        "intercom.notifications.dlq",
        "Dead-letter topic for notifications the worker cannot process.",
    )
    data_events: str = _env(
        "HOOKSTREAM_DATA_EVENTS_TOPIC", "intercom.data-events", "Data events to send to Intercom."
    )
    data_events_dlq: str = _env(
        "HOOKSTREAM_DATA_EVENTS_DLQ_TOPIC",
        "intercom.data-events.dlq",
        "Dead-letter topic for data events that cannot be sent.",
    )
    partitions: int = _env(
        "HOOKSTREAM_TOPIC_PARTITIONS", 6, "Partitions of the topics hookstream creates.", ge=1
    )
    replication: int = _env(
        "HOOKSTREAM_TOPIC_REPLICATION", 1, "Replication factor of the topics it creates.", ge=1
    )
    route_prefix: str = _env(
        "HOOKSTREAM_ROUTE_PREFIX", "intercom.", "Prefix of the per-topic routed topics."
    )
    create: bool = _env(
        "HOOKSTREAM_CREATE_TOPICS",
        True,
        "Create missing topics at run time (catalogue, routed, Faust's internal ones); false"
        " where something else owns them (Strimzi KafkaTopic): then a missing topic is an error.",
    )
    max_body_bytes: int = _env(
        "HOOKSTREAM_MAX_BODY_BYTES",
        MiB,
        "Largest webhook body accepted (413 above); sizes the topics that carry bodies.",
        ge=1,
    )


class LogSettings(_Group):
    """Logging, the same for every service."""

    level: Literal["debug", "info", "warning", "error"] = _env(
        "HOOKSTREAM_LOG_LEVEL", "info", "Log level. Payloads are logged only at debug."
    )
    format: Literal["auto", "json", "console"] = _env(
        "HOOKSTREAM_LOG_FORMAT", "auto", "json, console, or auto (console on a terminal)."
    )


class TracingSettings(_Group):
    """OpenTelemetry traces, the same for every service: the standard variables that turn
    them on (`hookstream.core.tracing`). The SDK reads its other `OTEL_*` variables itself
    (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`, `OTEL_SERVICE_NAME`,
    `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`, ...)."""

    otel_exporter_otlp_endpoint: str | None = _env(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        None,
        "OTLP/HTTP collector base URL (`/v1/traces` is added); traces are off while unset.",
    )
    otel_exporter_otlp_traces_endpoint: str | None = _env(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        None,
        "Full OTLP/HTTP traces URL; wins over OTEL_EXPORTER_OTLP_ENDPOINT, also turns traces on.",
    )
    otel_exporter_otlp_protocol: Literal["http/protobuf"] = _env(
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "http/protobuf",
        "OTLP protocol: http/protobuf is the one hookstream ships (no gRPC).",
    )
    otel_sdk_disabled: bool = _env(
        "OTEL_SDK_DISABLED", False, "true turns traces off whatever the endpoint."
    )

    @property
    def traces_endpoint(self) -> str | None:
        """Where spans are exported, or None: traces are off."""
        if self.otel_sdk_disabled:
            return None
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint
        if self.otel_exporter_otlp_endpoint:
            return self.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        return None


_APP_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")


class ClientSecret(BaseModel):
    """One entry of INTERCOM_CLIENT_SECRETS: a webhook signing secret, named by its app
    (`appA:secret`) or not (`secret`)."""

    model_config = ConfigDict(frozen=True)

    app: str | None
    secret: SecretStr

    @classmethod
    def parse(cls, entry: object, position: int) -> object:
        """The secret of the `position`th entry (`name:secret` or `secret`); anything but a
        string is left to pydantic. The errors never quote the entry: it is a secret."""
        if not isinstance(entry, str):
            return entry
        name, colon, secret = entry.strip().partition(":")
        if not colon:
            return cls(app=None, secret=SecretStr(name))
        where = f"INTERCOM_CLIENT_SECRETS entry {position}"
        if not name.strip():
            raise ValueError(f"{where}: the app name before `:` is empty")
        if not _APP_NAME.fullmatch(name.strip()):
            raise ValueError(
                f"{where}: the app name before `:` must be 1 to 100 letters, digits, `.`, `_`"
                " or `-` (`appA:secret1,appB:secret2`)"
            )
        if not secret.strip():
            raise ValueError(f"{where}: the secret of app {name.strip()} is empty")
        return cls(app=name.strip(), secret=SecretStr(secret.strip()))


class IngestSettings(_Group):
    """The webhook ingest."""

    # A malformed INTERCOM_CLIENT_SECRETS must not be quoted in the error: it holds secrets.
    model_config = SettingsConfigDict(hide_input_in_errors=True)

    intercom_client_secret: SecretStr | None = _env(
        "INTERCOM_CLIENT_SECRET", None, "The Intercom app's client secret that signs webhooks."
    )
    intercom_client_secrets: Annotated[list[ClientSecret], NoDecode] = _env(
        "INTERCOM_CLIENT_SECRETS",
        [],
        "More client secrets, comma-separated, accepted too (rotation), each optionally named"
        " by its app (`appA:secret1,appB:secret2`: the `hookstream-app` header says which).",
    )
    host: str = _env("HOOKSTREAM_INGEST_HOST", "127.0.0.1", "Ingest listen address.")
    port: _Port = _env(
        "HOOKSTREAM_INGEST_PORT",
        8080,
        "Ingest webhook port: the webhook (POST, HEAD), POST /events and a bare /healthz.",
    )
    admin_port: int = _env(
        "HOOKSTREAM_INGEST_ADMIN_PORT",
        8081,
        "Ingest admin port (same address): /metrics, /readyz, detailed /healthz, /docs.",
        ge=1,
        le=65535,
    )
    workers: int = _env(
        "HOOKSTREAM_INGEST_WORKERS", 1, "Ingest worker processes (one spool each).", ge=1
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
    body_timeout_seconds: float = _env(
        "HOOKSTREAM_BODY_TIMEOUT_SECONDS",
        10.0,
        "Longest time a client may take to send a request body (408 after it).",
        gt=0,
    )
    max_concurrency: int = _env(
        "HOOKSTREAM_INGEST_MAX_CONCURRENCY",
        1000,
        "Requests one ingest process serves at once; over it a fast 503 with Retry-After.",
        ge=1,
    )
    drain_failure_seconds: float = _env(
        "HOOKSTREAM_SPOOL_DRAIN_FAILURE_SECONDS",
        120.0,
        "How long the spool's drain may keep failing before /healthz fails (a restart).",
        gt=0,
    )
    api_token: SecretStr | None = _env(
        "HOOKSTREAM_API_TOKEN", None, "Bearer token that POST /events requires."
    )
    events_max_per_request: int = _env(
        "HOOKSTREAM_EVENTS_MAX_PER_REQUEST",
        1000,
        "Most data events one POST /events may carry (422 past it).",
        ge=1,
    )
    transactional_id_prefix: str = _env(
        "HOOKSTREAM_INGEST_TRANSACTIONAL_ID_PREFIX",
        "hookstream-ingest-",
        "Prefix of the transactional ids of POST /events (host name and spool slot follow).",
        min_length=1,
    )
    refused_log_interval_seconds: float = _env(
        "HOOKSTREAM_REFUSED_LOG_INTERVAL_SECONDS",
        10.0,
        "At most one info line per refusal reason this often, with the count since (debug: all).",
        gt=0,
    )
    allow_dev_secrets: bool = _env(
        "HOOKSTREAM_ALLOW_DEV_SECRETS",
        False,
        "Start the ingest and the sink on short, placeholder or development secrets (dev only).",
    )

    @model_validator(mode="after")
    def _two_ports(self) -> IngestSettings:
        if self.admin_port == self.port:
            raise ValueError(
                f"HOOKSTREAM_INGEST_ADMIN_PORT and HOOKSTREAM_INGEST_PORT are both {self.port}:"
                " the admin endpoints need a port of their own"
            )
        return self

    @field_validator("intercom_client_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list | tuple):
            return value
        entries = [e.get_secret_value() if isinstance(e, SecretStr) else e for e in value]
        return [
            ClientSecret.parse(entry, position)
            for position, entry in enumerate(entries, 1)
            if not (isinstance(entry, str) and not entry.strip())  # blank: unset, as before
        ]

    @field_validator("intercom_client_secrets", mode="after")
    @classmethod
    def _distinct_names(cls, value: list[ClientSecret]) -> list[ClientSecret]:
        names = [secret.app for secret in value if secret.app is not None]
        if twice := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(
                f"INTERCOM_CLIENT_SECRETS names the app {', '.join(twice)} more than once:"
                " each name may have one secret"
            )
        return value

    @property
    def client_secrets(self) -> list[bytes]:
        """Every accepted webhook signing secret, as bytes, in the order given."""
        return [secret for _app, secret in self.signing_secrets]

    @property
    def signing_secrets(self) -> list[tuple[str | None, bytes]]:
        """(app name, secret) of every accepted webhook signing secret, in the order given:
        INTERCOM_CLIENT_SECRET first (unnamed), then INTERCOM_CLIENT_SECRETS."""
        secrets: list[tuple[str | None, bytes]] = []
        if self.intercom_client_secret:
            secrets.append((None, self.intercom_client_secret.get_secret_value().encode()))
        secrets += [
            (s.app, s.secret.get_secret_value().encode()) for s in self.intercom_client_secrets
        ]
        return secrets


class FaustSettings(_Group):
    """Where the Faust apps (worker and sink) keep their state."""

    data_dir: Path = _env(
        "HOOKSTREAM_DATA_DIR", Path("var/faust"), "Faust data directory (RocksDB tables)."
    )
    store: str = _env(
        "HOOKSTREAM_STORE", "rocksdb://", "Table store: rocksdb:// in production, memory://."
    )


class WorkerSettings(_Group):
    """The streams worker."""

    id: str = _env("HOOKSTREAM_WORKER_ID", "hookstream", "Faust app id (consumer group).")
    web_port: _Port = _env(
        "HOOKSTREAM_WORKER_WEB_PORT", 6066, "Port of the worker's /metrics and health."
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
    commit_interval_seconds: float = _env(
        "HOOKSTREAM_WORKER_COMMIT_INTERVAL_SECONDS",
        0.5,
        "Longest interval between the worker's transaction commits (routed records become"
        " visible at a commit).",
        gt=0,
    )
    commit_early_after_seconds: float = _env(
        "HOOKSTREAM_WORKER_COMMIT_EARLY_AFTER_SECONDS",
        0.05,
        "Commit sooner, once the last commit is this old, while the worker keeps up with its"
        " input.",
        gt=0,
    )
    commit_early_max_records: int = _env(
        "HOOKSTREAM_WORKER_COMMIT_EARLY_MAX_RECORDS",
        1000,
        "Most raw records behind (consumer lag) at which the worker still commits early (0:"
        " only the interval).",
        ge=0,
    )
    session_timeout_seconds: float = _env(
        "HOOKSTREAM_WORKER_SESSION_TIMEOUT_SECONDS",
        10.0,
        "How long the group waits for a silent worker before moving its partitions.",
        ge=6,
    )


class SinkSettings(_Group):
    """The sink and the Intercom API it calls."""

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
    rate_limit_per_minute: int = _env(
        "HOOKSTREAM_SINK_RATE_LIMIT_PER_MINUTE",
        10_000,
        "The app's Intercom budget (calls per minute), shared by all sink replicas.",
        ge=6,
    )
    replicas: int = _env(
        "HOOKSTREAM_SINK_REPLICAS", 1, "Sink replicas that share the budget.", ge=1
    )
    batch_size: int = _env(
        "HOOKSTREAM_SINK_BATCH_SIZE", 100, "Records taken from Kafka per batch.", ge=1
    )
    batch_within_seconds: float = _env(
        "HOOKSTREAM_SINK_BATCH_WITHIN_SECONDS", 0.5, "Longest wait to fill a batch.", gt=0
    )
    concurrency: int = _env(
        "HOOKSTREAM_SINK_CONCURRENCY", 32, "Calls to Intercom in flight at once.", ge=1
    )
    request_timeout_seconds: float = _env(
        "HOOKSTREAM_SINK_REQUEST_TIMEOUT_SECONDS", 10.0, "Timeout of one call to Intercom.", gt=0
    )
    retry_deadline_seconds: float = _env(
        "HOOKSTREAM_SINK_RETRY_DEADLINE_SECONDS",
        300.0,
        "How long a retryable failure is retried before the event is dead-lettered.",
        gt=0,
    )
    dedup_window_seconds: float = _env(
        "HOOKSTREAM_SINK_DEDUP_WINDOW_SECONDS",
        24 * 3600,
        "The sink does not send one (identifier, event_name, created_at) twice within it.",
        ge=0,
    )
    web_port: _Port = _env(
        "HOOKSTREAM_SINK_WEB_PORT", 6067, "Port of the sink's /metrics, /healthz and /readyz."
    )
    id: str = _env(
        "HOOKSTREAM_SINK_ID", "hookstream-sink", "Faust app id of the sink (its consumer group)."
    )
    dedup_max_entries: int = _env(
        "HOOKSTREAM_SINK_DEDUP_MAX_ENTRIES",
        1_000_000,
        "Most events the sink remembers for deduplication (about 90 bytes each).",
        ge=1,
    )
    session_timeout_seconds: float = _env(
        "HOOKSTREAM_SINK_SESSION_TIMEOUT_SECONDS",
        10.0,
        "How long the group waits for a silent sink before moving its partitions.",
        ge=6,
    )
    rate_window_seconds: float = _env(
        "HOOKSTREAM_SINK_RATE_WINDOW_SECONDS",
        10.0,
        "Length of Intercom's rate-limit window (10 s; shorter only against the sandbox).",
        gt=0,
    )

    workspace_tokens_file: Path | None = _env(
        "HOOKSTREAM_SINK_WORKSPACE_TOKENS_FILE",
        None,
        "YAML or JSON file mapping workspace id to token and region (a public app's "
        "installations); re-read when it changes.",
    )
    workspace_tokens_poll_seconds: float = _env(
        "HOOKSTREAM_SINK_WORKSPACE_TOKENS_POLL_SECONDS",
        2.0,
        "How often the sink checks the workspace tokens file for a change.",
        gt=0,
    )
    workspace_max_queued: int = _env(
        "HOOKSTREAM_SINK_WORKSPACE_MAX_QUEUED",
        20_000,
        "With a tokens file: records of one workspace queued beyond its batch in flight "
        "before intake pauses for all.",
        ge=0,
    )
    max_held_records: int = _env(
        "HOOKSTREAM_SINK_MAX_HELD_RECORDS",
        50_000,
        "With a tokens file: records taken and not yet committable (the re-send window of a "
        "crash; about 1.5 KB each) before intake pauses.",
        ge=1,
    )
    metrics_workspaces: int = _env(
        "HOOKSTREAM_SINK_METRICS_WORKSPACES",
        20,
        "Workspaces with a `workspace` label of their own (top by traffic); the rest: other.",
        ge=0,
    )

    @property
    def intercom_base_url(self) -> str:
        """Where the sink sends data events: the explicit base URL, else the region's host."""
        if self.intercom_api_base_url:
            return self.intercom_api_base_url.rstrip("/")
        return INTERCOM_REGION_BASE_URLS[self.intercom_region]


class SandboxSettings(_Group):
    """The local Intercom sandbox."""

    port: _Port = _env(
        "HOOKSTREAM_SANDBOX_PORT",
        8090,
        "Port of the local Intercom sandbox (`hookstream sandbox`, dev mode).",
    )


class Settings(BaseModel):
    """Every setting of every hookstream service, in groups. The README's table lists them."""

    model_config = ConfigDict(frozen=True)

    kafka: KafkaSettings
    topics: TopicSettings
    log: LogSettings
    tracing: TracingSettings
    ingest: IngestSettings
    faust: FaustSettings
    worker: WorkerSettings
    sink: SinkSettings
    sandbox: SandboxSettings


def weak_secrets(group: BaseSettings) -> list[str]:
    """Why each secret of `group` must not be used in production: one message per weak
    secret, naming its environment variable (shorter than `MIN_SECRET_BYTES`, a placeholder,
    or a development default). Empty when every set secret is strong."""
    problems = []
    for name, field in type(group).model_fields.items():
        value = getattr(group, name)
        values = value if isinstance(value, list) else [value]
        alias = field.validation_alias
        variable = str(alias.choices[0]) if isinstance(alias, AliasChoices) else name.upper()
        for item in values:
            secret, label = item, variable
            if isinstance(item, ClientSecret):
                secret = item.secret
                label = variable if item.app is None else f"{variable} ({item.app})"
            if isinstance(secret, SecretStr):
                problem = _weakness(secret.get_secret_value())
                if problem:
                    problems.append(f"{label} {problem}")
    return problems


def weak_secrets_refusal(weak: list[str], *, allowed: bool) -> str | None:
    """Why a service must not start with the `weak` secrets (messages of `weak_secrets`), or
    None: there are none, or `allowed` (HOOKSTREAM_ALLOW_DEV_SECRETS) says this is a
    development set-up, which the caller then says in its log."""
    if not weak or allowed:
        return None
    return (
        "; ".join(weak) + ": use a long random secret (HOOKSTREAM_ALLOW_DEV_SECRETS=true "
        "accepts it, for local development only)"
    )


def _weakness(secret: str) -> str | None:
    normalised = "".join(c for c in secret.lower() if c.isalnum())
    if secret in DEV_SECRETS:
        return "is a development default"
    if normalised in _PLACEHOLDERS or normalised.startswith(_PLACEHOLDER_PREFIXES):
        return "is a placeholder"
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return f"is shorter than {MIN_SECRET_BYTES} bytes"
    return None


def _groups() -> dict[str, type[_Group]]:
    return {
        name: field.annotation
        for name, field in Settings.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, _Group)
    }


def _variable(field_name: str, group: type[_Group]) -> str:
    alias = group.model_fields[field_name].validation_alias
    assert isinstance(alias, AliasChoices)  # noqa: S101 - every field is declared with _env
    return str(alias.choices[0])


def setting_fields() -> Iterator[tuple[str, FieldInfo]]:
    """(environment variable, field) of every setting, group by group."""
    for group in _groups().values():
        for name, field in group.model_fields.items():
            yield _variable(name, group), field


def setting_values(settings: Settings) -> Iterator[tuple[str, object]]:
    """(environment variable, value) of every setting of `settings`, group by group (secrets
    as `SecretStr`)."""
    for group_name, group in _groups().items():
        values = getattr(settings, group_name)
        for name in group.model_fields:
            yield _variable(name, group), getattr(values, name)


def settings_table() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) of every setting, group by group."""
    rows = []
    for variable, field in setting_fields():
        default = field.get_default(call_default_factory=True)
        shown = "" if default is None or default == [] else str(default)
        rows.append((variable, shown, field.description or ""))
    return rows


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment (and `HOOKSTREAM_SECRETS_DIR`). `overrides` are
    keyed by environment variable name, in any case (`hookstream_raw_topic="..."`), and win
    over the environment; an unknown name is a `TypeError`."""
    group_of = {
        _variable(name, group).lower(): group_name
        for group_name, group in _groups().items()
        for name in group.model_fields
    }
    per_group: dict[str, dict[str, Any]] = {name: {} for name in _groups()}
    for key, value in overrides.items():
        if key.lower() not in group_of:
            raise TypeError(f"no setting is read from the environment variable {key.upper()}")
        per_group[group_of[key.lower()]][key.lower()] = value
    secrets_dir = os.environ.get("HOOKSTREAM_SECRETS_DIR")
    options: dict[str, Any] = {"_secrets_dir": secrets_dir} if secrets_dir else {}
    return Settings(
        **{name: group(**options, **per_group[name]) for name, group in _groups().items()}
    )
