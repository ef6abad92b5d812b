"""Reads: scoped lookups and keyset-paged lists. Every lookup is scoped to an account, so
another account's job is simply JobNotFound."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from tasks.errors import BatchError
from tasks.models import Account, ComputeNode, Job, Pool, SubTask, Task


def get_job(account: Account, job_id: str) -> Job:
    job = Job.objects.filter(account=account, id_key=job_id.lower()).first()
    if job is None:
        raise BatchError.job_not_found()
    job.account = account  # task-file keys start with the account's name: no query for it
    return job


def get_task(job: Job, task_id: str) -> Task:
    """Tasks are looked up case-insensitively (ids are unique case-insensitively)."""
    task = Task.objects.filter(job=job, id_key=task_id.lower()).first()
    if task is None:
        raise BatchError.task_not_found()
    task.job = job
    return task


def get_pool(account: Account, pool_id: str) -> Pool:
    pool = Pool.objects.filter(account=account, id_key=pool_id.lower()).first()
    if pool is None:
        raise BatchError.pool_not_found()
    return pool


def get_node(pool: Pool, node_id: str) -> ComputeNode:
    node = ComputeNode.objects.filter(pool=pool, node_id=node_id).select_related("pool").first()
    if node is None:
        raise BatchError.node_not_found()
    return node


def page_after(qs: QuerySet, key_field: str, after: str | None, limit: int) -> tuple[list, bool]:
    """One keyset page ordered by `key_field`: rows after `after`, and whether more follow.
    One query; with an index on (scope, key) it costs the same on page 1 and page 1000."""
    if after is not None:
        qs = qs.filter(**{f"{key_field}__gt": after})
    rows = list(qs.order_by(key_field)[: limit + 1])
    return rows[:limit], len(rows) > limit


def list_tasks(job: Job, *, where: Q, after: str | None, limit: int) -> tuple[list[Task], bool]:
    return page_after(Task.objects.filter(job=job).filter(where), "id_key", after, limit)


def list_jobs(account: Account, *, where: Q, after: str | None, limit: int) -> tuple[list[Job], bool]:
    return page_after(Job.objects.filter(account=account).filter(where), "id_key", after, limit)


def list_pools(account: Account, *, where: Q, after: str | None, limit: int) -> tuple[list[Pool], bool]:
    return page_after(Pool.objects.filter(account=account).filter(where), "id_key", after, limit)


def list_nodes(pool: Pool, *, where: Q, after: str | None, limit: int) -> tuple[list[ComputeNode], bool]:
    qs = ComputeNode.objects.filter(pool=pool).filter(where).select_related("pool")
    return page_after(qs, "node_id", after, limit)


def list_subtasks(task: Task) -> list[SubTask]:
    return list(SubTask.objects.filter(task=task).order_by("subtask_id"))


def count_running(node: ComputeNode) -> tuple[int, int]:
    """Running tasks on a node and the slots they hold (one query)."""
    from django.db.models import Count, Sum

    from tasks.models import Attempt

    agg = Attempt.objects.filter(node=node, outcome=Attempt.Outcome.RUNNING).aggregate(
        n=Count("pk"), slots=Sum("slots", default=0)
    )
    return agg["n"], agg["slots"]


RECENT_NODE_TASKS = 10


def list_recent_node_tasks(node: ComputeNode, *, limit: int = RECENT_NODE_TASKS) -> list:
    """A node's latest attempts, newest first, each with its task and job loaded: the
    node's recentTasks (taskUrl, jobId, taskId, subtaskId, taskState, executionInfo). One
    query, on the (node, claimed) index."""
    from tasks.models import Attempt

    return list(Attempt.objects.filter(node=node).select_related("task", "job").order_by("-claimed", "-pk")[:limit])
