"""Outcomes per workspace, with a bounded `workspace` label: ten thousand workspaces must not
make ten thousand series.

`hookstream_sink_workspace_events_total{workspace, outcome}` counts what happened to each
workspace's events (`accepted`, `rate_limited`, `access_denied`, `no_token`). At most
`top` workspaces get a label of their own: a workspace earns one when a scrape finds it
among the `top` busiest and a label is free, and keeps it for the life of the process (so
its series never disappears and comes back). Every other workspace is counted in
`workspace="other"`. The series stay monotonic counters: a scrape promotes only while labels
are free, so it promotes every workspace it has seen (none was in `other` before), with its
whole count; once the labels are taken nobody is promoted and `other` only grows.

The counts behind the labels are a dict per workspace seen, bounded too: past
`MAX_TRACKED` workspaces (ids that only ever appear in dead letters, say), new ones are
counted in `other` straight away.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

OTHER = "other"
MAX_TRACKED = 100_000
NAME = "hookstream_sink_workspace_events"


class WorkspaceCounters(Collector):
    """Counts per (workspace, outcome), exported with at most `top` workspace labels."""

    def __init__(self, top: int, registry: CollectorRegistry | None = None) -> None:
        self.top = top
        self._counts: dict[str, Counter[str]] = {}
        self._labelled: set[str] = set()
        self._other: Counter[str] = Counter()  # workspaces not tracked
        if registry is not None:
            registry.register(self)

    def count(self, workspace: str, outcome: str, amount: int = 1) -> None:
        """One more event of `workspace` ended in `outcome`."""
        counts = self._counts.get(workspace)
        if counts is None:
            if len(self._counts) >= MAX_TRACKED or workspace == OTHER:
                self._other[outcome] += amount
                return
            counts = self._counts[workspace] = Counter()
        counts[outcome] += amount

    def labels(self) -> list[str]:
        """The workspaces with a label of their own (promoting the busiest while room is)."""
        free = self.top - len(self._labelled)
        if free > 0:
            candidates = (w for w in self._counts if w not in self._labelled)
            busiest = heapq.nlargest(free, candidates, key=lambda w: self._counts[w].total())
            self._labelled.update(busiest)
        return sorted(self._labelled)

    def collect(self) -> Iterable[CounterMetricFamily]:
        """The series: one per labelled workspace and outcome, the rest as `other`."""
        family = CounterMetricFamily(
            NAME,
            "Data events per workspace by outcome (accepted, rate_limited, access_denied, "
            "no_token); the busiest workspaces by name, the rest as other.",
            labels=["workspace", "outcome"],
        )
        labelled = set(self.labels())
        other = Counter(self._other)
        for workspace, counts in self._counts.items():
            if workspace in labelled:
                for outcome, value in sorted(counts.items()):
                    family.add_metric([workspace, outcome], value)
            else:
                other.update(counts)
        for outcome, value in sorted(other.items()):
            family.add_metric([OTHER, outcome], value)
        yield family

    def describe(self) -> Iterator[CounterMetricFamily]:
        """No fixed description (the series depend on the traffic)."""
        return iter(())
