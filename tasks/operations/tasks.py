"""Task operations: add, add collection, update, terminate, reactivate, delete.

Each operation has a side-effect-free `can_*` form returning the refusal (a BatchError)
or None; the operation raises the same refusal, so the API's 409 and the dashboard's
disabled button come from one rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction

from tasks import sql
from tasks.errors import BatchError
from tasks.models import Attempt, ExitJobAction, Job, SubTask, Task
from tasks.sql import link

from . import counts, job_manager, wakeups
from .common import Precondition, job_state_refusal, lock_checked, now
from .constraints import check_max_task_retry_count, check_task_values
from .counts import CountDelta
from .fast_insert import insert_skipping, prepare_rows
from .job_ends import PREPARATION, complete_job_if_all_tasks_done
from .jobs import end_job_of_manager
from .task_ends import queue_task_cleanup, terminate_locked_task
from .task_specs import DEFAULT_RETENTION, new_task

MAX_LIFETIME = timedelta(days=180)
MAX_COLLECTION = 100
MAX_DEPENDENCY_IDS_CHARS = 64_000
MAX_DEPENDENCY_RANGES = 10_000  # a generous cap; the service documents a limit, not its value
_MISSING = object()


# --- add ---------------------------------------------------------------------------------


def check_task_against_job(job: Job, spec: dict) -> None:
    """The rules of a new task beyond its wire shape (checked by the API), most of which
    depend on its job.

    400 InvalidPropertyValue: the values constraints.check_task_values refuses (an
    environment variable name with "="). 400 TaskDependenciesNotSpecifiedOnJob: dependsOn
    on a job without usesTaskDependencies.
    400 InvalidPropertyValue: dependencyAction without task dependencies; a jobAction other
    than none while the job's onTaskFailure is noaction; a multi-instance task whose
    requiredSlots is not 1. 409 TaskIdSameAsJobPreparationTask / ...ReleaseTask.
    """
    check_task_values(spec)
    if spec.get("dependsOn") and not job.uses_task_dependencies:
        raise BatchError.dependencies_not_on_job()
    depends = spec.get("dependsOn") or {}
    if sum(len(i) for i in depends.get("taskIds") or []) > MAX_DEPENDENCY_IDS_CHARS:
        raise BatchError.dependency_list_too_long()
    if len(depends.get("taskIdRanges") or []) > MAX_DEPENDENCY_RANGES:
        raise BatchError(
            "TaskDependencyRangesTooLong", "The task's dependency ranges are too long.", 400
        )
    for path, options in _exit_options(spec.get("exitConditions") or {}):
        if options.get("dependencyAction") and not job.uses_task_dependencies:
            raise BatchError.invalid_property(
                f"{path}.dependencyAction",
                options["dependencyAction"],
                "dependencyAction requires a job that uses task dependencies.",
            )
        action = options.get("jobAction")
        if (
            action
            and action != ExitJobAction.NONE
            and job.on_task_failure == Job.OnTaskFailure.NOACTION
        ):
            raise BatchError.invalid_property(
                f"{path}.jobAction",
                action,
                "jobAction requires the job's onTaskFailure to be performexitoptionsjobaction.",
            )
    if "multiInstanceSettings" in spec and spec.get("requiredSlots", 1) != 1:
        raise BatchError.invalid_property(
            "requiredSlots", spec.get("requiredSlots"), "A multi-instance task must require 1 slot."
        )
    for key, code, what in (
        ("jobPreparationTask", "TaskIdSameAsJobPreparationTask", "Job Preparation"),
        ("jobReleaseTask", "TaskIdSameAsJobReleaseTask", "Job Release"),
    ):
        special = (job.spec.get(key) or {}).get("id") or (
            "jobpreparation" if key == "jobPreparationTask" else "jobrelease"
        )
        if key in job.spec and special.lower() == spec["id"].lower():
            raise BatchError(code, f"The task id is the same as the job's {what} task id.", 409)


def _exit_options(conditions: dict):
    for i, entry in enumerate(conditions.get("exitCodes") or []):
        yield f"exitConditions.exitCodes[{i}].exitOptions", entry.get("exitOptions") or {}
    for i, entry in enumerate(conditions.get("exitCodeRanges") or []):
        yield f"exitConditions.exitCodeRanges[{i}].exitOptions", entry.get("exitOptions") or {}
    for key in ("preProcessingError", "fileUploadError", "default"):
        if key in conditions:
            yield f"exitConditions.{key}", conditions[key] or {}


def _make_tasks(job: Job, specs: list[dict | BatchError], ids: list[str], t) -> list[tuple]:
    """Per spec: its id as sent, its id key or None when its wire shape was refused, its
    new task or the error it earned against this job, and the task's row (or None)."""
    made: list[tuple] = []
    for spec, task_id in zip(specs, ids, strict=True):
        if isinstance(spec, BatchError):
            made.append((task_id, None, spec))
            continue
        try:
            check_task_against_job(job, spec)
        except BatchError as error:
            made.append((task_id, spec["id"].lower(), error))
            continue
        made.append((task_id, spec["id"].lower(), new_task(job, spec, t)))
    row = iter(prepare_rows(Task, [o for _, _, o in made if isinstance(o, Task)]))
    return [(*m, next(row) if isinstance(m[2], Task) else None) for m in made]


