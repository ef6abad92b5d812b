"""Job operations: add, update/patch, terminate, delete, and the job-level effects of
task completion (onAllTasksComplete / onTaskFailure)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from tasks.errors import BatchError
from tasks.models import Account, Attempt, Job, JobSchedule, Task

from . import job_manager, wakeups
from .common import Precondition, job_state_refusal, lock_checked, new_etag, now
from .constraints import check_job_values

# Properties Update (PUT) and Patch may change; the rest are fixed at add time.
UPDATABLE = ("priority", "maxParallelTasks", "allowTaskPreemption", "constraints", "poolInfo",
             "onAllTasksComplete", "metadata", "networkConfiguration")
INLINE_PURGE_LIMIT = 10_000


def add_job(account: Account, *, spec: dict) -> Job:
    """Add a job. With poolInfo.autoPoolSpecification, its auto pool is created with it
    (see add_auto_pool). Refuses an id already used in the account (409 JobExists), the
    values Batch refuses (400 InvalidPropertyValue: constraints.check_job_values), an id a
    job schedule has (409 JobScheduleWithSameIdExists), and what add_auto_pool refuses."""
    check_job_values(spec)
    auto = (spec.get("poolInfo") or {}).get("autoPoolSpecification")
    if auto is not None:
        from .auto_pools import add_job_with_auto_pool

        return add_job_with_auto_pool(account, spec=spec)
    return _insert_job(account, spec=spec)


def _insert_job(account: Account, *, spec: dict, pool_id: str | None = None) -> Job:
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
    return lock_checked(Job.objects.filter(pk=job.pk), BatchError.job_not_found, precondition, refusal)


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
        wanted = spec.get("onAllTasksComplete", Job.OnAllTasksComplete.NOACTION if replace else None)
        if locked.on_all_tasks_complete == Job.OnAllTasksComplete.TERMINATEJOB and \
                wanted == Job.OnAllTasksComplete.NOACTION:
            raise BatchError.invalid_property(
                "onAllTasksComplete", wanted,
                "A job's onAllTasksComplete cannot be changed from terminatejob to noaction")
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


DISABLE_TASKS = ("requeue", "terminate", "wait")
RUNNING_STATES = (Task.State.PREPARING, Task.State.RUNNING)


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
    if disable_tasks not in DISABLE_TASKS:
        raise BatchError.invalid_property("disableTasks", disable_tasks, "One of requeue, terminate, wait.")
    with transaction.atomic():
        locked = _lock_job(job, precondition, can_disable_job)
        if locked.state == Job.State.ACTIVE:
            disable_locked_job(locked, disable_tasks=disable_tasks)
    return locked


def disable_locked_job(job: Job, *, disable_tasks: str, skip_locked: bool = False) -> None:
    """The one place a job is disabled (Disable Job, a task's exit option jobAction
    disable): call with the job row locked, inside the transaction. An agent's report
    (skip_locked) never waits for a task row another writer holds, as attempts.py says."""
    from .attempts import requeue_locked_task
    from .counts import CountDelta
    from .tasks import _terminate_locked_task

    _set_job_state(job, Job.State.DISABLING)
    rows = Task.objects.select_for_update(skip_locked=skip_locked, of=("self",))
    running = list(rows.filter(job=job, state__in=RUNNING_STATES).order_by("pk"))
    if disable_tasks == "requeue":
        delta, t = CountDelta(), now()
        for task in running:
            task.job = job
            requeue_locked_task(task, delta, t)
        delta.apply(job.pk)
    elif disable_tasks == "terminate":
        for task in running:
            _terminate_locked_task(task, code="TaskEnded",
                                   message="The task was terminated because its job was disabled.")
    if disable_tasks != "wait" or not running:
        _set_job_state(job, Job.State.DISABLED)
        job.previous_state = Job.State.ACTIVE  # disabling lasted no time: Batch's history is active -> disabled
    # Only the state: the counters on this object may be stale after the task moves.
    job.save(update_fields=_STATE_FIELDS)


def finish_disabling_jobs(job_pks: list[int] | None = None) -> int:
    """A job disabled with `wait` is `disabled` once it runs nothing. Called where tasks
    end (finish, requeue, terminate) and by the sweep. Returns how many it finished."""
    jobs = Job.objects.filter(state=Job.State.DISABLING, running_count=0)
    if job_pks is not None:
        jobs = jobs.filter(pk__in=job_pks)
    finished = 0
    for pk in list(jobs.values_list("pk", flat=True)):
        with transaction.atomic():
            job = Job.objects.select_for_update().filter(pk=pk, state=Job.State.DISABLING, running_count=0).first()
            if job is None:
                continue
            _set_job_state(job, Job.State.DISABLED)
            job.save(update_fields=_STATE_FIELDS)
            finished += 1
    return finished


def can_enable_job(job: Job) -> BatchError | None:
    """Only a disabled job can be enabled: 409 JobCompleted, JobBeingTerminated,
    JobBeingDeleted, or OperationInvalidForCurrentState (active, disabling)."""
    if job.state == Job.State.DISABLED:
        return None
    return job_state_refusal(job) or BatchError.operation_invalid_for_state(
        f"The job is {job.state}: only a disabled job can be enabled.")


def enable_job(job: Job, *, precondition: Precondition = None) -> Job:
    """Enable a disabled job: it becomes active and its tasks are scheduled again (those
    past their 180-day lifetime never run). Enabling takes no time here, so `enabling` is
    never seen. Refuses what can_enable_job refuses (409)."""
    with transaction.atomic():
        locked = _lock_job(job, precondition, can_enable_job)
        _set_job_state(locked, Job.State.ACTIVE)
        locked.save(update_fields=_STATE_FIELDS)
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
    from .job_preparation import releases_pending

    if releases_pending(job):
        # The nodes that ran the job preparation run its release first: the job stays
        # terminating until they have (job_preparation.settle_ending_jobs ends it).
        if job.state != Job.State.TERMINATING:
            _set_job_state(job, Job.State.TERMINATING)
        job.terminate_reason = reason
        job.save(update_fields=[*_STATE_FIELDS, "terminate_reason"])
        wakeups.wake_nodes(job.preparations.values_list("node_id", flat=True))
        return
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
        from .job_preparation import releases_pending

        if not releases_pending(locked):  # else its nodes run the release first (settle_ending_jobs)
            _end_auto_pool(locked)
    if locked.total_count <= INLINE_PURGE_LIMIT:
        purge_deleting_job(locked)


def purge_deleting_job(job: Job, *, batch: int = 5000) -> None:
    """Remove a `deleting` job's tasks in batches, queueing their directories for their
    nodes to delete, then the job itself."""
    from .job_preparation import queue_job_task_cleanup, releases_pending
    from .tasks import queue_task_cleanup

    if releases_pending(job):
        # Its release tasks run first; the last one to end purges it (or the sweep does).
        wakeups.wake_nodes(job.preparations.values_list("node_id", flat=True))
        return
    queue_job_task_cleanup(job)
    while True:
        with transaction.atomic():
            pks = list(Task.objects.filter(job=job).values_list("pk", flat=True)[:batch])
            if not pks:
                break
            queue_task_cleanup(pks, reason="jobdelete")
            Task.objects.filter(pk__in=pks).delete()
    Job.objects.filter(pk=job.pk, state=Job.State.DELETING).delete()
