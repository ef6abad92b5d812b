"""Job operations: add, update/patch, terminate, delete, and the job-level effects of
task completion (onAllTasksComplete / onTaskFailure)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from tasks.errors import BatchError
from tasks.models import Account, Attempt, Job, Task

from . import wakeups
from .common import Precondition, job_state_refusal, lock_checked, new_etag, now
from .constraints import check_job_values

# Properties Update (PUT) and Patch may change; the rest are fixed at add time.
UPDATABLE = ("priority", "maxParallelTasks", "allowTaskPreemption", "constraints", "poolInfo",
             "onAllTasksComplete", "metadata", "networkConfiguration")
INLINE_PURGE_LIMIT = 10_000


def add_job(account: Account, *, spec: dict) -> Job:
    """Add a job. With poolInfo.autoPoolSpecification, its auto pool is created with it
    (see add_auto_pool). Refuses an id already used in the account (409 JobExists), the
    values Batch refuses (400 InvalidPropertyValue: constraints.check_job_values), and
    what add_auto_pool refuses."""
    check_job_values(spec)
    auto = (spec.get("poolInfo") or {}).get("autoPoolSpecification")
    if auto is not None:
        from .auto_pools import add_job_with_auto_pool

        return add_job_with_auto_pool(account, spec=spec)
    return _insert_job(account, spec=spec)


def _insert_job(account: Account, *, spec: dict, pool_id: str | None = None) -> Job:
    t = now()
    constraints = spec.get("constraints") or {}
    job = Job(
        account=account,
        job_id=spec["id"],
        id_key=spec["id"].lower(),
        display_name=spec.get("displayName") or "",
        pool_id=pool_id if pool_id is not None else (spec.get("poolInfo") or {}).get("poolId", ""),
        priority=spec.get("priority", 0),
        max_parallel_tasks=spec.get("maxParallelTasks", -1),
        uses_task_dependencies=spec.get("usesTaskDependencies", False),
        on_all_tasks_complete=spec.get("onAllTasksComplete", Job.OnAllTasksComplete.NOACTION),
        on_task_failure=spec.get("onTaskFailure", Job.OnTaskFailure.NOACTION),
        max_task_retry_count=constraints.get("maxTaskRetryCount", 0),
        max_wall_clock_time=constraints.get("maxWallClockTime"),
        spec=_stored_spec(spec),
        state=Job.State.ACTIVE,
        state_transition_time=t,
        creation_time=t,
        last_modified=t,
        etag=new_etag(),
        start_time=t,
    )
    try:
        with transaction.atomic():
            job.save(force_insert=True)
    except IntegrityError:
        raise BatchError.job_exists() from None
    return job


def _stored_spec(spec: dict) -> dict:
    kept = {k: v for k, v in spec.items() if k not in ("id", "constraints")}
    return kept


def can_update_job(job: Job) -> BatchError | None:
    """A job that is completed, terminating or being deleted can no longer change."""
    return job_state_refusal(job)


def _lock_job(job: Job, precondition: Precondition, refusal) -> Job:
    """Lock the job row, then check the caller's condition and the operation's rule on it."""
    return lock_checked(Job.objects.filter(pk=job.pk), BatchError.job_not_found, precondition, refusal)


def update_job(job: Job, *, spec: dict, replace: bool, precondition: Precondition = None) -> Job:
    """Update (replace=True, PUT) or patch a job's updatable properties. Refuses the values
    Add refuses (400 InvalidPropertyValue: constraints.check_job_values) and a job that is
    completed, terminating or being deleted (409). onAllTasksComplete=terminatejob on a job
    whose tasks are all complete terminates it, as Batch does."""
    check_job_values(spec)
    with transaction.atomic():
        locked = _lock_job(job, precondition, can_update_job)
        if replace or "priority" in spec:
            locked.priority = spec.get("priority", 0)
        if replace or "maxParallelTasks" in spec:
            locked.max_parallel_tasks = spec.get("maxParallelTasks", -1)
        if replace or "constraints" in spec:
            constraints = spec.get("constraints") or {}
            locked.max_task_retry_count = constraints.get("maxTaskRetryCount", 0)
            locked.max_wall_clock_time = constraints.get("maxWallClockTime")
        if "poolInfo" in spec:
            locked.pool_id = (spec.get("poolInfo") or {}).get("poolId", locked.pool_id)
        if replace or "onAllTasksComplete" in spec:
            locked.on_all_tasks_complete = spec.get("onAllTasksComplete", Job.OnAllTasksComplete.NOACTION)
        stored = dict(locked.spec)
        for key in ("allowTaskPreemption", "metadata", "networkConfiguration", "poolInfo",
                    "onAllTasksComplete", "priority", "maxParallelTasks"):
            if key in spec:
                stored[key] = spec[key]
            elif replace and key in ("allowTaskPreemption", "metadata"):
                stored.pop(key, None)
        locked.spec = stored
        locked.etag = new_etag()
        locked.last_modified = now()
        locked.save()
        complete_job_if_all_tasks_done(locked)
    return locked


def can_terminate_job(job: Job) -> BatchError | None:
    """A job already completed, terminating or being deleted cannot be terminated."""
    return job_state_refusal(job)


def terminate_job(job: Job, *, reason: str = "UserTerminate", precondition: Precondition = None) -> Job:
    """Terminate a job: running tasks are terminated, active tasks stay active and are
    never scheduled, no task can be added; the job ends `completed` with the reason.
    Refuses a job already completed (JobCompleted), terminating or being deleted."""
    from .tasks import _terminate_locked_task

    with transaction.atomic():
        locked = _lock_job(job, precondition, can_terminate_job)
        _set_job_state(locked, Job.State.TERMINATING)
        locked.save(update_fields=_STATE_FIELDS)
        running = Task.objects.select_for_update().filter(
            job=locked, state__in=[Task.State.PREPARING, Task.State.RUNNING]
        )
        for task in running:
            _terminate_locked_task(task, code="TaskEnded",
                                   message="The task was terminated because its job was terminated.")
        _finish_job(locked, reason)
    return locked


# What a job state change writes: never the task counters, which task operations move
# with F() updates in the same transaction (a whole-row save would undo them).
_STATE_FIELDS = ["state", "previous_state", "state_transition_time", "previous_state_transition_time",
                 "last_modified", "etag"]


def _set_job_state(job: Job, state: str) -> None:
    t = now()
    job.previous_state = job.state
    job.previous_state_transition_time = job.state_transition_time
    job.state = state
    job.state_transition_time = t
    job.last_modified = t
    job.etag = new_etag()


def _finish_job(job: Job, reason: str) -> None:
    _set_job_state(job, Job.State.COMPLETED)
    job.end_time = job.state_transition_time
    job.terminate_reason = reason
    job.save(update_fields=[*_STATE_FIELDS, "end_time", "terminate_reason"])
    _end_auto_pool(job)


def _end_auto_pool(job: Job) -> None:
    """The job's auto pool (poolLifetimeOption job) goes with it unless keepAlive."""
    if "autoPoolSpecification" in (job.spec.get("poolInfo") or {}):
        from .auto_pools import delete_auto_pools

        delete_auto_pools(job)


