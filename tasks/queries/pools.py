"""Reads of pools: the scoped lookup, the keyset-paged list and the node figures List
Pools and List Pool Node Counts show."""

from __future__ import annotations

from django.db.models import Count, Q

from tasks.errors import BatchError
from tasks.models import Account, ComputeNode, Pool
from tasks.queries import pager
from tasks.queries.jobs import ID_ORDER
from tasks.queries.pager import Page


def get_pool(account: Account, pool_id: str) -> Pool:
    pool = Pool.objects.filter(account=account, id_key=pool_id.lower()).first()
    if pool is None:
        raise BatchError.pool_not_found()
    return pool


def list_pools(account: Account, *, where: Q, after: str = "", limit: int) -> Page:
    """A keyset page of the account's pools by id (tasks.queries.pager). One query."""
    qs = Pool.objects.filter(account=account).filter(where)
    return pager.page(qs, ID_ORDER, after=after, limit=limit)


def count_nodes_by_state(pools: list[Pool]) -> dict[int, dict[tuple[bool, str], int]]:
    """For List Pool Node Counts: pool pk -> {(is_dedicated, state): nodes}. One query."""
    out: dict[int, dict[tuple[bool, str], int]] = {pool.pk: {} for pool in pools}
    rows = (
        ComputeNode.objects.filter(pool__in=pools)
        .values("pool_id", "is_dedicated", "state")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        out[row["pool_id"]][(row["is_dedicated"], row["state"])] = row["n"]
    return out


def pool_node_stats(pools: list[Pool], *, at) -> dict[int, dict]:
    """For $expand=stats on pools: pool pk -> its current nodes' dedicated count and summed
    age in seconds, average CPU and average and peak memory as last reported. One query
    (the ages are summed here: durations do not add up alike on every database)."""
    out = {
        pool.pk: {
            "dedicated": 0,
            "dedicated_seconds": 0.0,
            "cpu": None,
            "memory": None,
            "peak_memory": None,
            "_cpu": [],
            "_memory": [],
        }
        for pool in pools
    }
    rows = ComputeNode.objects.filter(pool__in=pools).values_list(
        "pool_id", "is_dedicated", "allocation_time", "registered", "cpu_percent", "memory_bytes"
    )
    for pool_pk, dedicated, allocated, registered, cpu, memory in rows:
        entry = out[pool_pk]
        if dedicated:
            entry["dedicated"] += 1
            entry["dedicated_seconds"] += max(0.0, (at - (allocated or registered)).total_seconds())
        if cpu is not None:
            entry["_cpu"].append(cpu)
        if memory is not None:
            entry["_memory"].append(memory)
    for entry in out.values():
        cpus, memories = entry.pop("_cpu"), entry.pop("_memory")
        if cpus:
            entry["cpu"] = sum(cpus) / len(cpus)
        if memories:
            entry["memory"], entry["peak_memory"] = sum(memories) / len(memories), max(memories)
    return out
