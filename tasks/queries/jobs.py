"""Reads of jobs: scoped lookups and keyset-paged lists. Every lookup is scoped to an
account, so another account's job is simply JobNotFound."""

from __future__ import annotations

from django.db.models import Q

from tasks import sql
from tasks.errors import BatchError
from tasks.models import Account, Job, Task
from tasks.queries import pager
from tasks.queries.fields import every_field
from tasks.queries.pager import Key, Order, Page

ID_ORDER = Order.by(Key("id_key"))  # ids are unique per scope case-insensitively


def get_job(account: Account, job_id: str) -> Job:
    """Jobs are looked up case-insensitively (ids are unique case-insensitively); 404
    JobNotFound, also for another account's job. One statement (see get_account)."""
    found = sql.select_models(
        Job,
        every_field(Job),
        "{account} = %s AND {id_key} = %s",
        [account.pk, job_id.lower()],
        limit=1,
    )
    if not found:
        raise BatchError.job_not_found()
    job = found[0]
    sql.link(
        job, "account", account
    )  # task-file keys start with the account's name: no query for it
    return job


def get_job_task(account: Account, job_id: str, task_id: str) -> tuple[Job, Task]:
    """get_job then get_task in one statement (every task call makes both): 404
    JobNotFound for an unknown job (or another account's), else 404 TaskNotFound."""
    found = sql.select_optional(
        Job,
        every_field(Job),
        Task,
        every_field(Task),
        "{o.job} = {b.id} AND {o.id_key} = %s",
        "{b.account} = %s AND {b.id_key} = %s",
        [task_id.lower(), account.pk, job_id.lower()],
    )
    if found is None:
        raise BatchError.job_not_found()
    job, task = found
    sql.link(job, "account", account)
    if task is None:
        raise BatchError.task_not_found()
    sql.link(task, "job", job)
    return job, task


def list_jobs(account: Account, *, where: Q, after: str = "", limit: int) -> Page:
    """A keyset page of the account's jobs by id (tasks.queries.pager; BadCursor for a
    cursor that is not one of this list's). One query."""
    qs = Job.objects.filter(account=account).filter(where)
    return pager.page(qs, ID_ORDER, after=after, limit=limit)
