"""Kafka as a cluster: the pipeline on three brokers (replication 3, min.insync.replicas 2)
while brokers die and restart under load, then proof that nothing accepted was lost or
doubled.

    python -m bench.cluster [--scale ci|full] [--json FILE]

With two worker and two sink replicas, steady webhooks and data events (bench.traffic), it
  1. SIGKILLs the node that leads most of the raw topic's partitions, and one worker with
     it; restarts the node, then the worker;
  2. SIGKILLs the node that coordinates most of the worker's transactional ids (the admin
     API's FindCoordinator), then restarts it;
  3. restarts the three nodes one at a time (a rolling upgrade), each once no partition is
     under-replicated.
After each action it measures how long the pipeline took to be steady again (every
partition led by a live node, the ingest writing to Kafka with an empty spool, the worker's
lag under one second of webhooks) and how many records the ingest spooled meanwhile. Then it
proves what bench.faults proves (every 200 routed exactly once, read_committed; every 202
delivered; no 5xx but 503) and that the dead-letter topics hold only the invalid events sent
on purpose. A service that exits is restarted, as Kubernetes would, and counted. Exits 1
when a claim does not hold. `tests/cluster/test_cluster_faults.py` runs it at CI scale.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.faults import MAX_BODY_BYTES, Verdict, traffic_for, verify
from bench.pipeline import Pipeline
from hookstream.devtools import localkafka
from hookstream.devtools.dev import Service

BROKERS = 3
REPLICAS = ("worker-2", "sink-2")
PARTITIONS = 3
PROBE_TIMEOUT_SECONDS = 5.0
_SPOOLED = re.compile(r'^hookstream_ingest_durable_total\{via="spool"\} (\S+)$', re.MULTILINE)


@dataclass(frozen=True)
class Scale:
    """How hard the suite pushes and how long it waits."""

    webhooks_per_second: float
    events_per_second: float
    settle_seconds: float
    steady_timeout_seconds: float


SCALES = {
    "ci": Scale(15, 6, 1, 90),
    "full": Scale(100, 40, 8, 180),
}


@dataclass
class Recovery:
    """One action of a step, and how the pipeline came through it."""

    step: str
    action: str
    action_seconds: float
    seconds_to_steady: float | None  # from the action's start; None: not within the timeout
    spooled: int  # records the ingest made durable in its spool meanwhile


@dataclass
class ClusterVerdict(Verdict):
    """bench.faults' counts, the recoveries, and the services that exited on their own."""

    recoveries: list[Recovery] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        failed = super().failures
        if self.dlq_unexpected:
            failed.append(f"{self.dlq_unexpected} dead letters that were not sent on purpose")
        failed += [
            f"not steady within the timeout after: {r.step} / {r.action}"
            for r in self.recoveries
            if r.seconds_to_steady is None
        ]
        return failed


@dataclass
class ClusterPipeline(Pipeline):
    """The pipeline on a cluster (its own, or a running one in `cluster_dir`), with a second
    worker and a second sink."""

    cluster_dir: Path | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.cluster_dir is not None:
            self.kafka_dir = self.cluster_dir
        self.ports.update({name: localkafka.free_port() for name in REPLICAS})

    def env_of(self, name: str) -> dict[str, str]:
        """A service's environment: a replica gets a web port and a data dir of its own."""
        env = self.env()
        if name in REPLICAS:
            kind = name.split("-", maxsplit=1)[0].upper()
            env[f"HOOKSTREAM_{kind}_WEB_PORT"] = str(self.ports[name])
            env["HOOKSTREAM_DATA_DIR"] = str(self.work_dir / f"faust-{name}")
        return env

    async def __aenter__(self) -> ClusterPipeline:
        if self.cluster_dir is None:
            await asyncio.to_thread(
                localkafka.start,
                data_dir=self.kafka_dir,
                brokers=BROKERS,
                ports=localkafka.free_ports(BROKERS),
            )
        await super().__aenter__()  # finds the cluster running
        for name in REPLICAS:
            command = ["worker"] if name.startswith("worker") else ["sink"]
            log = self.work_dir / "logs" / f"{name}.log"
            self.services[name] = Service(name, command, f"{self.url(name)}/healthz", log)
            await self.start(name)
        return self

    def stop_order(self) -> list[str]:
        """The ingest first, then the replicas, then the rest as `Pipeline` stops them."""
        ingest, *others = super().stop_order()
        return [ingest, *REPLICAS, *others]

    @property
    def owns_broker(self) -> bool:
        """A running cluster in `cluster_dir` is left running."""
        return self.cluster_dir is None