def _adding_inputs(job: Job) -> tuple:
    """What the tasks made for a job depend on (check_task_against_job, new_task)."""
    return (
        job.pk,
        job.max_task_retry_count,
        job.uses_task_dependencies,
        job.on_task_failure,
        (job.spec.get("jobPreparationTask") or {}).get("id"),
        "jobPreparationTask" in job.spec,
        (job.spec.get("jobReleaseTask") or {}).get("id"),
        "jobReleaseTask" in job.spec,
    )


_JOB_FIELDS = [f.name for f in Job._meta.concrete_fields]


def _lock_job_for_adding(job: Job) -> Job:
    """The job as it is now, held so that none of its own operations (terminate, disable,
    delete, update, completion: they take it FOR UPDATE) changes it before the new tasks
    commit, while other adds to it and the agents' counter updates go on: FOR KEY SHARE
    on PostgreSQL (SQLite's write lock serializes writers). 404 JobNotFound when it is
    gone; the job-state refusals of job_state_refusal."""
    found = sql.select_models(Job, _JOB_FIELDS, "{id} = %s", [job.pk], lock=sql.KEY_SHARE)
    if not found and sql.row_locks():
        # Skipped: one of those operations holds it (or it is gone). Wait for it, as the
        # adds' verdict depends on what it leaves.
        table = sql.conn().ops.quote_name(Job._meta.db_table)
        found = list(
            Job.objects.raw(f"SELECT * FROM {table} WHERE id = %s FOR KEY SHARE", [job.pk])
        )
    if not found:
        raise BatchError.job_not_found()
    error = job_state_refusal(found[0])
    if error:
        raise error
    return found[0]


def _insert_tasks(job: Job, rows: list[list]) -> dict[str, int]:
    """Insert the new tasks' rows of one job and count them as active; the rows whose id
    the job already has are skipped by the unique index (ON CONFLICT DO NOTHING), so a
    concurrent add of the same id waits for the other's commit and then loses. Returns
    the pk of each id key inserted. On PostgreSQL the INSERT and the counters' UPDATE are
    one statement; on SQLite two."""
    if not rows:
        return {}
    insert, params = insert_skipping(
        Task, rows, unique=("job", "id_key"), returning=("id", "id_key", "required_slots")
    )
    if sql.conn().vendor == "postgresql":
        found, _ = sql.run(counts.counting_added(insert), [*params, job.pk])
        return dict((key, pk) for pk, key in found)
    found, _ = sql.run(insert, params)
    delta = CountDelta()
    for _, _, slots in found:
        delta.add(Task.State.ACTIVE, "", slots)
    delta.apply(job.pk)
    return {key: pk for pk, key, _ in found}


def _stored(task: Task, pk: int) -> None:
    task.pk = pk
    task._state.adding, task._state.db = False, sql.conn().alias


def can_add_task(job: Job) -> BatchError | None:
    """A job that is completed, terminating or being deleted takes no new tasks."""
    return job_state_refusal(job)


def add_task(job: Job, *, spec: dict) -> Task:
    """Add one task to a job.

    Refuses: 409 JobCompleted / JobBeingTerminated / JobBeingDeleted for a job in those
    states; 409 TaskExists for an id already in the job, compared case-insensitively (a
    database constraint, so two concurrent adds can never both succeed); the job-dependent
    rules of `check_task_against_job`.
    """
    with transaction.atomic():
        locked = _lock_job_for_adding(job)
        check_task_against_job(locked, spec)
        task = new_task(locked, spec, now())
        _wake_for(locked)  # before the counters' UPDATE: see add_task_collection
        added = _insert_tasks(locked, prepare_rows(Task, [task]))
        if task.id_key not in added:
            raise BatchError.task_exists()  # and the wake-up is rolled back with the rest
        _stored(task, added[task.id_key])
    return task


def _wake_for(job: Job) -> None:
    """New active tasks: the agents of the job's pool claim them now."""
    if job.state == Job.State.ACTIVE:
        wakeups.wake_pool(job.account_id, job.pool_id, preparation=PREPARATION in job.spec)


