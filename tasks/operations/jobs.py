"""Job operations: add (with its auto pool), update/patch, terminate, disable/enable,
delete, and the job manager's killJobOnCompletion. How a job ends (completed, waiting for
its release tasks, its auto pool, the purge) is job_ends.py, which the operations here and
everything else that ends a job call."""

from __future__ import annotations

import contextlib

from django.db import IntegrityError, transaction

from tasks.errors import BatchError
from tasks.models import Account, Attempt, DisableJobOption, Job, JobSchedule, Task, new_etag

from . import job_manager, pool_specs, wakeups
from .auto_pools import auto_pool_spec
from .common import Precondition, job_state_refusal, lock_checked, now
from .constraints import check_job_values
from .counts import CountDelta
from .job_ends import (
    complete_job_if_all_tasks_done,
    end_auto_pool,
    finish_job,
    purge_deleting_job,
    releases_pending,
)
from .pools import add_pool
from .task_ends import requeue_locked_task, terminate_locked_task

# Properties Update (PUT) and Patch may change; the rest are fixed at add time.
UPDATABLE = (
    "priority",
    "maxParallelTasks",
    "allowTaskPreemption",
    "constraints",
    "poolInfo",
    "onAllTasksComplete",
    "metadata",
    "networkConfiguration",
)
INLINE_PURGE_LIMIT = 10_000


def add_job(account: Account, *, spec: dict) -> Job:
    """Add a job. With poolInfo.autoPoolSpecification, its auto pool is created with it
    (see add_auto_pool). Refuses an id already used in the account (409 JobExists), the
    values Batch refuses (400 InvalidPropertyValue: constraints.check_job_values), an id a
    job schedule has (409 JobScheduleWithSameIdExists), and what add_auto_pool refuses."""
    check_job_values(spec)
    auto = (spec.get("poolInfo") or {}).get("autoPoolSpecification")
    if auto is not None:
        return add_job_with_auto_pool(account, spec=spec)
    return insert_job(account, spec=spec)


def add_job_with_auto_pool(account: Account, *, spec: dict) -> Job:
    """Add a job and its auto pool in one transaction (neither exists without the other).
    Refuses a poolInfo with both poolId and autoPoolSpecification (400
    InvalidPropertyValue), what auto_pools.auto_pool_spec refuses, and an id already used
    (409 JobExists)."""
    info = spec["poolInfo"]
    if info.get("poolId"):
        raise BatchError.invalid_property(
            "poolInfo.poolId",
            info["poolId"],
            "Specify either poolId or autoPoolSpecification, not both.",
        )
    pool_spec, pool_id, keep_alive = auto_pool_spec(info["autoPoolSpecification"])
    stored = {
        **spec,
        "poolInfo": {"autoPoolSpecification": pool_specs.wire(info["autoPoolSpecification"])},
    }
    with transaction.atomic():
        job = insert_job(account, spec=stored, pool_id=pool_id)
        add_pool(account, spec=pool_spec, owner_job=job, keep_alive=keep_alive)
    return job


def insert_job(account: Account, *, spec: dict, pool_id: str | None = None) -> Job:
    """Insert a job whose spec was checked (add_job; a job schedule's jobs), with its job
    manager task, on `pool_id` or its poolInfo's pool. Refuses an id a job schedule has
    (409 JobScheduleWithSameIdExists) or a job has (409 JobExists)."""
    if JobSchedule.objects.filter(account=account, id_key=spec["id"].lower()).exists():
        raise BatchError.job_schedule_with_same_id_exists()
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
            manager = job_manager.add_job_manager_task(job)
    except IntegrityError:
        raise BatchError.job_exists() from None
    if manager is not None:
        wakeups.wake_pool(account.pk, job.pool_id)
    return job


def _stored_spec(spec: dict) -> dict:
    kept = {k: v for k, v in spec.items() if k not in ("id", "constraints")}
    return job_manager.stored(kept)


def can_update_job(job: Job) -> BatchError | None:
    """A job that is completed, terminating or being deleted can no longer change."""
    return job_state_refusal(job)


def _lock_job(job: Job, precondition: Precondition, refusal) -> Job:
    """Lock the job row, then check the caller's condition and the operation's rule on it."""
    return lock_checked(
        Job.objects.filter(pk=job.pk), BatchError.job_not_found, precondition, refusal
    )


