"""OpenTelemetry traces: one trace from Intercom's webhook to the consumer of a routed record,
and from `POST /events` to Intercom's Data Events API.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set
(`settings.tracing`). Off, nothing of the SDK is imported or set up, no header is written,
and each span method returns one shared do-nothing context manager. On, each service owns
one `Tracing` (started and shut down with the service) with its own `TracerProvider`: a
batch span processor exporting OTLP over HTTP/protobuf. The SDK reads its other standard
variables itself: the sampler (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`; the default
is `parentbased_always_on`), `OTEL_SERVICE_NAME` (the default is `hookstream-<service>`),
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`.

The spans, after the OpenTelemetry messaging semantic conventions for Kafka
(`messaging.system` kafka, `messaging.operation.type`, `messaging.destination.name`,
`messaging.kafka.message.key`, partition and offset where known):

    ingest  SERVER   `POST /webhooks/intercom`, `POST /events` (continuing an incoming
                     `traceparent` header)
            PRODUCER `send <topic>`, its child: its context is the record's `traceparent`
                     (one span and one context for the records of one `POST /events`)
    worker  CONSUMER `process <raw topic>`, child of the raw record's `traceparent`
            PRODUCER `send <routed topic>`, one per routed copy: the routed record's `traceparent`
    sink    CONSUMER `process <data-events topic>`, child of the record's `traceparent` (a
                     new trace when it has none)
            CLIENT   `POST` to Intercom, one per attempt: the request's `traceparent` header

W3C trace context (https://www.w3.org/TR/trace-context/): the header is
`contract.HEADER_TRACEPARENT`, `00-<trace id>-<span id>-<flags>`; an unsampled span's
context is written too (flags `00`), so the services downstream keep the decision.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, MutableMapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hookstream.core.build_info import VERSION
from hookstream.core.contract import HEADER_TRACEPARENT, Headers
from hookstream.core.logs import get_logger

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from hookstream.core.settings import TracingSettings

log = get_logger(__name__)

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]

DURABLE_IN = "hookstream.durable_in"
"""Attribute of the ingest's PRODUCER spans: `kafka` or `spool`."""
OUTCOME = "hookstream.outcome"
"""Attribute of the worker's CONSUMER spans: `routed`, `duplicate`, `dropped`, `dead-lettered`."""

_NOOP: AbstractContextManager[Span] = contextlib.nullcontext(INVALID_SPAN)
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACESTATE = "tracestate"


