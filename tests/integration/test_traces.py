"""One trace from Intercom to the consumer: the ingest, the worker and the sink on the
session broker, exporting OTLP/HTTP to a collector in this process (a small HTTP server
decoding the protobuf requests with opentelemetry-proto).

The path of the trace: a signed webhook into the ingest (in-process), the worker (a child
process) routes it, a consumer of the routed topic (this test) reads the routed record's
`traceparent` and joins the trace with it on a `POST /events`, and the sink (in-process)
sends that data event to the sandbox. One trace, eight spans, three services.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from hookstream.cli import main
from hookstream.core.contract import decode_headers
from hookstream.sinks.app import Sink
from tests.sinks.support import create_sink_topics, event, eventually, sandbox, sink_settings
from tests.streams.support import WorkerConfig, WorkerProcess
from tests.support.ingest import ingest_client, ingest_settings, notification, signed_headers
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration

TOKEN = "test-api-token-0123456789"
TOPIC = "conversation.user.created"
_KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


class Collector:
    """An OTLP/HTTP traces endpoint that keeps every span it receives, as plain dicts."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.requests = 0
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                collector.receive(self.path, body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def receive(self, path: str, body: bytes) -> None:
        assert path == "/v1/traces", path
        request = ExportTraceServiceRequest.FromString(body)
        with self._lock:
            self.requests += 1
            for resource_spans in request.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            {
                                "service": resource["service.name"],
                                "name": span.name,
                                "kind": _KINDS[span.kind],
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent": span.parent_span_id.hex(),
                                "attributes": _attributes(span.attributes),
                            }
                        )

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """The spans received so far of `trace_id`."""
        with self._lock:
            return [span for span in self.spans if span["trace_id"] == trace_id]

    @contextmanager
    def serving(self) -> Iterator[Collector]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join()


class RecordingTransport(httpx.AsyncBaseTransport):
    """The sink's HTTP transport: a real one that notes each request's `traceparent`."""

    def __init__(self) -> None:
        self.traceparents: list[str | None] = []
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.traceparents.append(request.headers.get("traceparent"))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: getattr(pair.value, pair.value.WhichOneof("value")) for pair in pairs}


def _traceparent(record: Any) -> str | None:
    return decode_headers(record.headers).get("traceparent")


def _ids(traceparent: str) -> tuple[str, str]:
    """(trace id, span id) of a W3C traceparent."""
    version, trace_id, span_id, _flags = traceparent.split("-")
    assert version == "00"
    return trace_id, span_id


@asynccontextmanager
async def _pipeline(
    kafka_bootstrap: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    endpoint: str | None,
    off_collector: str | None = None,
) -> AsyncIterator[tuple[WorkerConfig, Any, Any, Sink, RecordingTransport]]:
    """The ingest, the worker and the sink, exporting to `endpoint`. Traces off (None): the
    ingest and the sink as deployed by default (no endpoint), the worker with the endpoint
    `off_collector` and OTEL_SDK_DISABLED=true."""
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # export within 0.1 s, not 5 s
    otel = {} if endpoint is None else {"otel_exporter_otlp_endpoint": endpoint}
    worker_env = {"OTEL_BSP_SCHEDULE_DELAY": "100"}
    if endpoint is not None:
        worker_env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    elif off_collector is not None:  # off by the SDK's switch, though it knows the collector
        worker_env["OTEL_EXPORTER_OTLP_ENDPOINT"] = off_collector
        worker_env["OTEL_SDK_DISABLED"] = "true"
    config = WorkerConfig(
        bootstrap=kafka_bootstrap, data_root=tmp_path, partitions=1, extra_env=worker_env
    )
    worker = WorkerProcess(config).start()  # it takes longest to be ready: first
    try:
        async with sandbox(tmp_path, window_limit=None) as control:
            sink_config = sink_settings(
                kafka_bootstrap, tmp_path, control.base_url, hookstream_topic_partitions=1, **otel
            )
            await create_sink_topics(sink_config)
            ingest_config = ingest_settings(
                kafka_bootstrap,
                tmp_path,
                hookstream_raw_topic=config.raw_topic,
                hookstream_data_events_topic=sink_config.topics.data_events,
                hookstream_api_token=TOKEN,
                hookstream_topic_partitions=1,
                **otel,
            )
            transport = RecordingTransport()
            sink = Sink(sink_config, transport=transport)
            async with sink.running():
                await asyncio.to_thread(worker.wait_ready)  # it created the raw topic
                async with ingest_client(ingest_config) as client:
                    yield config, client, control, sink, transport
    finally:
        worker.stop()


