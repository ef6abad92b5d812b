"""Reads of the job preparation and release records (tasks.models.JobPreparation), for
List Preparation and Release Task Status and the dashboard's job and node pages."""

from __future__ import annotations

from django.db.models import Q

from tasks.models import ComputeNode, Job, JobPreparation
from tasks.queries import page_after


def list_job_preparations(job: Job, *, where: Q | None = None, after: str | None = None,
                          limit: int = 1000) -> tuple[list[JobPreparation], bool]:
    """A keyset page of the job's records (one per node that ran its preparation), and
    whether more follow. One query."""
    qs = JobPreparation.objects.filter(job=job)
    if where is not None:
        qs = qs.filter(where)
    return page_after(qs, "pk", after, limit)


def list_node_job_preparations(node: ComputeNode, *, limit: int = 50) -> list[JobPreparation]:
    """The node's records, newest first, with their jobs. One query."""
    return list(JobPreparation.objects.filter(node=node).select_related("job").order_by("-prep_start_time")[:limit])
