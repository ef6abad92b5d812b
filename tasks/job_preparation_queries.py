"""Reads of the job preparation and release records (tasks.models.JobPreparation), for
List Preparation and Release Task Status and the dashboard's job page."""

from __future__ import annotations

from django.db.models import Q

from tasks.models import Job, JobPreparation
from tasks.queries import page_after


def list_job_preparations(job: Job, *, where: Q | None = None, after: str | None = None,
                          limit: int = 1000) -> tuple[list[JobPreparation], bool]:
    """A keyset page of the job's records (one per node that ran its preparation), and
    whether more follow. One query."""
    qs = JobPreparation.objects.filter(job=job)
    if where is not None:
        qs = qs.filter(where)
    return page_after(qs, "pk", after, limit)

