"""Task operations: add, add collection, update, terminate, reactivate, delete.

Each operation has a side-effect-free `can_*` form returning the refusal (a BatchError)
or None; the operation raises the same refusal, so the API's 409 and the dashboard's
disabled button come from one rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction

from tasks.errors import BatchError
from tasks.models import Attempt, Job, NodeCleanup, SubTask, Task

from . import job_manager, wakeups
from .common import Precondition, job_state_refusal, lock_checked, new_etag, now
from .constraints import check_max_task_retry_count, check_task_values
from .counts import CountDelta
from .fast_insert import insert_rows, new_instance, prepare_rows
from .jobs import complete_job_if_all_tasks_done
from .sql import link

DEFAULT_RETENTION = timedelta(days=7)
MAX_LIFETIME = timedelta(days=180)
MAX_COLLECTION = 100
MAX_DEPENDENCY_IDS_CHARS = 64_000
MAX_DEPENDENCY_RANGES = 10_000  # a generous cap; the service documents a limit, not its value

# Wire properties kept verbatim in Task.spec (everything but what has its own column).
_COLUMNS = {"id", "displayName", "commandLine", "constraints", "requiredSlots"}
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
        raise BatchError("TaskDependencyRangesTooLong", "The task's dependency ranges are too long.", 400)
    for path, options in _exit_options(spec.get("exitConditions") or {}):
        if options.get("dependencyAction") and not job.uses_task_dependencies:
            raise BatchError.invalid_property(
                f"{path}.dependencyAction", options["dependencyAction"],
                "dependencyAction requires a job that uses task dependencies.",
            )
        action = options.get("jobAction")
        if action and action != "none" and job.on_task_failure == Job.OnTaskFailure.NOACTION:
            raise BatchError.invalid_property(
                f"{path}.jobAction", action,
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
        special = (job.spec.get(key) or {}).get("id") or ("jobpreparation" if key == "jobPreparationTask" else "jobrelease")
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


def _new_task(job: Job, spec: dict, t) -> Task:
    constraints = spec.get("constraints") or {}
    multi = spec.get("multiInstanceSettings") or {}
    etag = new_etag()
    return new_instance(
        Task, {"job": job},
        task_id=spec["id"],
        id_key=spec["id"].lower(),
        display_name=spec.get("displayName") or "",
        command_line=spec["commandLine"],
        required_slots=spec.get("requiredSlots", 1),
        number_of_instances=multi.get("numberOfInstances", 1) if multi else 1,
        max_wall_clock_time=constraints.get("maxWallClockTime"),
        retention_time=constraints.get("retentionTime", DEFAULT_RETENTION),
        max_task_retry_count=constraints.get("maxTaskRetryCount", job.max_task_retry_count),
        spec={k: v for k, v in spec.items() if k not in _COLUMNS},
        state=Task.State.ACTIVE,
        state_transition_time=t,
        creation_time=t,
        last_modified=t,
        etag=etag,
    )


def _make_tasks(job: Job, specs: list[dict | BatchError], ids: list[str], t) -> tuple[str, list[tuple]]:
    """The INSERT of new tasks, and per spec (its id as sent, its id key or None when its
    wire shape was refused, its new task or the error it earned against this job, the
    task's row or None)."""
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
        made.append((task_id, spec["id"].lower(), _new_task(job, spec, t)))
    sql, rows = prepare_rows(Task, [o for _, _, o in made if isinstance(o, Task)])
    row = iter(rows)
    return sql, [(*m, next(row) if isinstance(m[2], Task) else None) for m in made]


def _adding_inputs(job: Job) -> tuple:
    """What the tasks made for a job depend on (check_task_against_job, _new_task)."""
    return (job.pk, job.max_task_retry_count, job.uses_task_dependencies, job.on_task_failure,
            (job.spec.get("jobPreparationTask") or {}).get("id"), "jobPreparationTask" in job.spec,
            (job.spec.get("jobReleaseTask") or {}).get("id"), "jobReleaseTask" in job.spec)


def _lock_job_for_adding(job: Job) -> Job:
    return lock_checked(Job.objects.filter(pk=job.pk), BatchError.job_not_found, None, job_state_refusal)


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
        task = _new_task(locked, spec, now())
        try:
            with transaction.atomic():
                task.save(force_insert=True)
        except IntegrityError:
            raise BatchError.task_exists() from None
        delta = CountDelta()
        delta.add(Task.State.ACTIVE, "", task.required_slots)
        delta.apply(locked.pk)
        _wake_for(locked)
    return task


def _wake_for(job: Job) -> None:
    """New active tasks: the agents of the job's pool claim them now."""
    if job.state == Job.State.ACTIVE:
        wakeups.wake_pool(job.account_id, job.pool_id)


@dataclass
class AddResult:
    """One entry of an Add Collection response: `task` on success, `error` otherwise."""

    task_id: str
    task: Task | None = None
    error: BatchError | None = None


def add_task_collection(job: Job, *, specs: list[dict | BatchError], ids: list[str]) -> list[AddResult]:
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
    sql, made = _make_tasks(job, specs, ids, t)
    results: list[AddResult] = []
    with transaction.atomic():
        locked = _lock_job_for_adding(job)
        if _adding_inputs(locked) != _adding_inputs(job):
            sql, made = _make_tasks(locked, specs, ids, t)
        keys = [key for _, key, _, _ in made if key is not None]
        taken = set(Task.objects.filter(job=locked, id_key__in=keys).values_list("id_key", flat=True))
        fresh: list[Task] = []
        fresh_rows: list[list] = []
        for task_id, key, outcome, row in made:
            if key is None:  # the wire shape was refused
                results.append(AddResult(task_id, error=outcome))
                continue
            if key in taken:
                results.append(AddResult(task_id, error=BatchError.task_exists()))
                continue
            if isinstance(outcome, BatchError):  # a rule that depends on the job
                results.append(AddResult(task_id, error=outcome))
                continue
            taken.add(key)
            link(outcome, "job", locked)
            fresh.append(outcome)
            fresh_rows.append(row)
            results.append(AddResult(task_id, task=outcome))
        try:
            with transaction.atomic():
                insert_rows(sql, fresh_rows)
            pks = dict(Task.objects.filter(job=locked, id_key__in=[t.id_key for t in fresh])
                       .values_list("id_key", "pk"))
            for task in fresh:
                task.pk = pks[task.id_key]
                task._state.adding = False
        except IntegrityError:
            # Another writer took an id after our read (possible only without a job lock);
            # fall back to one insert per task so each gets its own verdict.
            for result in results:
                if result.task is None:
                    continue
                try:
                    with transaction.atomic():
                        result.task.pk = None
                        result.task.save(force_insert=True)
                except IntegrityError:
                    result.error, result.task = BatchError.task_exists(), None
        delta = CountDelta()
        for result in results:
            if result.task is not None:
                delta.add(Task.State.ACTIVE, "", result.task.required_slots)
        delta.apply(locked.pk)
        if delta.tasks["active"]:
            _wake_for(locked)
    return results


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
        locked.max_task_retry_count = constraints.get("maxTaskRetryCount", locked.job.max_task_retry_count)
        _touch(locked)
        locked.save(update_fields=["max_wall_clock_time", "retention_time", "max_task_retry_count",
                                   "etag", "last_modified"])
        if locked.state != Task.State.ACTIVE:
            wakeups.wake_attempt_nodes(Attempt.objects.filter(task=locked, outcome=Attempt.Outcome.RUNNING))
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
        _terminate_locked_task(locked, code="TaskEnded", message="The task was terminated by a request.")
        complete_job_if_all_tasks_done(locked.job)
    if job_manager.ends_job(locked.job, locked):  # after: terminate_job locks the job, then its tasks
        job_manager.end_job_of_manager(locked.job)
    return locked


def _terminate_locked_task(task: Task, *, code: str, message: str) -> None:
    """Complete a locked, not completed task as ended by the service or a user."""
    t = now()
    old = (task.state, task.result)
    running = Attempt.objects.filter(task=task, outcome=Attempt.Outcome.RUNNING)
    wakeups.wake_attempt_nodes(running)  # their agents kill the processes now
    running.update(cancel_requested="terminate")
    _set_state(task, Task.State.COMPLETED, t)
    task.end_time = t
    task.result = Task.Result.FAILURE
    task.failure_info = {"category": "usererror", "code": code, "message": message}
    task.save()
    delta = CountDelta()
    delta.move(old, (task.state, task.result), task.required_slots)
    delta.apply(task.job_id)


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
        _set_state(locked, Task.State.ACTIVE, now())
        locked.start_time = locked.end_time = locked.exit_code = locked.failure_info = None
        locked.result = ""
        locked.retry_count = 0
        locked.last_retry_time = None
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
        wakeups.wake_attempt_nodes(Attempt.objects.filter(task=locked, outcome=Attempt.Outcome.RUNNING))
        locked.delete()
        complete_job_if_all_tasks_done(Job.objects.get(pk=locked.job_id))


def queue_task_cleanup(task_pks: list[int], *, reason: str) -> None:
    """Queue every directory these tasks had on any node for that node to remove."""
    dirs = set(
        Attempt.objects.filter(task_id__in=task_pks)
        .exclude(task_dir="")
        .values_list("node_name", "task_dir")
    )
    dirs |= set(
        Task.objects.filter(pk__in=task_pks)
        .exclude(task_root_directory="")
        .values_list("node_name", "task_root_directory")
    )
    NodeCleanup.objects.bulk_create(
        NodeCleanup(node_name=node, pool_id="", task_dir=path, reason=reason) for node, path in dirs if node
    )


# --- shared ------------------------------------------------------------------------------


def _lock_task(task: Task, precondition: Precondition, refusal) -> Task:
    """Lock the task row (with its job), then check the caller's condition and the
    operation's rule on it."""
    return lock_checked(Task.objects.select_related("job").filter(pk=task.pk), BatchError.task_not_found,
                        precondition, refusal)


def _set_state(task: Task, state: str, t) -> None:
    task.previous_state = task.state
    task.previous_state_transition_time = task.state_transition_time
    task.state = state
    task.state_transition_time = t
    _touch(task, t)


def _touch(task: Task, t=None) -> None:
    task.etag = new_etag()
    task.last_modified = t or now()
