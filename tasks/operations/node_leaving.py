"""A node leaving its pool: whatever still runs on it is requeued, the completed tasks whose
files were on it answer TaskFilesCleanedup, and its row goes. The agent calls leave_pool
once it drained per the nodeDeallocationOption, the reconciler and a pool's deletion
(pools.drop_node) for a node no agent will drain. Below nodes.py, pools.py and a job's end
(job_ends.py: its auto pool's deletion drops such nodes), which all come here."""

from __future__ import annotations

import time

from django.db import transaction

from tasks.models import Attempt, ComputeNode, NodeCleanup, Task

from .task_ends import requeue_attempts

LEAVE_TRIES = 50


class NodeStillBusy(Exception):
    """The node's running tasks could not all be requeued yet (rows another writer holds)."""


def requeue_all(node: ComputeNode) -> list[int]:
    """Requeue every task running on the node (task_ends.requeue_attempts). Returns the
    attempts still to requeue (their rows were busy: call again)."""
    pks = list(
        Attempt.objects.filter(node_id=node.pk, outcome=Attempt.Outcome.RUNNING).values_list(
            "pk", flat=True
        )
    )
    settled = set(requeue_attempts(pks))
    return [pk for pk in pks if pk not in settled]


def node_disk_wiped(node: ComputeNode) -> None:
    """The node's disk was wiped (reimage): the completed tasks whose files were there
    answer TaskFilesCleanedup from now on, and nothing is left for the node to clean up."""
    root = node.root_dir.rstrip("/") + "/"
    with transaction.atomic():
        Task.objects.filter(
            node_id=node.pk, state=Task.State.COMPLETED, files_cleaned=False
        ).update(files_cleaned=True)
        if node.root_dir:
            NodeCleanup.objects.filter(node_name=node.node_id, task_dir__startswith=root).delete()


def leave_pool(node: ComputeNode) -> None:
    """The node leaves its pool: whatever still runs on it is requeued, the completed tasks
    whose files were on it answer TaskFilesCleanedup, and its row is deleted (it no longer
    counts in the pool). The agent calls this once it drained per the
    nodeDeallocationOption; the reconciler for a node that has no live agent. A node already
    gone is not an error. Raises NodeStillBusy when its tasks' rows stayed busy (try again)."""
    for _ in range(LEAVE_TRIES):
        with transaction.atomic():
            # The lock keeps other agents' multi-instance claims from reserving it meanwhile.
            locked = ComputeNode.objects.select_for_update().filter(pk=node.pk).first()
            if locked is None:
                return
            if not requeue_all(locked):
                node_disk_wiped(locked)
                locked.delete()
                return
        time.sleep(0.05)
    raise NodeStillBusy(node.node_id)
