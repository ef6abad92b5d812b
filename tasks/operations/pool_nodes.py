"""Which of a pool's nodes are the reconciler's, and which count toward its current size
(shared by the pool, autoscale and reconcile operations)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q

from tasks.models import ComputeNode, Pool

from .common import now


def stopped_agents(*, lost_after: timedelta) -> Q:
    """The nodes no agent runs any more: stopped (SIGTERM) or silent for `lost_after`.
    `offline` alone does not say it: a node whose scheduling is disabled and that runs
    nothing is offline too, with its agent alive."""
    return Q(state=ComputeNode.State.OFFLINE, agent_pid__isnull=True) | Q(
        last_heartbeat__lt=now() - lost_after
    )


def hand_started_gone() -> Q:
    """Nodes of hand-started agents that stopped (SIGTERM) or fell silent: no agent will
    ever drain them (stopped_agents; `offline` alone is also a live node whose
    scheduling is disabled)."""
    lost = timedelta(seconds=settings.BATCHSITE_NODE_LOST_SECONDS)
    return (
        Q(provider_handle="")
        & ~Q(state=ComputeNode.State.CREATING)
        & stopped_agents(lost_after=lost)
    )


def counted() -> Q:
    """Nodes that count toward a pool's current size: all but a hand-started node whose
    agent is gone (its row stays for the record; the reconciler removes none of them)."""
    return ~hand_started_gone()


def is_managed(node: ComputeNode) -> bool:
    """The reconciler made this node (it starts, restarts and stops its agent)."""
    return bool(node.provider_handle) or node.state == ComputeNode.State.CREATING


def current_nodes(pools: list[Pool]) -> dict[int, tuple[int, int]]:
    """(currentDedicatedNodes, currentLowPriorityNodes) of each pool, in one query."""
    counts = {pool.pk: [0, 0] for pool in pools}
    rows = (
        ComputeNode.objects.filter(counted(), pool__in=pools)
        .values("pool_id", "is_dedicated")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        counts[row["pool_id"]][0 if row["is_dedicated"] else 1] = row["n"]
    return {pk: (d, lp) for pk, (d, lp) in counts.items()}
