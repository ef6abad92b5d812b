"""Compute-node operations: register an agent, heartbeat, lose a node (mark it offline and
requeue its running tasks), stop a node.

A node is idle with no running task, running with at least one, offline once its agent
stopped or its heartbeat did (Batch node states).
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q

from tasks.errors import BatchError
from tasks.models import Attempt, ComputeNode, NodeCleanup, Pool
from tasks.node.layout import NODE_ID_PATTERN

from .attempts import requeue_attempts
from .common import now

LIVE_STATES = (ComputeNode.State.IDLE, ComputeNode.State.RUNNING, ComputeNode.State.STARTING,
               ComputeNode.State.UNKNOWN)


def register_node(pool: Pool, *, node_id: str, slots: int, hostname: str = "", ip_address: str = "",
                  root_dir: str = "", agent_pid: int | None = None) -> ComputeNode:
    """Register a node agent in its pool, or register it again after a restart.

    The node becomes idle with a fresh heartbeat and lastBootTime. Attempts the database
    still shows running on it belong to the agent's previous life (it killed what it
    left behind before registering), so their tasks are requeued: no task is lost.
    Refuses a node id that is not `[A-Za-z0-9_.-]` (400 InvalidPropertyValue) or a slot
    count below 1.
    """
    if not NODE_ID_PATTERN.match(node_id or ""):
        raise BatchError.invalid_property("nodeId", node_id, "A node id is 1-128 of A-Z a-z 0-9 _ . -")
    if slots < 1:
        raise BatchError.invalid_property("slots", slots, "A node has at least one task slot.")
    t = now()
    fields = {"slots": slots, "hostname": hostname, "ip_address": ip_address, "root_dir": root_dir,
              "agent_pid": agent_pid, "state": ComputeNode.State.IDLE, "registered": t, "last_heartbeat": t,
              "state_transition_time": t}
    with transaction.atomic():
        node = ComputeNode.objects.select_for_update().filter(pool=pool, node_id=node_id).first()
        if node is None:
            try:
                with transaction.atomic():
                    return ComputeNode.objects.create(pool=pool, node_id=node_id, **fields)
            except IntegrityError:
                node = ComputeNode.objects.select_for_update().get(pool=pool, node_id=node_id)
        for name, value in fields.items():
            setattr(node, name, value)
        node.save()
    _requeue_all(node)
    return node


def heartbeat_node(node: ComputeNode, *, running: bool, tasks_run: int = 0,
                   tasks_succeeded: int = 0) -> ComputeNode | None:
    """Record that the node's agent is alive: state running when it runs a task, else idle
    (a node marked offline while its agent was unreachable comes back); add the attempts
    it finished since the last heartbeat to totalTasksRun / totalTasksSucceeded. Returns
    None when the node no longer exists (its pool was deleted)."""
    t = now()
    state = ComputeNode.State.RUNNING if running else ComputeNode.State.IDLE
    with transaction.atomic():
        current = ComputeNode.objects.filter(pk=node.pk).values_list("state", flat=True).first()
        if current is None:
            return None
        changes = {"last_heartbeat": t, "total_tasks_run": F("total_tasks_run") + tasks_run,
                   "total_tasks_succeeded": F("total_tasks_succeeded") + tasks_succeeded}
        if current != state:
            changes.update(state=state, state_transition_time=t)
        ComputeNode.objects.filter(pk=node.pk).update(**changes)
    node.state, node.last_heartbeat = state, t
    return node


def lost_nodes(*, lost_after: timedelta, hostname: str) -> list[ComputeNode]:
    """Nodes on this host whose heartbeat stopped and that are not yet marked offline."""
    return list(ComputeNode.objects.filter(state__in=LIVE_STATES, last_heartbeat__lt=now() - lost_after,
                                           hostname=hostname))


def mark_lost_nodes_offline(*, lost_after: timedelta) -> int:
    """A node whose agent has not sent a heartbeat for `lost_after` is offline, and every
    task running on it is requeued to the other nodes (requeueCount counts it). Any agent
    and the sweep call this; the conditional update makes one of them do it. Returns how
    many nodes it marked offline."""
    t = now()
    lost = list(ComputeNode.objects.filter(state__in=LIVE_STATES, last_heartbeat__lt=t - lost_after)
                .values_list("pk", flat=True))
    marked = 0
    for pk in lost:
        marked += ComputeNode.objects.filter(
            Q(pk=pk, state__in=LIVE_STATES, last_heartbeat__lt=t - lost_after)
        ).update(state=ComputeNode.State.OFFLINE, state_transition_time=t)
    # Also finish requeueing nodes marked offline earlier whose rows were busy then.
    stale = Attempt.objects.filter(node__state=ComputeNode.State.OFFLINE, outcome=Attempt.Outcome.RUNNING)
    for node_pk in set(stale.values_list("node_id", flat=True)):
        _requeue_all(ComputeNode(pk=node_pk))
    return marked


def stop_node(node: ComputeNode) -> list[int]:
    """An agent is stopping (SIGTERM): the tasks it was running are requeued and the node
    goes offline. Returns the attempts still to requeue (rows busy; call again)."""
    left = _requeue_all(node)
    if not left:
        t = now()
        ComputeNode.objects.filter(pk=node.pk).exclude(state=ComputeNode.State.OFFLINE).update(
            state=ComputeNode.State.OFFLINE, state_transition_time=t)
    return left


def _requeue_all(node: ComputeNode) -> list[int]:
    pks = list(Attempt.objects.filter(node_id=node.pk, outcome=Attempt.Outcome.RUNNING).values_list("pk", flat=True))
    settled = set(requeue_attempts(pks))
    return [pk for pk in pks if pk not in settled]


def pending_cleanups(node: ComputeNode) -> list[NodeCleanup]:
    """Task directories queued for this node to remove (task deleted, job deleted,
    retentionTime passed), only those under the node's own root."""
    root = node.root_dir.rstrip("/") + "/"
    return [c for c in NodeCleanup.objects.filter(node_name=node.node_id).order_by("pk")[:500]
            if c.task_dir.startswith(root)]


def complete_cleanups(pks: list[int]) -> None:
    """The node removed these directories."""
    NodeCleanup.objects.filter(pk__in=pks).delete()
