"""The dashboard's view of a job's job manager task (tasks.operations.job_manager)."""

from __future__ import annotations

from django import template

from tasks.models import Job, Task
from tasks.operations.job_manager import is_job_manager, manager_of

register = template.Library()


@register.simple_tag
def job_manager(job: Job) -> dict | None:
    """The job's job manager: its task (one query; none when the job has no manager) and
    the settings the job keeps for it, with Batch's defaults filled in."""
    spec = manager_of(job)
    if spec is None:
        return None
    return {
        "task": Task.objects.filter(job=job, id_key=spec["id"].lower())
        .only(
            "task_id", "state", "result", "exit_code", "retry_count", "requeue_count", "node_name"
        )
        .first(),
        "task_id": spec["id"],
        "kill_job_on_completion": spec.get("killJobOnCompletion", True) is not False,
        "run_exclusive": spec.get("runExclusive", True) is not False,
        "allow_low_priority_node": spec.get("allowLowPriorityNode", True) is not False,
        "token": "job" in ((spec.get("authenticationTokenSettings") or {}).get("access") or []),
    }


@register.filter
def manages(task: Task, job: Job) -> bool:
    """Whether the task is the job's job manager task."""
    return is_job_manager(job, task)
