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
`AIOKafkaAdminClient._client`          the admin's cluster metadata: which node it takes for the
(`.cluster.controller`,                controller, and a refresh when a CreateTopics to that node
`.force_metadata_update()`)            timed out (aiokafka 0.14 keeps sending to the node it learnt
                                       at start until its 40 s request timeout, and refreshes only
                                       on NOT_CONTROLLER: a dead node is waited for in vain; found
                                       by tests/cluster); no upstream issue found (searched
                                       aio-libs/aiokafka; nearest #939, #865: CreateTopics sent to
                                       a random broker); a metadata refresh on a request timeout
                                       upstream
=====================================  ==========================================================
"""

from __future__ import annotations

from typing import Any

from hookstream.core.compat import Copied, Private

__all__ = [
    "COPIED",
    "PRIVATE_NAMES",
    "admin_controller_id",
    "in_transaction",
    "refresh_admin_metadata",
]

PRIVATE_NAMES: tuple[Private, ...] = (
    Private("aiokafka.producer.producer:AIOKafkaProducer", "_txn_manager"),
    Private(
        "aiokafka.producer.transaction_manager:TransactionManager", "is_in_transaction", "self"
    ),
    Private("aiokafka.admin.client:AIOKafkaAdminClient", "_client"),
    Private("aiokafka.client:AIOKafkaClient", "force_metadata_update", "self"),
)
"""Every private name of aiokafka used here (`is_in_transaction`: public on a private
object, so checked too)."""

COPIED: tuple[Copied, ...] = ()
"""No aiokafka method is copied."""


def admin_controller_id(admin: Any) -> int | None:
    """The node an `AIOKafkaAdminClient` sends CreateTopics to (from its cached metadata)."""
    controller = admin._client.cluster.controller
    return None if controller is None else int(controller.nodeId)


async def refresh_admin_metadata(admin: Any) -> None:
    """Make an `AIOKafkaAdminClient` learn the cluster's metadata (and controller) again."""
    await admin._client.force_metadata_update()


def in_transaction(producer: Any) -> bool:
    """Whether the transactional aiokafka `producer` has a transaction open."""
    return bool(producer._txn_manager.is_in_transaction())
