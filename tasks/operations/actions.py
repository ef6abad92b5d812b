"""The task actions people take from the dashboard and the admin, by name, with their
"may I?" rule — so a button, an admin action and a bulk run all use the same pair."""

from __future__ import annotations

from collections.abc import Callable

from tasks.errors import BatchError
from tasks.models import Task

from .audit import audited
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
    _, error = audited(task.job.account, user=user, actor=actor, action=action, scope=scope,
                       operation=lambda: operation(task))
    return error