def update_job(job: Job, *, spec: dict, replace: bool, precondition: Precondition = None) -> Job:
    """Update (replace=True, PUT) or patch a job's updatable properties. Refuses the values
    Add refuses (400 InvalidPropertyValue: constraints.check_job_values) and a job that is
    completed, terminating or being deleted (409). onAllTasksComplete=terminatejob on a job
    whose tasks are all complete terminates it, as Batch does. onAllTasksComplete cannot go
    from terminatejob back to noaction (400 InvalidPropertyValue; a PUT without it means
    noaction), as Batch refuses it: once automatic termination is engaged it stays."""
    check_job_values(spec)
    with transaction.atomic():
        locked = _lock_job(job, precondition, can_update_job)
        wanted = spec.get(
            "onAllTasksComplete", Job.OnAllTasksComplete.NOACTION if replace else None
        )
        if (
            locked.on_all_tasks_complete == Job.OnAllTasksComplete.TERMINATEJOB
            and wanted == Job.OnAllTasksComplete.NOACTION
        ):
            raise BatchError.invalid_property(
                "onAllTasksComplete",
                wanted,
                "A job's onAllTasksComplete cannot be changed from terminatejob to noaction",
            )
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
            locked.on_all_tasks_complete = spec.get(
                "onAllTasksComplete", Job.OnAllTasksComplete.NOACTION
            )
        stored = dict(locked.spec)
        for key in (
            "allowTaskPreemption",
            "metadata",
            "networkConfiguration",
            "poolInfo",
            "onAllTasksComplete",
            "priority",
            "maxParallelTasks",
        ):
            if key in spec:
                stored[key] = spec[key]
            elif replace and key in ("allowTaskPreemption", "metadata"):
                stored.pop(key, None)
        locked.spec = stored
        locked.touch(now())
        locked.save()
        complete_job_if_all_tasks_done(locked)
    return locked


def can_terminate_job(job: Job) -> BatchError | None:
    """A job already completed, terminating or being deleted cannot be terminated."""
    return job_state_refusal(job)


def terminate_job(
    job: Job, *, reason: str = "UserTerminate", precondition: Precondition = None
) -> Job:
    """Terminate a job: running tasks are terminated, active tasks stay active and are
    never scheduled, no task can be added; the job ends `completed` with the reason.
    Refuses a job already completed (JobCompleted), terminating or being deleted."""
    with transaction.atomic():
        locked = _lock_job(job, precondition, can_terminate_job)
        locked.save(update_fields=locked.move_to(Job.State.TERMINATING, now()))
        running = Task.objects.select_for_update().filter(job=locked, state__in=Task.RUNNING_STATES)
        for task in running:
            terminate_locked_task(
                task,
                code="TaskEnded",
                message="The task was terminated because its job was terminated.",
            )
        finish_job(locked, reason)
    return locked


def end_job_of_manager(job: Job) -> None:
    """The job manager task's killJobOnCompletion (job_manager.ends_job): terminate the job
    (reason JMComplete), its running tasks ended as Terminate Job ends them. Nothing when
    the job already ended or is ending."""
    if can_terminate_job(job) is None:
        # Refused only when another writer ended the job since it was read: then it is
        # already ending, as killJobOnCompletion wants (the refusal writes nothing).
        with contextlib.suppress(BatchError):
            terminate_job(job, reason=job_manager.TERMINATE_REASON)


def can_disable_job(job: Job) -> BatchError | None:
    """Batch disables a job that is active (or already disabling or disabled: nothing
    changes); any other state is 409: JobCompleted, JobBeingTerminated, JobBeingDeleted,
    JobNotActive (enabling)."""
    if job.state in (Job.State.ACTIVE, Job.State.DISABLING, Job.State.DISABLED):
        return None
    return job_state_refusal(job) or BatchError.job_not_active()


