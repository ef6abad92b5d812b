"""The task, job and job-schedule actions people take from the dashboard and the admin, by
name, with their "may I?" rule — so a button, an admin action and a bulk run all use the
same pair."""

from __future__ import annotations

from collections.abc import Callable

from tasks.errors import BatchError
from tasks.models import DisableJobOption, Job, JobSchedule, Task

from .audit import audited
from .job_schedules import (
    can_disable_job_schedule,
    can_enable_job_schedule,
    can_terminate_job_schedule,
    disable_job_schedule,
    enable_job_schedule,
    terminate_job_schedule,
)
from .jobs import can_disable_job, can_enable_job, disable_job, enable_job
from .tasks import (
    can_delete_task,
    can_reactivate_task,
    can_terminate_task,
    delete_task,
    reactivate_task,
    terminate_task,
)

# name -> (operation, its can_* rule)
TASK_ACTIONS: dict[str, tuple[Callable, Callable[[Task], BatchError | None]]] = {
    "terminate": (terminate_task, can_terminate_task),
    "reactivate": (reactivate_task, can_reactivate_task),
    "delete": (delete_task, can_delete_task),
}
DESTRUCTIVE = {"terminate", "delete"}


def refusals_of(task: Task) -> dict[str, BatchError | None]:
    """Each action's refusal for this task (None where it is allowed); no query."""
    return {name: rule(task) for name, (_, rule) in TASK_ACTIONS.items()}


def act_on_task(task: Task, action: str, *, user, actor: str) -> BatchError | None:
    """Run one named action on one task through the rules layer and audit it; return the
    refusal (a BatchError) or None."""
    operation, _ = TASK_ACTIONS[action]
    scope = {"job": task.job.job_id, "tasks": [task.task_id]}
    _, error = audited(
        task.job.account,
        user=user,
        actor=actor,
        action=action,
        scope=scope,
        operation=lambda: operation(task),
    )
    return error


# --- jobs and job schedules ------------------------------------------------------------


def _disable_job(job: Job, option: str | None) -> Job:
    return disable_job(job, disable_tasks=option or DisableJobOption.REQUEUE)


# name -> (operation(job, option), its can_* rule)
JOB_ACTIONS: dict[str, tuple[Callable, Callable[[Job], BatchError | None]]] = {
    "disable": (_disable_job, can_disable_job),
    "enable": (lambda job, option: enable_job(job), can_enable_job),
}
JOB_SCHEDULE_ACTIONS: dict[str, tuple[Callable, Callable[[JobSchedule], BatchError | None]]] = {
    "disable": (disable_job_schedule, can_disable_job_schedule),
    "enable": (enable_job_schedule, can_enable_job_schedule),
    "terminate": (terminate_job_schedule, can_terminate_job_schedule),
}


def act_on_job(job: Job, action: str, *, option: str | None, user, actor: str) -> BatchError | None:
    """Disable (with its disableTasks option) or enable one job through the rules layer,
    audited; return the refusal or None."""
    operation, _ = JOB_ACTIONS[action]
    scope = {"job": job.job_id, **({"option": option} if action == "disable" else {})}
    _, error = audited(
        job.account,
        user=user,
        actor=actor,
        action=f"job-{action}",
        scope=scope,
        operation=lambda: operation(job, option),
    )
    return error


def act_on_job_schedule(
    schedule: JobSchedule, action: str, *, user, actor: str
) -> BatchError | None:
    """Disable, enable or terminate one job schedule through the rules layer, audited."""
    operation, _ = JOB_SCHEDULE_ACTIONS[action]
    _, error = audited(
        schedule.account,
        user=user,
        actor=actor,
        action=f"schedule-{action}",
        scope={"job_schedule": schedule.schedule_id},
        operation=lambda: operation(schedule),
    )
    return error
