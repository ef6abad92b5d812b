"""The task-file calls' refusals and retentionTime: a task's files on its nodes, from its
first run until its retention time has passed since it completed."""

from __future__ import annotations

from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F

from tasks.errors import BatchError
from tasks.models import Task

from .attempt_store import skip_locked
from .common import now
from .task_ends import queue_task_cleanup


def can_read_task_files(task: Task):
    """The task-file calls answer 409 TaskFilesUnavailable for a task that never ran on a
    node, and 409 TaskFilesCleanedup once its directory was removed (retentionTime passed)."""
    if task.files_cleaned:
        return BatchError.task_files_cleaned_up()
    if not task.node_name or not task.task_root_directory:
        return BatchError.task_files_unavailable()
    return None


def expire_task_retention(*, batch: int = 1000) -> int:
    """retentionTime: once it has passed since a task completed, the task's directory is
    removed from every node it ran on (each node removes its own), and the task-file calls
    answer TaskFilesCleanedup. Returns how many tasks it expired."""
    t = now()
    expired = 0
    while True:
        with transaction.atomic():
            pks = list(
                skip_locked(
                    Task.objects.filter(
                        state=Task.State.COMPLETED,
                        files_cleaned=False,
                        end_time__isnull=False,
                        retention_time__isnull=False,
                    )
                    .alias(
                        expiry=ExpressionWrapper(
                            F("end_time") + F("retention_time"), output_field=DateTimeField()
                        )
                    )
                    .filter(expiry__lte=t)
                ).values_list("pk", flat=True)[:batch]
            )
            if not pks:
                return expired
            queue_task_cleanup(pks, reason="retention")
            expired += Task.objects.filter(pk__in=pks).update(files_cleaned=True)
