"""Reads: scoped lookups and keyset-paged lists. Every lookup is scoped to an account, so
another account's job is simply JobNotFound."""

from __future__ import annotations

import functools

from django.db.models import Q, QuerySet

from tasks.errors import BatchError
from tasks.models import Account, ComputeNode, Job, JobSchedule, Pool, SubTask, Task
from tasks.operations import sql


@functools.cache
def _every_field(model) -> tuple[str, ...]:
    return tuple(f.name for f in model._meta.concrete_fields)


def get_account(name: str) -> Account | None:
    """The account of this name, or None. Every API call makes this lookup (Shared Key):
    one statement built once per connection (tasks.operations.sql), as are get_job and
    get_task, which every task call makes; compiling them through the ORM cost more than
    the rest of a Get Task (benchmarks/bench_api_throughput.py)."""
    found = sql.select_models(Account, _every_field(Account), "{name} = %s", [name], limit=1)
    return found[0] if found else None


def get_job(account: Account, job_id: str) -> Job:
    """Jobs are looked up case-insensitively (ids are unique case-insensitively); 404
    JobNotFound, also for another account's job. One statement (see get_account)."""
    found = sql.select_models(Job, _every_field(Job), "{account} = %s AND {id_key} = %s",
                              [account.pk, job_id.lower()], limit=1)
    if not found:
        raise BatchError.job_not_found()
    job = found[0]
    sql.link(job, "account", account)  # task-file keys start with the account's name: no query for it
    return job


def get_task(job: Job, task_id: str) -> Task:
    """Tasks are looked up case-insensitively (ids are unique case-insensitively); 404
    TaskNotFound. One statement (see get_account)."""
    found = sql.select_models(Task, _every_field(Task), "{job} = %s AND {id_key} = %s",
                              [job.pk, task_id.lower()], limit=1)
    if not found:
        raise BatchError.task_not_found()
    task = found[0]
    sql.link(task, "job", job)
    return task


def get_job_task(account: Account, job_id: str, task_id: str) -> tuple[Job, Task]:
    """get_job then get_task in one statement (every task call makes both): 404
    JobNotFound for an unknown job (or another account's), else 404 TaskNotFound."""
    found = sql.select_optional(Job, _every_field(Job), Task, _every_field(Task),
                                "{o.job} = {b.id} AND {o.id_key} = %s", "{b.account} = %s AND {b.id_key} = %s",
                                [task_id.lower(), account.pk, job_id.lower()])
    if found is None:
        raise BatchError.job_not_found()
    job, task = found
    sql.link(job, "account", account)
    if task is None:
        raise BatchError.task_not_found()
    sql.link(task, "job", job)
    return job, task


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


def get_job_schedule(account: Account, schedule_id: str) -> JobSchedule:
    """Job schedules are looked up case-insensitively; 404 JobScheduleNotFound, also for
    another account's schedule."""
    schedule = JobSchedule.objects.filter(account=account, id_key=schedule_id.lower()).first()
    if schedule is None:
        raise BatchError.job_schedule_not_found()
    return schedule


def list_job_schedules(account: Account, *, where: Q, after: str | None,
                       limit: int) -> tuple[list[JobSchedule], bool]:
    return page_after(JobSchedule.objects.filter(account=account).filter(where), "id_key", after, limit)


def list_jobs_of_schedule(schedule: JobSchedule, *, where: Q, after: str | None,
                          limit: int) -> tuple[list[Job], bool]:
    return page_after(Job.objects.filter(job_schedule=schedule).filter(where), "id_key", after, limit)


def job_schedule_task_counts(schedules: list[JobSchedule]) -> dict[int, dict[str, int]]:
    """Each schedule's task counters summed over its jobs (the maintained job counters):
    one aggregate query for the list."""
    from django.db.models import Sum

    fields = ("active_count", "running_count", "completed_count", "succeeded_count", "failed_count")
    rows = (Job.objects.filter(job_schedule__in=schedules).values("job_schedule")
            .annotate(**{f: Sum(f) for f in fields}))
    return {row["job_schedule"]: {f: row[f] or 0 for f in fields} for row in rows}


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


def list_recent_tasks_of_nodes(nodes: list[ComputeNode], *, limit: int = RECENT_NODE_TASKS) -> dict[int, list]:
    """list_recent_node_tasks for a page of nodes: node pk -> its latest attempts, newest
    first, each with its task and job loaded. One query (a window over the (node, claimed)
    index), however many nodes."""
    from django.db.models import F, Window
    from django.db.models.functions import RowNumber

    from tasks.models import Attempt

    if not nodes:
        return {}
    rank = Window(RowNumber(), partition_by=[F("node_id")], order_by=[F("claimed").desc(), F("pk").desc()])
    rows = (Attempt.objects.filter(node__in=nodes).select_related("task", "job").annotate(rank=rank)
            .filter(rank__lte=limit).order_by("node_id", "rank"))
    out: dict[int, list] = {}
    for attempt in rows:
        out.setdefault(attempt.node_id, []).append(attempt)
    return out


def count_running_on(nodes: list[ComputeNode]) -> dict[int, tuple[int, int]]:
    """count_running for a page of nodes: node pk -> (running tasks, slots they hold). One
    query."""
    from django.db.models import Count, Sum

    from tasks.models import Attempt

    rows = Attempt.objects.filter(node__in=nodes, outcome=Attempt.Outcome.RUNNING).values("node")
    return {row["node"]: (row["n"], row["slots"]) for row in rows.annotate(n=Count("pk"), slots=Sum("slots"))}


def count_nodes_by_state(pools: list[Pool]) -> dict[int, dict[tuple[bool, str], int]]:
    """For List Pool Node Counts: pool pk -> {(is_dedicated, state): nodes}. One query."""
    from django.db.models import Count

    out: dict[int, dict[tuple[bool, str], int]] = {pool.pk: {} for pool in pools}
    rows = (ComputeNode.objects.filter(pool__in=pools).values("pool_id", "is_dedicated", "state")
            .annotate(n=Count("pk")))
    for row in rows:
        out[row["pool_id"]][(row["is_dedicated"], row["state"])] = row["n"]
    return out


def pool_node_stats(pools: list[Pool], *, at) -> dict[int, dict]:
    """For $expand=stats on pools: pool pk -> its current nodes' dedicated count and summed
    age in seconds, average CPU and average and peak memory as last reported. One query
    (the ages are summed here: durations do not add up alike on every database)."""
    out = {pool.pk: {"dedicated": 0, "dedicated_seconds": 0.0, "cpu": None, "memory": None, "peak_memory": None,
                     "_cpu": [], "_memory": []} for pool in pools}
    rows = ComputeNode.objects.filter(pool__in=pools).values_list(
        "pool_id", "is_dedicated", "allocation_time", "registered", "cpu_percent", "memory_bytes")
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