@dataclass
class AddResult:
    """One entry of an Add Collection response: `task` on success, `error` otherwise."""

    task_id: str
    task: Task | None = None
    error: BatchError | None = None


def add_task_collection(
    job: Job, *, specs: list[dict | BatchError], ids: list[str]
) -> list[AddResult]:
    """Add up to 100 tasks to a job in one transaction, each judged on its own.

    `specs[i]` is the validated task or the BatchError its wire shape earned; `ids[i]` its
    id as sent. A task whose id is already in the job, or earlier in the same request
    (case-insensitively), gets TaskExists, so a client that retries a collection never
    creates a duplicate; a bad task does not stop the good ones. The whole request is
    refused only for the job's state (JobCompleted / JobBeingTerminated / JobBeingDeleted).
    """
    if len(specs) > MAX_COLLECTION:
        raise BatchError.too_many_tasks(len(specs))
    # The tasks and their rows are made before the transaction from the job as read, so
    # the job's lock (and SQLite's write lock) is held only for the statements; made
    # again under the lock if the job changed in what they depend on meanwhile.
    t = now()
    made = _make_tasks(job, specs, ids, t)
    results: list[AddResult] = []
    with transaction.atomic():
        locked = _lock_job_for_adding(job)
        if _adding_inputs(locked) != _adding_inputs(job):
            made = _make_tasks(locked, specs, ids, t)
        taken: set[str] = set()  # by an earlier task of this request
        fresh: list[AddResult] = []
        fresh_rows: list[list] = []
        refused: list[
            tuple[str, AddResult]
        ] = []  # for their job: TaskExists first, if the job has the id
        for task_id, key, outcome, row in made:
            if key is None:  # the wire shape was refused
                results.append(AddResult(task_id, error=outcome))
            elif key in taken:
                results.append(AddResult(task_id, error=BatchError.task_exists()))
            elif isinstance(outcome, BatchError):  # a rule that depends on the job
                results.append(AddResult(task_id, error=outcome))
                refused.append((key, results[-1]))
            else:
                taken.add(key)
                link(outcome, "job", locked)
                results.append(AddResult(task_id, task=outcome))
                fresh.append(results[-1])
                fresh_rows.append(row)
        if refused:  # before the insert: the ids the job had before this request
            _refuse_existing_ids_first(locked, refused)
        if fresh_rows:
            # Before the insert, whose counters' UPDATE holds the job's counter row until
            # the commit (a NOTIFY is sent at the commit anyway; a wake-up for tasks that
            # all turned out to exist costs an agent one empty claim).
            _wake_for(locked)
        added = _insert_tasks(locked, fresh_rows)
        for result in fresh:
            if result.task.id_key in added:
                _stored(result.task, added[result.task.id_key])
            else:  # the job had the id already
                result.error, result.task = BatchError.task_exists(), None
    return results


def _refuse_existing_ids_first(job: Job, refused: list[tuple[str, AddResult]]) -> None:
    """An id the job already has earns TaskExists before any rule of the job (as when the
    task is added alone): the rare requests with such refusals pay for one read."""
    keys = {key for key, _ in refused}
    existing = set(Task.objects.filter(job=job, id_key__in=keys).values_list("id_key", flat=True))
    for key, result in refused:
        if key in existing:
            result.error = BatchError.task_exists()


# --- update ------------------------------------------------------------------------------


def can_update_task(task: Task) -> BatchError | None:
    """A completed task's constraints can no longer change (409 TaskCompleted); nor can a
    task's in a job that is completed, terminating or being deleted."""
    error = job_state_refusal(task.job)
    if error:
        return error
    if task.state == Task.State.COMPLETED:
        return BatchError.task_completed()
    return None


def update_task(task: Task, *, constraints: dict | None, precondition: Precondition = None) -> Task:
    """Replace a task's constraints (the only updatable property). Omitted constraints, or
    omitted members of them, take their defaults: maxWallClockTime unlimited, retentionTime
    7 days, maxTaskRetryCount the job's. Refuses what Add refuses (400
    InvalidPropertyValue: a maxTaskRetryCount below -1), a completed task (409
    TaskCompleted) and a task of a job that is ending (409). A new maxWallClockTime applies
    to a running attempt too, measured from its start (Batch terminates a task that runs
    past its constraint): its nodes' agents are woken to re-read it."""
    constraints = constraints or {}
    check_max_task_retry_count(constraints)
    with transaction.atomic():
        locked = _lock_task(task, precondition, can_update_task)
        locked.max_wall_clock_time = constraints.get("maxWallClockTime")
        locked.retention_time = constraints.get("retentionTime", DEFAULT_RETENTION)
        locked.max_task_retry_count = constraints.get(
            "maxTaskRetryCount", locked.job.max_task_retry_count
        )
        locked.save(
            update_fields=[
                "max_wall_clock_time",
                "retention_time",
                "max_task_retry_count",
                *locked.touch(now()),
            ]
        )
        if locked.state != Task.State.ACTIVE:
            wakeups.wake_attempt_nodes(
                Attempt.objects.filter(task=locked, outcome=Attempt.Outcome.RUNNING)
            )
    return locked


