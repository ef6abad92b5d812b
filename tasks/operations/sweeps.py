"""Background sweeps the service runs periodically (`manage.py sweep`, started by serve)."""

from __future__ import annotations

from django.db import transaction

from tasks.models import Attempt, Job, Task

from .common import now
from .jobs import purge_deleting_job
from .tasks import MAX_LIFETIME


def expire_task_lifetimes(*, batch: int = 1000) -> int:
    """The 180-day maximum lifetime: a task not completed 180 days after it was added is
    terminated by the service — its processes are killed and it is never scheduled again —
    and is left in whatever state it was in. Returns how many tasks it expired."""
    cutoff = now() - MAX_LIFETIME
    expired = 0
    while True:
        with transaction.atomic():
            pks = list(
                Task.objects.filter(creation_time__lt=cutoff, lifetime_expired=False)
                .exclude(state=Task.State.COMPLETED)
                .values_list("pk", flat=True)[:batch]
            )
            if not pks:
                return expired
            Attempt.objects.filter(task_id__in=pks, outcome=Attempt.Outcome.RUNNING).update(
                cancel_requested="terminate"
            )
            expired += Task.objects.filter(pk__in=pks).update(lifetime_expired=True)


def purge_deleting_jobs() -> int:
    """Finish deleting jobs left `deleting` (large jobs are purged here, not in the request)."""
    jobs = list(Job.objects.filter(state=Job.State.DELETING))
    for job in jobs:
        purge_deleting_job(job)
    return len(jobs)


def run_sweeps() -> dict[str, int]:
    from datetime import timedelta

    from django.conf import settings

    from .attempts import expire_task_retention
    from .bulk import run_pending_bulk_operations
    from .nodes import mark_lost_nodes_offline

    return {
        "expired": expire_task_lifetimes(),
        "purged_jobs": purge_deleting_jobs(),
        "retention_expired": expire_task_retention(),
        "lost_nodes": mark_lost_nodes_offline(lost_after=timedelta(seconds=settings.BATCHSITE_NODE_LOST_SECONDS)),
        # Bulk actions whose worker thread never started or died with its web process.
        "bulk_operations": run_pending_bulk_operations(),
    }
