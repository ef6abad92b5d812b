"""Job preparation and release tasks: the per-(job, node) record and its rules.

Batch runs a job's jobPreparationTask on a node before any task of the job runs there,
once per node (not per task), and its jobReleaseTask on every node that ran the
preparation when the job ends (completed, terminated or deleted). The record
(JobPreparation) is what List Preparation and Release Task Status returns; only this
module writes it. The agent asks `preparations_due` / `releases_due` what it must run
(tasks.node.job_tasks) and reports through the start/finish operations here; the claim
asks `claimable_jobs` which jobs' tasks may start on the node.

The rules, as Batch documents them:
- waitForSuccess (default true): the job's tasks start on the node only after its
  preparation succeeded (exit code 0). A preparation that still fails after
  constraints.maxTaskRetryCount retries makes the node ineligible for the job's tasks
  (they stay active for other nodes); the node stays usable for other jobs. With
  waitForSuccess false the tasks may start once the preparation has started, whatever it
  ends with.
- rerunOnNodeRebootAfterSuccess (default true): after the node reboots (a new
  lastBootTime) the preparation runs again before the job's next task there; a
  preparation that had not completed when the node went down always runs again.
- The release runs only on nodes whose preparation ran, after the job's tasks on that
  node ended; the job stays `terminating` (or `deleting`) until every such node's
  release ended or the node is gone (offline, or removed: its records stay, nodeless).
  That part of a job's end is job_ends.py's (releases_pending, settle_ending_jobs, the
  names of the two tasks), which the reports here call when a release ends.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Q

from tasks.errors import BatchError
from tasks.models import ComputeNode, Job, JobPreparation
from tasks.timefmt import parse_duration

from .common import now
from .job_ends import ENDING_JOB_STATES, PREPARATION, RELEASE, settle_ending_jobs

RELEASE_DEFAULT_WALL_CLOCK_SECONDS = 15 * 60  # Batch's default maxWallClockTime of a release


def waits_for_success(spec: dict) -> bool:
    return spec.get("waitForSuccess", True) is not False


def reruns_after_reboot(spec: dict) -> bool:
    return spec.get("rerunOnNodeRebootAfterSuccess", True) is not False


def max_retries(spec: dict) -> int:
    """The preparation's constraints.maxTaskRetryCount (0 by default, -1 unlimited)."""
    return int((spec.get("constraints") or {}).get("maxTaskRetryCount", 0))


def _counts(record: JobPreparation, spec: dict, node: ComputeNode) -> bool:
    """Whether a record still stands on this boot of the node: made on this boot, or a
    success that rerunOnNodeRebootAfterSuccess false keeps across reboots."""
    if record.boot == node.registered:
        return True
    return (
        record.prep_state == JobPreparation.State.COMPLETED
        and record.prep_result == JobPreparation.Result.SUCCESS
        and not reruns_after_reboot(spec)
    )


def _lets_tasks_run(record: JobPreparation, spec: dict, node: ComputeNode) -> bool:
    if not _counts(record, spec, node):
        return False
    if waits_for_success(spec):
        return record.prep_result == JobPreparation.Result.SUCCESS
    return True


def claimable_jobs(node: ComputeNode, jobs: list[Job]) -> list[Job]:
    """The jobs of `jobs` whose tasks may start on `node` now: those without a preparation
    task, and those whose preparation on this node lets them (waitForSuccess: succeeded on
    this boot; else started). Costs one query when a job has a preparation task, none
    otherwise (the claim calls it with every pass)."""
    prepared = [job for job in jobs if PREPARATION in job.spec]
    if not prepared:
        return jobs
    records = {
        r.job_id: r
        for r in JobPreparation.objects.filter(node_id=node.pk, job_id__in=[j.pk for j in prepared])
    }
    return [
        job
        for job in jobs
        if PREPARATION not in job.spec
        or (job.pk in records and _lets_tasks_run(records[job.pk], job.spec[PREPARATION], node))
    ]


def _lost(record: JobPreparation, node: ComputeNode, held: frozenset[int]) -> bool:
    """A preparation recorded as running on this boot that the node's agent does not run:
    its start was committed but the agent never heard so (the database went away at that
    moment). Only this node's agent runs its preparations, so it may start it again."""
    return (
        record.prep_state == JobPreparation.State.RUNNING
        and record.boot == node.registered
        and record.job_id not in held
    )