# --- terminate ---------------------------------------------------------------------------


def can_terminate_task(task: Task) -> BatchError | None:
    """Only a task that is not completed can be terminated (409 TaskCompleted); a task of a
    job being deleted is going away (409 JobBeingDeleted)."""
    if task.job.state == Job.State.DELETING:
        return BatchError.job_being_deleted()
    if task.state == Task.State.COMPLETED:
        return BatchError.task_completed()
    return None


def terminate_task(task: Task, *, precondition: Precondition = None) -> Task:
    """Terminate a task: it becomes completed with result failure and failureInfo TaskEnded;
    a running process (the primary of a multi-instance task) is killed at once by its
    node, and the subtasks in the background. Refuses a completed task (409 TaskCompleted).
    A job manager task with killJobOnCompletion ends its job (job_manager.ends_job)."""
    with transaction.atomic():
        locked = _lock_task(task, precondition, can_terminate_task)
        terminate_locked_task(
            locked, code="TaskEnded", message="The task was terminated by a request."
        )
        complete_job_if_all_tasks_done(locked.job)
    if job_manager.ends_job(
        locked.job, locked
    ):  # after: terminate_job locks the job, then its tasks
        end_job_of_manager(locked.job)
    return locked


# --- reactivate --------------------------------------------------------------------------


def can_reactivate_task(task: Task) -> BatchError | None:
    """Only a completed task that did not succeed can be reactivated, and not while its job
    is completed, terminating or being deleted (409 JobCompleted / JobBeingTerminated /
    JobBeingDeleted / TaskNotCompleted / TaskSucceeded)."""
    error = job_state_refusal(task.job)
    if error:
        return error
    if task.state != Task.State.COMPLETED:
        return BatchError.task_not_completed()
    if task.result == Task.Result.SUCCESS:
        return BatchError.task_succeeded()
    return None


def reactivate_task(task: Task, *, precondition: Precondition = None) -> Task:
    """Reactivate a failed task: it becomes active with retryCount 0 (so it gets 1 +
    maxTaskRetryCount new tries), and its previous exit code, result and failure
    information are gone. Subtasks of a multi-instance task start afresh."""
    with transaction.atomic():
        locked = _lock_task(task, precondition, can_reactivate_task)
        old = (locked.state, locked.result)
        locked.move_to(Task.State.ACTIVE, now())
        locked.clear_execution_info(reactivated=True)
        locked.lifetime_expired = False
        locked.save()
        SubTask.objects.filter(task=locked).delete()
        delta = CountDelta()
        delta.move(old, (locked.state, locked.result), locked.required_slots)
        delta.apply(locked.job_id)
        _wake_for(locked.job)
    return locked


# --- delete ------------------------------------------------------------------------------


def can_delete_task(task: Task) -> BatchError | None:
    """A task can be deleted in any state; only a job being deleted refuses (JobBeingDeleted)."""
    if task.job.state == Job.State.DELETING:
        return BatchError.job_being_deleted()
    return None


def delete_task(task: Task, *, precondition: Precondition = None) -> None:
    """Delete a task in any state: a running process is killed, and every directory it had
    on a node (the primary's at once, the subtasks' in the background) is removed whatever
    its retentionTime."""
    with transaction.atomic():
        locked = _lock_task(task, precondition, can_delete_task)
        queue_task_cleanup([locked.pk], reason="delete")
        delta = CountDelta()
        delta.add(locked.state, locked.result, locked.required_slots, -1)
        delta.apply(locked.job_id)
        # The attempts go with the row: an agent that no longer finds its attempt kills
        # the process (tasks.node), which is how delete reaches a running task.
        wakeups.wake_attempt_nodes(
            Attempt.objects.filter(task=locked, outcome=Attempt.Outcome.RUNNING)
        )
        locked.delete()
        complete_job_if_all_tasks_done(Job.objects.get(pk=locked.job_id))


# --- shared ------------------------------------------------------------------------------


def _lock_task(task: Task, precondition: Precondition, refusal) -> Task:
    """Lock the task row (with its job), then check the caller's condition and the
    operation's rule on it."""
    return lock_checked(
        Task.objects.select_related("job").filter(pk=task.pk),
        BatchError.task_not_found,
        precondition,
        refusal,
    )