async def _send_through(
    kafka_bootstrap: str, config: WorkerConfig, client: Any, control: Any, sink: Sink
) -> tuple[Any, Any, Any]:
    """A webhook in; its routed record read back; a data event posted with the routed
    record's `traceparent` (when it has one), as a consumer joining the trace does; once
    Intercom (the sandbox) accepted it: the raw, routed and data-events records."""
    body = notification(TOPIC)
    answer = await client.post("/webhooks/intercom", content=body, headers=signed_headers(body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["durable_in"] == "kafka"
    [raw] = await read_topic(kafka_bootstrap, config.raw_topic, expect=1)
    [routed] = await read_topic(kafka_bootstrap, config.routed(TOPIC), expect=1)
    assert routed.value == body
    user = f"user-{uuid.uuid4().hex[:8]}"
    joined = _traceparent(routed)
    answer = await client.post(
        "/events",
        content=orjson.dumps(event(user, 1)),
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/json",
            **({"traceparent": joined} if joined else {}),
        },
    )
    assert answer.status_code == 202, answer.text
    topic = sink.settings.topics.data_events
    [data_event] = await read_topic(kafka_bootstrap, topic, expect=1)

    async def accepted() -> bool:
        return any(e["event"].get("user_id") == user for e in await control.accepted())

    await eventually(accepted, within=30, what="the sandbox to accept the data event")
    return raw, routed, data_event


async def test_one_webhook_is_one_trace_across_ingest_worker_and_sink_to_intercom(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Collector().serving() as collector:
        async with _pipeline(kafka_bootstrap, tmp_path, monkeypatch, collector.url) as (
            config,
            client,
            control,
            sink,
            transport,
        ):
            raw, routed, data_event = await _send_through(
                kafka_bootstrap, config, client, control, sink
            )
            raw_parent, routed_parent, event_parent = map(_traceparent, (raw, routed, data_event))
            assert raw_parent is not None, "the ingest wrote one"
            assert routed_parent is not None, "the worker wrote one"
            assert event_parent is not None, "the ingest wrote one on the data event"
            trace_id, _ = _ids(raw_parent)

            async def all_spans() -> bool:
                return len(collector.trace(trace_id)) >= 8

            await eventually(all_spans, within=30, what="8 spans of the trace")
        spans = collector.trace(trace_id)

    by_name = {(s["service"], s["kind"], s["name"]): s for s in spans}
    ingest, worker, sink_ = "hookstream-ingest", "hookstream-worker", "hookstream-sink"
    chain = [
        (ingest, "SERVER", "POST /webhooks/intercom"),
        (ingest, "PRODUCER", f"send {config.raw_topic}"),
        (worker, "CONSUMER", f"process {config.raw_topic}"),
        (worker, "PRODUCER", f"send {config.routed(TOPIC)}"),
        (ingest, "SERVER", "POST /events"),
        (ingest, "PRODUCER", f"send {sink.settings.topics.data_events}"),
        (sink_, "CONSUMER", f"process {sink.settings.topics.data_events}"),
        (sink_, "CLIENT", "POST"),
    ]
    assert sorted(by_name) == sorted(chain), spans
    assert len(spans) == len(chain), "one span each"
    # One connected trace: each span the child of the one before it, the webhook the root.
    assert by_name[chain[0]]["parent"] == ""
    for parent, child in itertools.pairwise(chain):
        assert by_name[child]["parent"] == by_name[parent]["span_id"], (child, spans)
    # The records' and the request's traceparents are the spans that wrote them.
    assert _ids(raw_parent) == (trace_id, by_name[chain[1]]["span_id"])
    assert _ids(routed_parent) == (trace_id, by_name[chain[3]]["span_id"])
    assert _ids(event_parent) == (trace_id, by_name[chain[5]]["span_id"])
    [request_parent] = [t for t in transport.traceparents if t]
    assert _ids(request_parent) == (trace_id, by_name[chain[7]]["span_id"])
    # The messaging semantic conventions for Kafka.
    consumed = by_name[chain[2]]["attributes"]
    assert consumed["messaging.system"] == "kafka"
    assert consumed["messaging.operation.type"] == "process"
    assert consumed["messaging.destination.name"] == config.raw_topic
    assert consumed["messaging.destination.partition.id"] == str(raw.partition)
    assert consumed["messaging.kafka.offset"] == raw.offset
    assert consumed["messaging.kafka.message.key"] == raw.key.decode()
    assert consumed["messaging.consumer.group.name"] == config.name
    assert consumed["hookstream.outcome"] == "routed"
    produced = by_name[chain[3]]["attributes"]
    assert produced["messaging.operation.type"] == "send"
    assert produced["messaging.kafka.message.key"] == routed.key.decode()
    assert by_name[chain[1]]["attributes"]["hookstream.durable_in"] == "kafka"
    assert by_name[chain[0]]["attributes"]["http.response.status_code"] == 200
    assert by_name[chain[7]]["attributes"]["http.response.status_code"] == 202
    assert by_name[chain[7]]["attributes"]["url.full"].endswith("/events")


async def test_with_traces_off_no_traceparent_is_written_and_nothing_is_exported(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Collector().serving() as collector:
        # The SDK's own variables alone do not turn traces on: the endpoint does.
        monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
        async with _pipeline(
            kafka_bootstrap, tmp_path, monkeypatch, None, off_collector=collector.url
        ) as (
            config,
            client,
            control,
            sink,
            transport,
        ):
            records = await _send_through(kafka_bootstrap, config, client, control, sink)
        assert [_traceparent(record) for record in records] == [None, None, None]
        assert transport.traceparents, "the sink called Intercom"
        assert set(transport.traceparents) == {None}
        assert collector.requests == 0


def _unreachable() -> str:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{listener.getsockname()[1]}"


async def _spooled_webhook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collector: Collector, traceparent: str
) -> str:
    """Send a webhook carrying `traceparent` to an ingest whose Kafka is away, exporting to
    `collector`, and stop it (which flushes its spans); the spooled record's traceparent."""
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    settings = ingest_settings(_unreachable(), tmp_path, otel_exporter_otlp_endpoint=collector.url)
    async with ingest_client(settings) as client:
        body = notification()
        headers = {**signed_headers(body), "traceparent": traceparent}
        answer = await client.post("/webhooks/intercom", content=body, headers=headers)
        assert answer.json()["durable_in"] == "spool", answer.text
    exported = CliRunner().invoke(main, ["spool", "export", str(tmp_path / "spool.0.sqlite3")])
    assert exported.exit_code == 0, exported.output
    [line] = [orjson.loads(line) for line in exported.output.splitlines() if line.strip()]
    return str(line["headers"]["traceparent"])


async def test_a_spooled_webhook_keeps_the_trace_an_incoming_traceparent_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    incoming_trace, incoming_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    with Collector().serving() as collector:
        spooled = await _spooled_webhook(
            tmp_path, monkeypatch, collector, f"00-{incoming_trace}-{incoming_span}-01"
        )
        spans = {span["kind"]: span for span in collector.trace(incoming_trace)}
    assert sorted(spans) == ["PRODUCER", "SERVER"]
    assert spans["SERVER"]["parent"] == incoming_span
    assert spans["PRODUCER"]["parent"] == spans["SERVER"]["span_id"]
    assert spans["PRODUCER"]["attributes"]["hookstream.durable_in"] == "spool"
    assert _ids(spooled) == (incoming_trace, spans["PRODUCER"]["span_id"])


async def test_an_unsampled_incoming_trace_is_carried_on_and_nothing_is_exported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    incoming_trace, incoming_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    with Collector().serving() as collector:
        unsampled = f"00-{incoming_trace}-{incoming_span}-00"  # flags 00: not sampled
        spooled = await _spooled_webhook(tmp_path, monkeypatch, collector, unsampled)
    assert collector.requests == 0, collector.spans
    version, trace_id, span_id, flags = spooled.split("-")
    assert (version, trace_id) == ("00", incoming_trace), "the same trace, carried on"
    assert span_id not in (incoming_span, "0" * 16), "the ingest's own (unrecorded) span"
    assert int(flags, 16) & 1 == 0, "still not sampled, so the worker and sink record nothing"
