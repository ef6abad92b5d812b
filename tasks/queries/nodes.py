"""Reads of a pool's compute nodes: the lookup, the keyset-paged list, and what runs on
them."""

from __future__ import annotations

from django.db.models import Count, F, Q, Sum, Window
from django.db.models.functions import RowNumber

from tasks.errors import BatchError
from tasks.models import Attempt, ComputeNode, Pool
from tasks.queries import pager
from tasks.queries.pager import Key, Order, Page

NODE_ORDER = Order.by(Key("node_id"))


def get_node(pool: Pool, node_id: str) -> ComputeNode:
    node = ComputeNode.objects.filter(pool=pool, node_id=node_id).select_related("pool").first()
    if node is None:
        raise BatchError.node_not_found()
    return node


def list_nodes(pool: Pool, *, where: Q, after: str = "", limit: int) -> Page:
    """A keyset page of the pool's nodes by node id (tasks.queries.pager). One query."""
    qs = ComputeNode.objects.filter(pool=pool).filter(where).select_related("pool")
    return pager.page(qs, NODE_ORDER, after=after, limit=limit)


def count_running(node: ComputeNode) -> tuple[int, int]:
    """Running tasks on a node and the slots they hold (one query)."""

    agg = Attempt.objects.filter(node=node, outcome=Attempt.Outcome.RUNNING).aggregate(
        n=Count("pk"), slots=Sum("slots", default=0)
    )
    return agg["n"], agg["slots"]


RECENT_NODE_TASKS = 10


def list_recent_node_tasks(node: ComputeNode, *, limit: int = RECENT_NODE_TASKS) -> list:
    """A node's latest attempts, newest first, each with its task and job loaded: the
    node's recentTasks (taskUrl, jobId, taskId, subtaskId, taskState, executionInfo). One
    query, on the (node, claimed) index."""
    return list(
        Attempt.objects.filter(node=node)
        .select_related("task", "job")
        .order_by("-claimed", "-pk")[:limit]
    )


def list_recent_tasks_of_nodes(
    nodes: list[ComputeNode], *, limit: int = RECENT_NODE_TASKS
) -> dict[int, list]:
    """list_recent_node_tasks for a page of nodes: node pk -> its latest attempts, newest
    first, each with its task and job loaded. One query (a window over the (node, claimed)
    index), however many nodes."""

    if not nodes:
        return {}
    rank = Window(
        RowNumber(), partition_by=[F("node_id")], order_by=[F("claimed").desc(), F("pk").desc()]
    )
    rows = (
        Attempt.objects.filter(node__in=nodes)
        .select_related("task", "job")
        .annotate(rank=rank)
        .filter(rank__lte=limit)
        .order_by("node_id", "rank")
    )
    out: dict[int, list] = {}
    for attempt in rows:
        out.setdefault(attempt.node_id, []).append(attempt)
    return out


def count_running_on(nodes: list[ComputeNode]) -> dict[int, tuple[int, int]]:
    """count_running for a page of nodes: node pk -> (running tasks, slots they hold). One
    query."""

    rows = Attempt.objects.filter(node__in=nodes, outcome=Attempt.Outcome.RUNNING).values("node")
    return {
        row["node"]: (row["n"], row["slots"])
        for row in rows.annotate(n=Count("pk"), slots=Sum("slots"))
    }