def preparations_due(node: ComputeNode, *, held: frozenset[int] | None = None) -> list[Job]:
    """The jobs whose preparation this node must run before it may claim their tasks:
    active jobs of its pool with a preparation task and active tasks, that have no record
    on this node standing on this boot (a failed preparation stands: the node is not
    eligible for the job any more), or whose record says it runs while the agent, which
    runs the preparations of the jobs `held`, does not run it (_lost). Two queries."""
    pool = node.pool
    jobs = list(
        Job.objects.filter(
            account_id=pool.account_id,
            state=Job.State.ACTIVE,
            pool_id__iexact=pool.pool_id,
            active_count__gt=0,
            spec__has_key=PREPARATION,
        ).order_by("-priority", "creation_time")
    )
    if not jobs:
        return []
    records = {
        r.job_id: r
        for r in JobPreparation.objects.filter(node_id=node.pk, job_id__in=[j.pk for j in jobs])
    }
    return [
        job
        for job in jobs
        if job.pk not in records
        or not _counts(records[job.pk], job.spec[PREPARATION], node)
        or (held is not None and _lost(records[job.pk], node, held))
    ]


def start_job_preparation(
    job: Job, node: ComputeNode, *, held: frozenset[int] | None = None
) -> JobPreparation | None:
    """Record that `node` starts the job's preparation on this boot (its first run, or a
    rerun after a reboot: the retry count starts again; or, with `held` the jobs whose
    preparation the agent runs, a run it lost: _lost). Returns the record, or None when it
    needs no run any more (the job left `active`, or a record already stands)."""
    t = now()
    fields = dict(
        boot=node.registered,
        prep_state=JobPreparation.State.RUNNING,
        prep_start_time=t,
        prep_end_time=None,
        prep_exit_code=None,
        prep_failure_info=None,
        prep_result="",
        prep_retry_count=0,
        prep_last_retry_time=None,
        release_state="",
        release_start_time=None,
        release_boot=None,
        release_end_time=None,
        release_exit_code=None,
        release_failure_info=None,
        release_result="",
    )
    with transaction.atomic():
        locked = Job.objects.select_for_update().filter(pk=job.pk, state=Job.State.ACTIVE).first()
        if locked is None or PREPARATION not in locked.spec:
            return None
        record = (
            JobPreparation.objects.select_for_update().filter(job=locked, node_id=node.pk).first()
        )
        if record is None:
            try:
                with transaction.atomic():
                    return JobPreparation.objects.create(
                        job=locked,
                        node_id=node.pk,
                        pool_name=node.pool.pool_id,
                        node_name=node.node_id,
                        root_dir=node.root_dir,
                        **fields,
                    )
            except IntegrityError:
                return None  # made by another pass of this node's agent in the meantime
        if _counts(record, locked.spec[PREPARATION], node) and not (
            held is not None and _lost(record, node, held)
        ):
            return None
        for name, value in fields.items():
            setattr(record, name, value)
        record.save(update_fields=list(fields))
    return record


def finish_job_preparation(
    record: JobPreparation,
    *,
    exit_code: int | None,
    failure_code: str = "",
    failure_message: str = "",
) -> bool:
    """Record how a run of the preparation ended. A failure (non-zero exit, or a failure
    code: the command or its resource files could not start) is retried while retries are
    left (constraints.maxTaskRetryCount; retryCount + 1, lastRetryTime): returns True, and
    the record stays `running`. Otherwise the record is `completed` with its result."""
    t = now()
    with transaction.atomic():
        locked = (
            JobPreparation.objects.select_for_update()
            .select_related("job")
            .filter(pk=record.pk, prep_state=JobPreparation.State.RUNNING)
            .first()
        )
        if locked is None:
            return False  # the job or the node went away meanwhile
        spec = locked.job.spec.get(PREPARATION) or {}
        failed = bool(failure_code) or exit_code != 0
        limit = max_retries(spec)
        if (
            failed
            and (limit == -1 or locked.prep_retry_count < limit)
            and locked.job.state == Job.State.ACTIVE
        ):
            locked.prep_retry_count += 1
            locked.prep_last_retry_time = t
            locked.save(update_fields=["prep_retry_count", "prep_last_retry_time"])
            return True
        locked.prep_state = JobPreparation.State.COMPLETED
        locked.prep_end_time = t
        locked.prep_exit_code = exit_code
        locked.prep_result = (
            JobPreparation.Result.FAILURE if failed else JobPreparation.Result.SUCCESS
        )
        locked.prep_failure_info = (
            _failure_info(exit_code, failure_code, failure_message) if failed else None
        )
        locked.save(
            update_fields=[
                "prep_state",
                "prep_end_time",
                "prep_exit_code",
                "prep_result",
                "prep_failure_info",
            ]
        )
        job = locked.job
    # A preparation that ended on an ending job may be the last thing it waited for.
    settle_ending_jobs([job.pk])
    return False


