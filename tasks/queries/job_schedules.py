"""Reads of job schedules and the jobs they made."""

from __future__ import annotations

from django.db.models import Q, Sum

from tasks.errors import BatchError
from tasks.models import Account, Job, JobSchedule
from tasks.queries import pager
from tasks.queries.jobs import ID_ORDER
from tasks.queries.pager import Page


def get_job_schedule(account: Account, schedule_id: str) -> JobSchedule:
    """Job schedules are looked up case-insensitively; 404 JobScheduleNotFound, also for
    another account's schedule."""
    schedule = JobSchedule.objects.filter(account=account, id_key=schedule_id.lower()).first()
    if schedule is None:
        raise BatchError.job_schedule_not_found()
    return schedule


def list_job_schedules(account: Account, *, where: Q, after: str = "", limit: int) -> Page:
    """A keyset page of the account's schedules by id (tasks.queries.pager). One query."""
    qs = JobSchedule.objects.filter(account=account).filter(where)
    return pager.page(qs, ID_ORDER, after=after, limit=limit)


def list_jobs_of_schedule(schedule: JobSchedule, *, where: Q, after: str = "", limit: int) -> Page:
    """A keyset page of the jobs a schedule made, by id (tasks.queries.pager). One query."""
    qs = Job.objects.filter(job_schedule=schedule).filter(where)
    return pager.page(qs, ID_ORDER, after=after, limit=limit)


def job_schedule_task_counts(schedules: list[JobSchedule]) -> dict[int, dict[str, int]]:
    """Each schedule's task counters summed over its jobs (the maintained job counters):
    one aggregate query for the list."""
    fields = ("active_count", "running_count", "completed_count", "succeeded_count", "failed_count")
    rows = (
        Job.objects.filter(job_schedule__in=schedules)
        .values("job_schedule")
        .annotate(**{f: Sum(f) for f in fields})
    )
    return {row["job_schedule"]: {f: row[f] or 0 for f in fields} for row in rows}


def list_recent_jobs_of_schedule(schedule: JobSchedule, *, limit: int) -> list[Job]:
    """The latest jobs a schedule made, newest first. One query."""
    return list(Job.objects.filter(job_schedule=schedule).order_by("-creation_time", "-pk")[:limit])