def disable_job(job: Job, *, disable_tasks: str, precondition: Precondition = None) -> Job:
    """Disable a job: no new task of it starts until it is enabled again; its running tasks
    are handled per disableTasks: `requeue` (killed, back to active, requeueCount + 1),
    `terminate` (killed, completed with failureInfo TaskEnded, not run again) or `wait`
    (they run on; the job stays `disabling` until the last one ends, then `disabled`).
    Refuses what can_disable_job refuses (409) and a mode other than those three (400
    InvalidPropertyValue)."""
    if disable_tasks not in DisableJobOption.values:
        raise BatchError.invalid_property(
            "disableTasks", disable_tasks, "One of requeue, terminate, wait."
        )
    with transaction.atomic():
        locked = _lock_job(job, precondition, can_disable_job)
        if locked.state == Job.State.ACTIVE:
            disable_locked_job(locked, disable_tasks=disable_tasks)
    return locked


def disable_locked_job(job: Job, *, disable_tasks: str, skip_locked: bool = False) -> None:
    """The one place a job is disabled (Disable Job, a task's exit option jobAction
    disable): call with the job row locked, inside the transaction. An agent's report
    (skip_locked) never waits for a task row another writer holds, as attempts.py says."""
    job.move_to(Job.State.DISABLING, now())
    rows = Task.objects.select_for_update(skip_locked=skip_locked, of=("self",))
    running = list(rows.filter(job=job, state__in=Task.RUNNING_STATES).order_by("pk"))
    if disable_tasks == DisableJobOption.REQUEUE:
        delta, t = CountDelta(), now()
        for task in running:
            task.job = job
            requeue_locked_task(task, delta, t)
        delta.apply(job.pk)
    elif disable_tasks == DisableJobOption.TERMINATE:
        for task in running:
            terminate_locked_task(
                task,
                code="TaskEnded",
                message="The task was terminated because its job was disabled.",
            )
    if disable_tasks != DisableJobOption.WAIT or not running:
        # Disabling lasted no time: Batch's history is active -> disabled.
        job.move_to(Job.State.DISABLED, now(), previous=Job.State.ACTIVE)
    # Only the state: the counters on this object may be stale after the task moves.
    job.save(update_fields=Job.MOVE_FIELDS)


def finish_disabling_jobs(job_pks: list[int] | None = None) -> int:
    """A job disabled with `wait` is `disabled` once it runs nothing. Called where tasks
    end (finish, requeue, terminate) and by the sweep. Returns how many it finished."""
    jobs = Job.objects.filter(state=Job.State.DISABLING, running_count=0)
    if job_pks is not None:
        jobs = jobs.filter(pk__in=job_pks)
    finished = 0
    for pk in list(jobs.values_list("pk", flat=True)):
        with transaction.atomic():
            job = (
                Job.objects.select_for_update()
                .filter(pk=pk, state=Job.State.DISABLING, running_count=0)
                .first()
            )
            if job is None:
                continue
            job.save(update_fields=job.move_to(Job.State.DISABLED, now()))
            finished += 1
    return finished


def can_enable_job(job: Job) -> BatchError | None:
    """Only a disabled job can be enabled: 409 JobCompleted, JobBeingTerminated,
    JobBeingDeleted, or OperationInvalidForCurrentState (active, disabling)."""
    if job.state == Job.State.DISABLED:
        return None
    return job_state_refusal(job) or BatchError.operation_invalid_for_state(
        f"The job is {job.state}: only a disabled job can be enabled."
    )


def enable_job(job: Job, *, precondition: Precondition = None) -> Job:
    """Enable a disabled job: it becomes active and its tasks are scheduled again (those
    past their 180-day lifetime never run). Enabling takes no time here, so `enabling` is
    never seen. Refuses what can_enable_job refuses (409)."""
    with transaction.atomic():
        locked = _lock_job(job, precondition, can_enable_job)
        locked.save(update_fields=locked.move_to(Job.State.ACTIVE, now()))
    return locked


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
        locked.save(update_fields=locked.move_to(Job.State.DELETING, now()))
        running = Attempt.objects.filter(job=locked, outcome=Attempt.Outcome.RUNNING)
        wakeups.wake_attempt_nodes(running)
        running.update(cancel_requested="delete")
        if not releases_pending(locked):  # else its nodes run the release first
            end_auto_pool(locked)
    if locked.total_count <= INLINE_PURGE_LIMIT:
        purge_deleting_job(locked)