class Tracing:
    """One service's traces: `with tracing:` (or `start()` and `shutdown()`) sets the SDK up
    and flushes it at the end; in between, the span methods record spans. Off (no endpoint),
    or outside that block, they do nothing."""

    def __init__(self, endpoint: str | None, service: str) -> None:
        self.endpoint = endpoint
        self.service = service
        self._provider: TracerProvider | None = None
        self._tracer: trace.Tracer | None = None

    @classmethod
    def from_settings(cls, settings: TracingSettings, service: str) -> Tracing:
        """The traces of `service` (`hookstream-ingest`, ...) as `settings` ask."""
        return cls(settings.traces_endpoint, service)

    @property
    def enabled(self) -> bool:
        """Whether spans are exported (an endpoint is set)."""
        return self.endpoint is not None

    # -- lifetime -------------------------------------------------------------------------

    def start(self) -> None:
        """Set the SDK up (once; nothing when off)."""
        if self.endpoint is None or self._provider is not None:
            return
        # The SDK and the exporter (about 0.1 s of imports) only when traces are on.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.resources import (  # noqa: PLC0415
            SERVICE_NAME,
            SERVICE_VERSION,
            OTELResourceDetector,
            Resource,
        )
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

        # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over hookstream's defaults.
        resource = Resource.create({SERVICE_NAME: self.service, SERVICE_VERSION: VERSION})
        resource = resource.merge(OTELResourceDetector().detect())
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=self.endpoint)))
        self._provider = provider
        self._tracer = provider.get_tracer("hookstream", VERSION)
        where = urlsplit(self.endpoint)  # no user info: it may hold a credential
        port = f":{where.port}" if where.port else ""
        log.info(
            "traces_exported",
            service=resource.attributes.get(SERVICE_NAME),
            endpoint=f"{where.scheme}://{where.hostname}{port}{where.path}",
        )

    def shutdown(self) -> None:
        """Export what is left and stop; harmless twice or when never started. Blocks for
        at most the exporter's timeout (call it off the event loop)."""
        provider, self._provider, self._tracer = self._provider, None, None
        if provider is not None:
            provider.shutdown()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shutdown()

    # -- spans ----------------------------------------------------------------------------

    def producer(
        self, topic: str, key: bytes | None, headers: Headers, *, count: int = 1
    ) -> AbstractContextManager[Span]:
        """A PRODUCER span `send <topic>` (child of the current span) around writing `count`
        records; appends its `traceparent` to `headers`, the records' headers. Under a
        current span that is not sampled (so a parent-based sampler would not sample this one
        either) no span is made: the current span's context goes on unchanged, which saves
        most of what unsampled webhooks cost."""
        tracer = self._tracer
        if tracer is None:
            return _NOOP
        current = trace.get_current_span()
        if not current.is_recording() and current.get_span_context().is_valid:
            headers.append((HEADER_TRACEPARENT, _traceparent(current).encode()))
            return _NOOP
        attributes = _messaging("send", topic, key)
        if count != 1:
            attributes["messaging.batch.message_count"] = count
        return _injecting(
            tracer.start_as_current_span(
                f"send {topic}", kind=SpanKind.PRODUCER, attributes=attributes
            ),
            headers,
        )

    def consumer(
        self,
        topic: str,
        key: bytes | None,
        headers: Iterable[tuple[str, bytes]],
        *,
        partition: int,
        offset: int,
        group: str,
    ) -> AbstractContextManager[Span]:
        """A CONSUMER span `process <topic>` around processing one record, the child of the
        record's `traceparent` (a new trace without one), current while it is open."""
        tracer = self._tracer
        if tracer is None:
            return _NOOP
        attributes = _messaging("process", topic, key)
        attributes["messaging.destination.partition.id"] = str(partition)
        attributes["messaging.kafka.offset"] = offset
        attributes["messaging.consumer.group.name"] = group
        return tracer.start_as_current_span(
            f"process {topic}",
            context=_parent_of_record(headers),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )

    def client(
        self, method: str, url: str, headers: dict[str, str]
    ) -> AbstractContextManager[Span]:
        """A CLIENT span `<method>` (child of the current span) around one HTTP call to
        `url`; puts its `traceparent` in `headers`, the request's headers."""
        tracer = self._tracer
        if tracer is None:
            return _NOOP
        parts = urlsplit(url)
        span = tracer.start_span(
            method,
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": method,
                "url.full": url,
                "server.address": parts.hostname or "",
                "server.port": parts.port or (443 if parts.scheme == "https" else 80),
            },
        )
        context = span.get_span_context()
        if context.is_valid:  # not a disabled SDK's span
            headers[HEADER_TRACEPARENT] = _traceparent(span)
            if context.trace_state:
                headers[_TRACESTATE] = context.trace_state.to_header()
        return trace.use_span(span, end_on_exit=True)

    def server(self, app: ASGIApp, paths: Collection[str]) -> ASGIApp:
        """`app` with a SERVER span around each HTTP request for one of `paths`, continuing
        the request's `traceparent`, current while the request is served; `app` itself when
        traces are off."""
        if not self.enabled:
            return app

        async def traced(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
            tracer = self._tracer
            if tracer is None or scope["type"] != "http" or scope["path"] not in paths:
                await app(scope, receive, send)
                return
            method, path = scope["method"], scope["path"]
            with tracer.start_as_current_span(
                f"{method} {path}",
                context=_parent_of_request(scope["headers"]),
                kind=SpanKind.SERVER,
                attributes={
                    "http.request.method": method,
                    "http.route": path,
                    "url.path": path,
                    "url.scheme": scope.get("scheme", "http"),
                },
            ) as span:

                async def send_traced(message: MutableMapping[str, Any]) -> None:
                    if message["type"] == "http.response.start":
                        _set_status(span, message["status"], server=True)
                    await send(message)

                await app(scope, receive, send_traced)

        return traced


TRACING_OFF = Tracing(None, "hookstream")
"""Traces off: the default of every component that takes a `Tracing`."""


def set_response_status(span: Span, status: int) -> None:
    """Record an HTTP client call's answer on its span (4xx and 5xx are errors)."""
    _set_status(span, status, server=False)


def _set_status(span: Span, status: int, *, server: bool) -> None:
    span.set_attribute("http.response.status_code", status)
    if status >= 500 or (status >= 400 and not server):
        span.set_status(Status(StatusCode.ERROR))


def _messaging(operation: str, topic: str, key: bytes | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": topic,
    }
    if key is not None:
        attributes["messaging.kafka.message.key"] = key.decode(errors="replace")
    return attributes


@contextlib.contextmanager
def _injecting(span_manager: AbstractContextManager[Span], headers: Headers) -> Iterator[Span]:
    with span_manager as span:
        if span.get_span_context().is_valid:  # not a disabled SDK's span
            headers.append((HEADER_TRACEPARENT, _traceparent(span).encode()))
        yield span


def _traceparent(span: Span) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def _parent_of_record(headers: Iterable[tuple[str, bytes]]) -> Context:
    value = None
    for name, raw in headers:  # the last one wins, as in `contract.decode_headers`
        if name == HEADER_TRACEPARENT:
            value = raw
    if value is None:
        return Context()
    return _PROPAGATOR.extract({HEADER_TRACEPARENT: value.decode("latin-1")})


def _parent_of_request(headers: Iterable[tuple[bytes, bytes]]) -> Context:
    carrier = {}
    for name, value in headers:
        if name in (b"traceparent", b"tracestate"):
            carrier[name.decode()] = value.decode("latin-1")
    return _PROPAGATOR.extract(carrier)