class Probe:
    """What the suite reads from the cluster and the ingest to judge steadiness."""

    def __init__(self, pipeline: ClusterPipeline, scale: Scale) -> None:
        self.pipeline = pipeline
        self.scale = scale
        bootstrap = pipeline.bootstrap
        timeout_ms = int(PROBE_TIMEOUT_SECONDS * 1000)
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)

    async def __aenter__(self) -> Probe:
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def leaders(self, topic: str) -> Counter[int]:
        """How many of the topic's partitions each node leads."""
        [described] = await self.admin.describe_topics([topic])
        return Counter(p["leader"] for p in described["partitions"])

    async def under_replicated(self) -> int:
        """Partitions, of every topic, with fewer in-sync replicas than replicas."""
        topics = await self.admin.list_topics()
        return sum(
            len(p["isr"]) < len(p["replicas"])
            for described in await self.admin.describe_topics(topics)
            for p in described["partitions"]
        )

    async def transaction_coordinators(self) -> Counter[int]:
        """How many of the worker's transactional ids (from its log) each node coordinates."""
        worker_id = self.pipeline.env()["HOOKSTREAM_WORKER_ID"]
        ids: set[str] = set()
        for name in ("worker", "worker-2"):
            text = self.pipeline.services[name].log_path.read_text(errors="replace")
            ids |= set(re.findall(rf"{re.escape(worker_id)}-\d+-\d+", text))
        return Counter([await self.admin.find_coordinator(i, coordinator_type=1) for i in ids])

    async def worker_lag(self) -> int:
        """Raw-topic records the worker group has not committed yet."""
        group = self.pipeline.env()["HOOKSTREAM_WORKER_ID"]
        partitions = [TopicPartition(self.pipeline.topics.raw, p) for p in range(PARTITIONS)]
        committed = await self.admin.list_consumer_group_offsets(group, partitions=partitions)
        ends = await self.consumer.end_offsets(partitions)
        return sum(ends[tp] - max(committed[tp].offset, 0) for tp in partitions)

    async def spooled(self) -> int:
        """Records the ingest made durable in its spool since it started."""
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_SECONDS) as client:
            text = (await client.get(f"{self.pipeline.ingest_admin_url}/metrics")).text
        found = _SPOOLED.search(text)
        return int(float(found.group(1))) if found else 0

    async def steady(self, live: set[int]) -> bool:
        """Every partition of the run's topics led by a live node, the ingest writing to Kafka
        with nothing spooled, and the worker's lag under one second of webhooks."""
        topics = self.pipeline.topics
        for topic in (topics.raw, topics.data_events):
            if not set(await self.leaders(topic)) <= live:
                return False
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_SECONDS) as client:
            ready = (await client.get(f"{self.pipeline.ingest_admin_url}/readyz")).json()
        if ready["kafka"] != "up" or ready["spool_depth"]:
            return False
        return await self.worker_lag() < self.scale.webhooks_per_second

    async def wait_steady(self, live: set[int], since: float) -> float | None:
        """Seconds from `since` until two probes a second apart find the pipeline steady."""
        deadline = since + self.scale.steady_timeout_seconds
        streak = 0
        while time.monotonic() < deadline:
            await self.pipeline.restart_exited()
            try:
                ok = await asyncio.wait_for(self.steady(live), PROBE_TIMEOUT_SECONDS * 2)
            except Exception:  # any error of a probe while the cluster fails over: not steady
                ok = False
            streak = streak + 1 if ok else 0
            if streak == 2:
                return time.monotonic() - 1 - since
            await asyncio.sleep(1)
        return None


