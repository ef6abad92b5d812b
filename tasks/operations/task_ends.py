"""The ends of a locked task that jobs, nodes, attempts and the task operations share:
terminating it as the service or a user ends it, putting it back to active (requeue: its
node went away or its job was disabled with requeue), ending its other running instances,
and queueing its directories for the nodes to remove. Below tasks.py, jobs.py, attempts.py
and nodes.py, so that none of them imports another to end a task (jobs terminate and
requeue their running tasks; a task's end completes its job)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db import transaction

from tasks.models import Attempt, Job, NodeCleanup, Task

from . import attempt_rules as rules
from . import attempt_store as store
from . import wakeups
from .common import now
from .counts import CountDelta


def terminate_locked_task(task: Task, *, code: str, message: str) -> None:
    """Complete a locked, not completed task as ended by the service or a user."""
    t = now()
    old = (task.state, task.result)
    running = Attempt.objects.filter(task=task, outcome=Attempt.Outcome.RUNNING)
    wakeups.wake_attempt_nodes(running)  # their agents kill the processes now
    running.update(cancel_requested="terminate")
    task.move_to(Task.State.COMPLETED, t)
    task.end_time = t
    task.result = Task.Result.FAILURE
    task.failure_info = {"category": "usererror", "code": code, "message": message}
    task.save()
    delta = CountDelta()
    delta.move(old, (task.state, task.result), task.required_slots)
    delta.apply(task.job_id)


def end_running_instances(task: Task, t: datetime, *, except_pk: int | None, reason: str) -> None:
    """End every other running instance of a task: their agents kill what is left (the
    process, or a subtask's coordination services) when they see `cancel_requested`.
    Subtasks that had not finished end too; with TaskEnded unless the task finished."""
    others = store.running_instances(task, except_pk)
    wakeups.wake_attempt_nodes(others)  # their agents kill what is left now
    store.end_instances(others, task, t, reason=reason)


def requeue_locked_task(task: Task, delta: CountDelta, t: datetime) -> None:
    """Put a locked running task back to active because its node went away or its job was
    disabled: its running attempts end (their agents kill what is left), requeueCount and
    lastRequeueTime count it, and it is scheduled again, anywhere in the pool."""
    end_running_instances(task, t, except_pk=None, reason="requeue")
    if not rules.requeues(task.state):
        return
    old = (task.state, task.result)
    changed = [*task.move_to(Task.State.ACTIVE, t), *task.clear_execution_info()]
    task.requeue_count += 1
    task.last_requeue_time = t
    task.save(update_fields=[*changed, "requeue_count", "last_requeue_time"])
    delta.move(old, (task.state, task.result), task.required_slots)
    if task.job.state == Job.State.ACTIVE:
        wakeups.wake_pool(task.job.account_id, task.job.pool_id)


def requeue_attempts(attempt_pks: list[int]) -> list[int]:
    """Requeue the tasks of these running attempts (a node stopping or lost). Attempts
    whose task was terminated or deleted meanwhile just end. Returns the pks that are
    settled; the others' rows were busy and must be requeued again."""
    if not attempt_pks:
        return []
    with transaction.atomic():
        heads, _, tasks = store.lock_running_attempts(attempt_pks)
        settled = set(attempt_pks) - {h["pk"] for h in heads}
        t = now()
        deltas: dict[int, CountDelta] = defaultdict(CountDelta)
        for head in heads:
            task = tasks.get(head["task_id"])
            if task is None:
                continue
            settled.add(head["pk"])
            if head["cancel_requested"]:
                outcome = rules.cancelled_outcome(head["cancel_requested"])
                store.end_running_attempt(head["pk"], outcome, t)
                continue
            requeue_locked_task(task, deltas[task.job_id], t)
        for job_pk, delta in deltas.items():
            delta.apply(job_pk)
    return sorted(settled)


def queue_task_cleanup(task_pks: list[int], *, reason: str) -> None:
    """Queue every directory these tasks had on any node for that node to remove."""
    dirs = set(
        Attempt.objects.filter(task_id__in=task_pks)
        .exclude(task_dir="")
        .values_list("node_name", "task_dir")
    )
    dirs |= set(
        Task.objects.filter(pk__in=task_pks)
        .exclude(task_root_directory="")
        .values_list("node_name", "task_root_directory")
    )
    NodeCleanup.objects.bulk_create(
        NodeCleanup(node_name=node, pool_id="", task_dir=path, reason=reason)
        for node, path in dirs
        if node
    )
