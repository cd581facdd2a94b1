"""aiokafka's private names, behind public ones (pinned: aiokafka 0.14.0).

The worker's producers are Faust's transactional aiokafka producers; one question of them
has no public answer. `tests/compat/test_upstream_canary.py` checks the names below against
the installed aiokafka.

=====================================  ==========================================================
name (owner)                           why; upstream issue; what would let it go
=====================================  ==========================================================
`AIOKafkaProducer._txn_manager`        whether a producer is in a transaction already (a partition
(`.is_in_transaction()`)               kept through a rebalance: Faust begins again and aiokafka
                                       refuses); no upstream issue found (searched
                                       aio-libs/aiokafka "is_in_transaction public API"); a public
                                       `AIOKafkaProducer.in_transaction()`
=====================================  ==========================================================
"""

from __future__ import annotations

from typing import Any

from hookstream.core.compat import Copied, Private

__all__ = ["COPIED", "PRIVATE_NAMES", "in_transaction"]

PRIVATE_NAMES: tuple[Private, ...] = (
    Private("aiokafka.producer.producer:AIOKafkaProducer", "_txn_manager"),
    Private(
        "aiokafka.producer.transaction_manager:TransactionManager", "is_in_transaction", "self"
    ),
)
"""Every private name of aiokafka used here (`is_in_transaction`: public on a private
object, so checked too)."""

COPIED: tuple[Copied, ...] = ()
"""No aiokafka method is copied."""


def in_transaction(producer: Any) -> bool:
    """Whether the transactional aiokafka `producer` has a transaction open."""
    return bool(producer._txn_manager.is_in_transaction())