def _failure_info(exit_code: int | None, code: str, message: str) -> dict:
    if code:
        category = "UserError" if code != "CommandLaunchFailed" else "ServerError"
        return {"category": category, "code": code, "message": message}
    return {
        "category": "UserError",
        "code": "FailureExitCode",
        "message": "The task exited with an exit code representing a failure",
        "details": [
            {
                "name": "Message",
                "value": f"The task process exited with an unexpected exit code ({exit_code})",
            }
        ],
    }


def releases_due(node: ComputeNode) -> list[JobPreparation]:
    """The release tasks this node must run: of jobs ending (terminating or deleting) with
    a release task, where this node's preparation has completed and no release started on
    this boot (one that started on an earlier boot was interrupted: it runs again). One
    query."""
    return list(
        JobPreparation.objects.select_related("job").filter(
            Q(release_state="")
            | Q(release_state=JobPreparation.State.RUNNING, release_boot__lt=node.registered),
            node_id=node.pk,
            job__state__in=ENDING_JOB_STATES,
            job__spec__has_key=RELEASE,
            prep_state=JobPreparation.State.COMPLETED,
        )
    )


def start_job_release(record: JobPreparation, node: ComputeNode) -> bool:
    """Record that the node starts the job's release on this boot; False if it started
    already (compare-and-set on what `releases_due` read) or its job is gone."""
    return (
        JobPreparation.objects.filter(
            pk=record.pk,
            release_state=record.release_state,
            release_start_time=record.release_start_time,
        ).update(
            release_state=JobPreparation.State.RUNNING,
            release_start_time=now(),
            release_boot=node.registered,
        )
        == 1
    )


def finish_job_release(
    record: JobPreparation,
    *,
    exit_code: int | None,
    failure_code: str = "",
    failure_message: str = "",
) -> None:
    """Record how the release ended (Batch does not retry a release), then end the job if
    this was the last release it waited for."""
    failed = bool(failure_code) or exit_code != 0
    updated = JobPreparation.objects.filter(
        pk=record.pk, release_state=JobPreparation.State.RUNNING
    ).update(
        release_state=JobPreparation.State.COMPLETED,
        release_end_time=now(),
        release_exit_code=exit_code,
        release_result=JobPreparation.Result.FAILURE if failed else JobPreparation.Result.SUCCESS,
        release_failure_info=_failure_info(exit_code, failure_code, failure_message)
        if failed
        else None,
    )
    if updated:
        settle_ending_jobs([record.job_id])


def can_list_job_preparation_status(job: Job) -> BatchError | None:
    """List Preparation and Release Task Status needs a job with either task: 409
    JobPreparationTaskOrReleaseTaskNotSpecified otherwise."""
    if PREPARATION in job.spec or RELEASE in job.spec:
        return None
    return BatchError(
        "JobPreparationTaskOrReleaseTaskNotSpecified",
        "The specified job does not have a job preparation task or job release task.",
        409,
    )


def release_wall_clock_seconds(spec: dict) -> float:
    """A release's maxWallClockTime: Batch's 15 minutes unless shorter (it never runs longer)."""
    limit = spec.get("maxWallClockTime") or ""
    parsed = parse_duration(limit) if limit else None
    seconds = parsed.total_seconds() if parsed is not None else RELEASE_DEFAULT_WALL_CLOCK_SECONDS
    return min(seconds, RELEASE_DEFAULT_WALL_CLOCK_SECONDS)


def preparation_wall_clock_seconds(spec: dict) -> float | None:
    """The preparation's constraints.maxWallClockTime (None: unlimited)."""
    limit = (spec.get("constraints") or {}).get("maxWallClockTime")
    parsed = parse_duration(limit) if limit else None
    return parsed.total_seconds() if parsed is not None else None
