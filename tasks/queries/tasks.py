"""Reads of a job's tasks: the lookup every task call makes, the API's keyset-paged list,
and what the task page reads."""

from __future__ import annotations

from django.db.models import Q

from tasks import sql
from tasks.errors import BatchError
from tasks.models import Attempt, Job, SubTask, Task
from tasks.queries import pager
from tasks.queries.fields import every_field
from tasks.queries.jobs import ID_ORDER
from tasks.queries.pager import Page


def get_task(job: Job, task_id: str) -> Task:
    """Tasks are looked up case-insensitively (ids are unique case-insensitively); 404
    TaskNotFound. One statement (see get_account)."""
    found = sql.select_models(
        Task, every_field(Task), "{job} = %s AND {id_key} = %s", [job.pk, task_id.lower()], limit=1
    )
    if not found:
        raise BatchError.task_not_found()
    task = found[0]
    sql.link(task, "job", job)
    return task


def list_tasks(job: Job, *, where: Q, after: str = "", limit: int) -> Page:
    """A keyset page of the job's tasks by id (tasks.queries.pager; BadCursor for a cursor
    that is not one of this list's). One query, on the (job, id_key) index."""
    qs = Task.objects.filter(job=job).filter(where)
    return pager.page(qs, ID_ORDER, after=after, limit=limit)


def list_subtasks(task: Task) -> list[SubTask]:
    return list(SubTask.objects.filter(task=task).order_by("subtask_id"))


def list_attempts(task: Task) -> list[Attempt]:
    """The task's attempts in the order they ran (subtasks beside their attempt). One query."""
    return list(Attempt.objects.filter(task=task).order_by("number", "subtask_id", "claimed"))


def reload_task(task: Task) -> Task:
    """The task as it is now (one query), keeping its job and account."""
    fresh = Task.objects.get(pk=task.pk)
    fresh.job = task.job
    return fresh
