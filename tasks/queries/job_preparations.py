"""Reads of the job preparation and release records (tasks.models.JobPreparation), for
List Preparation and Release Task Status and the dashboard's job page."""

from __future__ import annotations

from django.db.models import Q

from tasks.models import Job, JobPreparation
from tasks.queries import pager
from tasks.queries.pager import INT, Key, Order, Page

# One record per node that ran the preparation, in the order they were made.
ORDER = Order.by(Key("pk", INT))


def list_job_preparations(
    job: Job, *, where: Q | None = None, after: str = "", limit: int = 1000
) -> Page:
    """A keyset page of the job's records (tasks.queries.pager; BadCursor for a cursor that
    is not one of this list's). One query."""
    qs = JobPreparation.objects.filter(job=job)
    if where is not None:
        qs = qs.filter(where)
    return pager.page(qs, ORDER, after=after, limit=limit)
