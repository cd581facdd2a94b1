"""Failure injection: latency on every call, a share of calls that hang (a client timeout), a
share answered with an error status, and bursts ("fail the next N calls").

The decision is drawn from an injectable `random.Random`, so a seeded sandbox injects the
same failures at the same calls on every run.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from enum import Enum

from hookstream.sandbox.config import SandboxConfig


class Fault(Enum):
    """What the injection does to one call."""

    NONE = "none"
    HANG = "hang"
    ERROR = "error"


@dataclass
class FaultInjector:
    """Draws the fault of each call from the current config."""

    rng: random.Random

    def draw(self, config: SandboxConfig) -> Fault:
        """The fault for the next call; consumes one call of a `fail_next` burst."""
        if config.fail_next > 0:
            config.fail_next -= 1
            return Fault.ERROR
        if config.timeout_rate and self.rng.random() < config.timeout_rate:
            return Fault.HANG
        if config.error_rate and self.rng.random() < config.error_rate:
            return Fault.ERROR
        return Fault.NONE

    @staticmethod
    async def delay(config: SandboxConfig) -> None:
        """The configured latency of every call."""
        if config.latency_seconds:
            await asyncio.sleep(config.latency_seconds)
