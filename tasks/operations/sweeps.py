"""Background sweeps the service runs periodically (`manage.py sweep`, started by serve)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q

from tasks.models import Attempt, Job, Task

from .common import now
from .job_ends import purge_deleting_job
from .jobs import finish_disabling_jobs
from .tasks import MAX_LIFETIME

NOT_COMPLETED = (Task.State.ACTIVE, Task.State.PREPARING, Task.State.RUNNING)


def expire_task_lifetimes(*, batch: int = 1000) -> int:
    """The 180-day maximum lifetime: a task not completed 180 days after it was added is
    terminated by the service — its processes are killed and it is never scheduled again —
    and is left in whatever state it was in. Returns how many tasks it expired."""
    cutoff = now() - MAX_LIFETIME
    expired = 0
    # A task is never older than its job: only jobs added before the cutoff with tasks
    # not completed can hold one, and their tasks are found by (job, state, creation_time).
    jobs = (
        Job.objects.filter(creation_time__lt=cutoff)
        .filter(Q(active_count__gt=0) | Q(running_count__gt=0))
        .values_list("pk", flat=True)
    )
    for job_pk in list(jobs):
        while True:
            with transaction.atomic():
                pks = list(
                    Task.objects.filter(
                        job_id=job_pk,
                        state__in=NOT_COMPLETED,
                        creation_time__lt=cutoff,
                        lifetime_expired=False,
                    ).values_list("pk", flat=True)[:batch]
                )
                if not pks:
                    break
                Attempt.objects.filter(task_id__in=pks, outcome=Attempt.Outcome.RUNNING).update(
                    cancel_requested="terminate"
                )
                expired += Task.objects.filter(pk__in=pks).update(lifetime_expired=True)
    return expired


def purge_deleting_jobs() -> int:
    """Finish deleting jobs left `deleting` (large jobs are purged here, not in the request)."""
    jobs = list(Job.objects.filter(state=Job.State.DELETING))
    for job in jobs:
        purge_deleting_job(job)
    return len(jobs)


def run_frequent_sweeps() -> dict[str, int]:
    """What must happen within a second, not at the next full sweep: a job schedule's job
    made at its run time, a job disabled with `wait` settled, on PostgreSQL the tables the
    agents churn vacuumed (vacuum.py). All are cheap queries when there is nothing to do
    (the sweep runs this every BATCHSITE_SCHEDULE_TICK_SECONDS)."""
    from .job_schedules import run_job_schedules
    from .vacuum import vacuum_churned_tables

    return {
        "scheduled_jobs": run_job_schedules(),
        "disabled_jobs": finish_disabling_jobs(),
        "vacuumed_tables": vacuum_churned_tables(),
    }


def run_sweeps() -> dict[str, int]:
    from datetime import timedelta

    from django.conf import settings

    from .bulk import run_pending_bulk_operations
    from .job_ends import settle_ending_jobs
    from .job_schedules import purge_deleting_job_schedules
    from .nodes import mark_lost_nodes_offline
    from .pools import finish_pool_deletions
    from .task_files import expire_task_retention

    return {
        **run_frequent_sweeps(),
        "expired": expire_task_lifetimes(),
        "purged_jobs": purge_deleting_jobs(),
        # Jobs that waited for release tasks on nodes that have gone since.
        "released_jobs": settle_ending_jobs(),
        "purged_job_schedules": purge_deleting_job_schedules(),
        "retention_expired": expire_task_retention(),
        "lost_nodes": mark_lost_nodes_offline(
            lost_after=timedelta(seconds=settings.BATCHSITE_NODE_LOST_SECONDS)
        ),
        # Bulk actions whose worker thread never started or died with its web process.
        "bulk_operations": run_pending_bulk_operations(),
        # Pools being deleted whose (hand-started) nodes have all gone.
        "deleted_pools": finish_pool_deletions(),
    }
