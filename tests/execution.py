"""Helpers for tests of execution: a pool with nodes, a job bound to it, tasks added
through the rules layer (so the job's counters are true), and reports of attempts."""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from django.db.models import Model
from django.utils import timezone

from tasks.models import Attempt, ComputeNode, Job, Pool, Task
from tasks.operations import attempts, nodes
from tasks.operations.jobs import add_job
from tasks.operations.pools import add_pool
from tasks.operations.tasks import add_task

M = TypeVar("M", bound=Model)


def make_pool(account, pool_id: str = "pool1") -> Pool:
    return add_pool(account, spec={"id": pool_id, "vmSize": "local"})


def make_node(
    pool: Pool,
    node_id: str = "node-1",
    *,
    slots: int = 2,
    dedicated: bool = True,
    root: str = "/tmp/batchsite-test-nodes",
) -> ComputeNode:
    """A registered node of the pool (`dedicated` False: a low-priority/spot one)."""
    return nodes.register_node(
        pool,
        node_id=node_id,
        slots=slots,
        is_dedicated=dedicated,
        ip_address=f"10.0.0.{len(node_id)}",
        root_dir=f"{root}/{node_id}",
    )


def make_job(account, pool: Pool, job_id: str = "job1", **spec) -> Job:
    return add_job(account, spec={"id": job_id, "poolInfo": {"poolId": pool.pool_id}, **spec})


def add(job: Job, task_id: str, command_line: str = "/bin/true", **spec) -> Task:
    return add_task(job, spec={"id": task_id, "commandLine": command_line, **spec})


def claim(node: ComputeNode, limit: int = 10) -> list[Attempt]:
    return attempts.claim_work(node, limit=limit)


def claimed_ids(node: ComputeNode, limit: int = 10) -> list[str]:
    return [a.task.task_id for a in claim(node, limit)]


def finish(attempt: Attempt, exit_code: int | None = 0, **kwargs) -> attempts.FinishResult:
    return attempts.finish_attempts(
        [attempts.AttemptReport(attempt.pk, exit_code=exit_code, **kwargs)]
    )


def fresh(obj: M) -> M:
    """The task, attempt or node (any row) as the database has it now."""
    obj.refresh_from_db()
    return obj


def later(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def age(task: Task, seconds: float) -> None:
    """Make a task older (creation order is claim order)."""
    Task.objects.filter(pk=task.pk).update(
        creation_time=timezone.now() - timedelta(seconds=seconds)
    )