class Steps:
    """The suite's faults, each action followed by a wait for steady state."""

    def __init__(self, pipeline: ClusterPipeline, probe: Probe, scale: Scale) -> None:
        self.pipeline = pipeline
        self.probe = probe
        self.scale = scale
        self.live = set(range(1, BROKERS + 1))
        self.recoveries: list[Recovery] = []

    async def action(self, step: str, action: str, *work: Any) -> None:
        """Run the coroutines of `work` in turn, then wait until the pipeline is steady."""
        spooled_before = await self.probe.spooled()
        started = time.monotonic()
        for coroutine in work:
            await coroutine
        took = time.monotonic() - started
        to_steady = await self.probe.wait_steady(self.live, started)
        spooled = await self.probe.spooled() - spooled_before
        recovery = Recovery(step, action, round(took, 1), _round(to_steady), spooled)
        self.recoveries.append(recovery)
        with (self.pipeline.work_dir / "steps.log").open("a") as log:
            log.write(f"{time.strftime('%H:%M:%S')} {recovery}\n")
        await asyncio.sleep(self.scale.settle_seconds)

    async def kill_node(self, node: int) -> None:
        """SIGKILL a node (a crash)."""
        self.live.discard(node)
        await asyncio.to_thread(localkafka.kill, self.pipeline.kafka_dir, node=node)

    async def restart_node(self, node: int) -> None:
        """Start a node again (cleanly stopping it first if it runs), until it has rejoined."""
        self.live.discard(node)
        await asyncio.to_thread(localkafka.restart, self.pipeline.kafka_dir, node=node)
        self.live.add(node)

    async def wait_replicated(self) -> None:
        """Until no partition is under-replicated (a rolling upgrade's gate)."""
        deadline = time.monotonic() + self.scale.steady_timeout_seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if await self.probe.under_replicated() == 0:
                    return
            await asyncio.sleep(1)
        raise RuntimeError("partitions stayed under-replicated")

    async def run(self) -> None:
        """Steps 1 to 3 (step 4, the second worker and sink, is the pipeline's shape)."""
        await asyncio.sleep(self.scale.settle_seconds)
        leaders = await self.probe.leaders(self.pipeline.topics.raw)
        node = leaders.most_common(1)[0][0]
        step = f"1: node {node} leading {leaders[node]}/{PARTITIONS} raw partitions"
        await self.action(step, "SIGKILL node and worker-1", self.kill_node(node),
                          self.pipeline.kill("worker"))  # fmt: skip
        await self.action(step, "restart node", self.restart_node(node))
        await self.action(step, "restart worker-1", self.pipeline.start("worker"))
        await self.wait_replicated()
        coordinators = await self.probe.transaction_coordinators()
        node = coordinators.most_common(1)[0][0]
        total = sum(coordinators.values())
        step = f"2: node {node} coordinating {coordinators[node]}/{total} transactional ids"
        await self.action(step, "SIGKILL node", self.kill_node(node))
        await self.action(step, "restart node", self.restart_node(node))
        for node in range(1, BROKERS + 1):
            action = f"0 under-replicated, then restart node {node}"
            await self.action("3: rolling restart", action,
                              self.wait_replicated(), self.restart_node(node))  # fmt: skip


async def run_suite(
    scale: Scale, work_dir: Path, cluster_dir: Path | None = None
) -> ClusterVerdict:
    """Run the pipeline on a three-node cluster (its own, or the one running in
    `cluster_dir`) under traffic and broker failures; return what could be proven."""
    pipeline = ClusterPipeline(
        work_dir,
        cluster_dir=cluster_dir,
        extra_env={
            "HOOKSTREAM_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
            "HOOKSTREAM_TOPIC_PARTITIONS": str(PARTITIONS),
            "HOOKSTREAM_TOPIC_REPLICATION": str(BROKERS),
            "HOOKSTREAM_SINK_REPLICAS": "2",
        },
    )
    verdict = ClusterVerdict()
    async with pipeline, Probe(pipeline, scale) as probe:
        traffic = traffic_for(pipeline, scale.webhooks_per_second, scale.events_per_second)
        sending = asyncio.create_task(traffic.run())
        steps = Steps(pipeline, probe, scale)
        try:
            await steps.run()
        finally:
            traffic.stop()
            await sending
            verdict.recoveries = steps.recoveries
        await pipeline.restart_exited()
        await verify(pipeline, traffic, verdict)
        verdict.service_exits = pipeline.exits
        verdict.service_exits_zero = pipeline.exits_zero
    return verdict


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--json", type=Path, help="also write the verdict here")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hookstream-cluster-") as work:
        verdict = asyncio.run(run_suite(SCALES[args.scale], Path(work)))
    report = {**asdict(verdict), "failures": verdict.failures}
    for key in ("webhooks_missing", "webhooks_doubled"):
        report[key] = len(report[key])
    report["wall_seconds"] = round(time.monotonic() - started)
    print(json.dumps(report, indent=2))
    print("\nstep / action                                   action s  to steady s  spooled")
    for r in verdict.recoveries:
        print(f"{r.step} / {r.action}: {r.action_seconds}  {r.seconds_to_steady}  {r.spooled}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    sys.exit(1 if verdict.failures else 0)


if __name__ == "__main__":
    main()