def complete_job_if_all_tasks_done(job: Job) -> None:
    """onAllTasksComplete=terminatejob: terminate the job once every task is complete (a job
    with no tasks counts as complete). Call inside the transaction that completed a task."""
    if job.on_all_tasks_complete != Job.OnAllTasksComplete.TERMINATEJOB:
        return
    job.refresh_from_db()
    if job.state != Job.State.ACTIVE:
        return
    if job.active_count == 0 and job.running_count == 0:
        _finish_job(job, "AllTasksComplete")


def can_delete_job(job: Job) -> BatchError | None:
    if job.state == Job.State.DELETING:
        return BatchError.job_being_deleted()
    return None


def delete_job(job: Job, *, precondition: Precondition = None) -> None:
    """Delete a job: it becomes `deleting`, its running tasks are stopped and their files
    removed by their nodes, and it disappears with its tasks (at once when small, else by
    the sweep). Refuses a job already being deleted (409 JobBeingDeleted)."""
    with transaction.atomic():
        locked = _lock_job(job, precondition, can_delete_job)
        _set_job_state(locked, Job.State.DELETING)
        locked.save(update_fields=_STATE_FIELDS)
        running = Attempt.objects.filter(job=locked, outcome=Attempt.Outcome.RUNNING)
        wakeups.wake_attempt_nodes(running)
        running.update(cancel_requested="delete")
        _end_auto_pool(locked)
    if locked.total_count <= INLINE_PURGE_LIMIT:
        purge_deleting_job(locked)


def purge_deleting_job(job: Job, *, batch: int = 5000) -> None:
    """Remove a `deleting` job's tasks in batches, queueing their directories for their
    nodes to delete, then the job itself."""
    from .tasks import queue_task_cleanup

    while True:
        with transaction.atomic():
            pks = list(Task.objects.filter(job=job).values_list("pk", flat=True)[:batch])
            if not pks:
                break
            queue_task_cleanup(pks, reason="jobdelete")
            Task.objects.filter(pk__in=pks).delete()
    Job.objects.filter(pk=job.pk, state=Job.State.DELETING).delete()
