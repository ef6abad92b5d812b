"""Job schedule operations: add, update/patch, disable/enable, terminate, delete, and the
scheduling pass that makes a schedule's jobs on time.

Batch rules kept here (BatchJobScheduleConfiguration's documentation):
- Run times are doNotRunUntil (or the schedule's creation) plus whole recurrenceIntervals.
  A job is made at a run time, named `<scheduleId>:job-<n>` from the jobSpecification.
- At most one job of a schedule is not completed at any time: a run time that comes while
  the previous job still runs waits for it, within its startWindow; once the window has
  passed the opportunity is lost and the next run time is due. A startWindow longer than
  the recurrenceInterval (or none) is as long as the interval: a due job is never carried
  into the next interval. Without recurrenceInterval one job is made.
- No job is made after doNotRunAfter. The schedule completes once no run is left (past
  doNotRunAfter, or its one job made) and its job ended.
- Terminate ends the schedule and terminates its job (terminateReason
  TerminateJobSchedule); Delete deletes it with all its jobs and their tasks.
- An auto pool with poolLifetimeOption `jobschedule` is made with the first job, used by
  every job of the schedule, and deleted when the schedule completes or is deleted.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from tasks.errors import BatchError
from tasks.models import Account, Job, JobSchedule, Pool, new_etag
from tasks.timefmt import format_datetime_wire, parse_datetime_wire, parse_duration

from . import pool_specs
from .auto_pools import auto_pool_spec
from .common import Precondition, lock_checked, now
from .constraints import check_job_values
from .jobs import (
    add_job_with_auto_pool,
    can_delete_job,
    can_terminate_job,
    delete_job,
    insert_job,
    terminate_job,
)
from .pools import add_pool, delete_pool

# A schedule's job that has not ended (Batch: "active" in the schedule's sense).
UNFINISHED_JOB_STATES = (
    Job.State.ACTIVE,
    Job.State.DISABLING,
    Job.State.DISABLED,
    Job.State.ENABLING,
    Job.State.TERMINATING,
)
ENDED = (JobSchedule.State.TERMINATING, JobSchedule.State.COMPLETED, JobSchedule.State.DELETING)
AUTO = "jobSpecification.poolInfo.autoPoolSpecification"
log = logging.getLogger("batchsite.sweep")


# --- the schedule's times ----------------------------------------------------------------


@dataclass(frozen=True)
class Recurrence:
    """A schedule's configuration, parsed: None stands for absent (or infinite)."""

    until: datetime | None
    after: datetime | None
    window: timedelta | None
    interval: timedelta | None

    @classmethod
    def of(cls, schedule: JobSchedule) -> Recurrence:
        cfg = schedule.schedule or {}

        def when(name):
            return parse_datetime_wire(cfg[name]) if cfg.get(name) else None

        def duration(name):
            return parse_duration(cfg[name]) if cfg.get(name) else None

        return cls(
            when("doNotRunUntil"),
            when("doNotRunAfter"),
            duration("startWindow"),
            duration("recurrenceInterval"),
        )

    def effective_window(self) -> timedelta | None:
        if self.interval is None:
            return self.window
        return self.interval if self.window is None else min(self.window, self.interval)

    def due_from(self, first: datetime, t: datetime) -> datetime | None:
        """The run time due at `t` or next, counting from the run time `first`: the latest
        one not after `t` whose window is still open, else the one after it; None when
        none is left (no recurrence and its window passed, or past doNotRunAfter)."""
        window = self.effective_window()
        if self.interval is None:
            due = first if (window is None or t <= first + window) else None
        else:
            steps = max(0, math.floor((t - first) / self.interval))
            due = first + steps * self.interval
            if t > due + window:
                due += self.interval
        if due is not None and self.after is not None and due > self.after:
            return None
        return due


def check_schedule_values(schedule: dict) -> None:
    """startWindow and recurrenceInterval are at least a minute (Batch's minimum,
    BATCHSITE_SCHEDULE_MINIMUM_SECONDS here): 400 InvalidPropertyValue."""
    minimum = timedelta(seconds=settings.BATCHSITE_SCHEDULE_MINIMUM_SECONDS)
    for name in ("startWindow", "recurrenceInterval"):
        value = schedule.get(name)
        if value is not None and value < minimum:
            raise BatchError.invalid_property(
                f"schedule.{name}",
                pool_specs.wire(value),
                f"The minimum is {pool_specs.wire(minimum)}.",
            )


def check_job_specification(spec: dict) -> None:
    """What Add Job refuses in a job it would make (constraints.check_job_values), and an
    auto pool it could not make (auto_pools.auto_pool_spec), named under jobSpecification."""
    try:
        check_job_values(spec)
    except BatchError as e:
        e.values = [(k, f"jobSpecification.{v}" if k == "PropertyName" else v) for k, v in e.values]
        raise
    info = spec.get("poolInfo") or {}
    auto = info.get("autoPoolSpecification")
    if auto is not None:
        if info.get("poolId"):
            raise BatchError.invalid_property(
                "jobSpecification.poolInfo.poolId",
                info["poolId"],
                "Specify either poolId or autoPoolSpecification, not both.",
            )
        auto_pool_spec(auto, lifetimes=("job", "jobschedule"), path=AUTO)


def _stored(value: dict) -> dict:
    return {k: v for k, v in pool_specs.wire(value).items() if v is not None}


# --- add ---------------------------------------------------------------------------------


def add_job_schedule(account: Account, *, spec: dict) -> JobSchedule:
    """Add a job schedule; its first job is made at once when its first run time has come.
    Refuses an id already used by a schedule (409 JobScheduleExists) or by a job (409
    JobWithSameIdExists), and what check_schedule_values and check_job_specification
    refuse (400)."""
    schedule_cfg = spec.get("schedule") or {}
    check_schedule_values(schedule_cfg)
    check_job_specification(spec["jobSpecification"])
    t = now()
    schedule = JobSchedule(
        account=account,
        schedule_id=spec["id"],
        id_key=spec["id"].lower(),
        display_name=spec.get("displayName") or "",
        schedule=_stored(schedule_cfg),
        job_specification=_stored(spec["jobSpecification"]),
        metadata=spec.get("metadata"),
        state=JobSchedule.State.ACTIVE,
        state_transition_time=t,
        creation_time=t,
        last_modified=t,
        etag=new_etag(),
    )
    recurrence = Recurrence.of(schedule)
    schedule.next_run_time = recurrence.due_from(recurrence.until or t, t)
    try:
        with transaction.atomic():
            if Job.objects.filter(account=account, id_key=schedule.id_key).exists():
                raise BatchError.job_with_same_id_exists()
            schedule.save(force_insert=True)
            _run(schedule, t)
    except IntegrityError:
        raise BatchError.job_schedule_exists() from None
    return schedule


# --- update ------------------------------------------------------------------------------


def _lock(schedule: JobSchedule, precondition: Precondition, refusal) -> JobSchedule:
    return lock_checked(
        JobSchedule.objects.filter(pk=schedule.pk),
        BatchError.job_schedule_not_found,
        precondition,
        refusal,
    )


def _ended_refusal(schedule: JobSchedule) -> BatchError | None:
    if schedule.state == JobSchedule.State.COMPLETED:
        return BatchError.job_schedule_completed()
    if schedule.state == JobSchedule.State.TERMINATING:
        return BatchError.job_schedule_being_terminated()
    if schedule.state == JobSchedule.State.DELETING:
        return BatchError.job_schedule_being_deleted()
    return None


def can_update_job_schedule(schedule: JobSchedule) -> BatchError | None:
    """A completed, terminating or deleting schedule cannot change (409 JobScheduleCompleted,
    JobScheduleBeingTerminated, JobScheduleBeingDeleted)."""
    return _ended_refusal(schedule)


def update_job_schedule(
    schedule: JobSchedule, *, spec: dict, replace: bool, precondition: Precondition = None
) -> JobSchedule:
    """Update (replace=True, PUT: schedule, jobSpecification and metadata replaced, the
    metadata left out removed) or patch (what is given replaced) a schedule. The job that
    runs keeps what it was made with; the next run time follows the new schedule. Refuses
    what can_update_job_schedule refuses (409) and what Add refuses (400)."""
    if "schedule" in spec:
        check_schedule_values(spec["schedule"] or {})
    if "jobSpecification" in spec:
        check_job_specification(spec["jobSpecification"])
    with transaction.atomic():
        locked = _lock(schedule, precondition, can_update_job_schedule)
        t = now()
        if "schedule" in spec:
            locked.schedule = _stored(spec["schedule"] or {})
            locked.next_run_time = _next_after_change(locked, t)
        if "jobSpecification" in spec:
            locked.job_specification = _stored(spec["jobSpecification"])
        if "metadata" in spec or replace:
            locked.metadata = spec.get("metadata")
        locked.touch(t)
        locked.save()
        _run(locked, t)
    return locked


def _next_after_change(schedule: JobSchedule, t: datetime) -> datetime | None:
    recurrence = Recurrence.of(schedule)
    if recurrence.until is not None and (schedule.job_count == 0 or recurrence.until > t):
        return recurrence.due_from(recurrence.until, t)
    if schedule.job_count == 0:
        return recurrence.due_from(t, t)
    if recurrence.interval is None:
        return None  # its one job was made
    last = (
        Job.objects.filter(job_schedule=schedule)
        .order_by("-creation_time")
        .values_list("creation_time", flat=True)
        .first()
    )
    return recurrence.due_from((last or t) + recurrence.interval, t)


# --- disable / enable --------------------------------------------------------------------


def can_disable_job_schedule(schedule: JobSchedule) -> BatchError | None:
    """An active (or already disabled) schedule can be disabled; an ended one is refused
    as can_update_job_schedule refuses it."""
    return _ended_refusal(schedule)


def disable_job_schedule(
    schedule: JobSchedule, *, precondition: Precondition = None
) -> JobSchedule:
    """Disable a schedule: no job is made until it is enabled; its running job runs on.
    Disabling a disabled schedule changes nothing. Refuses what can_disable_job_schedule
    refuses (409)."""
    with transaction.atomic():
        locked = _lock(schedule, precondition, can_disable_job_schedule)
        if locked.state == JobSchedule.State.ACTIVE:
            locked.move_to(JobSchedule.State.DISABLED, now())
            locked.save()
    return locked


def can_enable_job_schedule(schedule: JobSchedule) -> BatchError | None:
    """A disabled (or already active) schedule can be enabled; an ended one is refused."""
    return _ended_refusal(schedule)


def enable_job_schedule(schedule: JobSchedule, *, precondition: Precondition = None) -> JobSchedule:
    """Enable a disabled schedule: a run time that came meanwhile makes its job now if its
    window is still open (else the next one is due). Enabling an active schedule changes
    nothing. Refuses what can_enable_job_schedule refuses (409)."""
    with transaction.atomic():
        locked = _lock(schedule, precondition, can_enable_job_schedule)
        if locked.state == JobSchedule.State.DISABLED:
            locked.move_to(JobSchedule.State.ACTIVE, now())
            locked.save()
            _run(locked, now())
    return locked


# --- terminate / delete ------------------------------------------------------------------


def can_terminate_job_schedule(schedule: JobSchedule) -> BatchError | None:
    """A completed, terminating or deleting schedule cannot be terminated (409)."""
    return _ended_refusal(schedule)


def terminate_job_schedule(
    schedule: JobSchedule, *, precondition: Precondition = None
) -> JobSchedule:
    """Terminate a schedule: no more jobs; its job that has not ended is terminated
    (terminateReason TerminateJobSchedule); the schedule is `completed`. Refuses what
    can_terminate_job_schedule refuses (409)."""
    with transaction.atomic():
        locked = _lock(schedule, precondition, can_terminate_job_schedule)
        locked.move_to(JobSchedule.State.TERMINATING, now())
        locked.save()
        for job in Job.objects.filter(job_schedule=locked, state__in=UNFINISHED_JOB_STATES):
            if can_terminate_job(job) is None:
                terminate_job(job, reason="TerminateJobSchedule")
        _complete(locked)
    return locked


def can_delete_job_schedule(schedule: JobSchedule) -> BatchError | None:
    """A schedule already being deleted: 409 JobScheduleBeingDeleted."""
    if schedule.state == JobSchedule.State.DELETING:
        return BatchError.job_schedule_being_deleted()
    return None


def delete_job_schedule(schedule: JobSchedule, *, precondition: Precondition = None) -> None:
    """Delete a schedule with every job it made and their tasks (their files are removed
    by their nodes, whatever the retention): it is `deleting` until its jobs are gone (at
    once when they are small, else the sweep finishes). Refuses a schedule already being
    deleted (409 JobScheduleBeingDeleted)."""
    with transaction.atomic():
        locked = _lock(schedule, precondition, can_delete_job_schedule)
        locked.move_to(JobSchedule.State.DELETING, now())
        locked.next_run_time = None
        locked.save()
        _end_auto_pool(locked)
        jobs = list(Job.objects.filter(job_schedule=locked))
    for job in jobs:
        if can_delete_job(job) is None:
            try:
                delete_job(job)
            except BatchError:  # deleted meanwhile
                continue
    purge_deleting_job_schedules([locked.pk])


def purge_deleting_job_schedules(pks: list[int] | None = None) -> int:
    """Remove `deleting` schedules whose jobs are all gone. Returns how many."""
    schedules = JobSchedule.objects.filter(state=JobSchedule.State.DELETING)
    if pks is not None:
        schedules = schedules.filter(pk__in=pks)
    removed = 0
    for schedule in schedules:
        if not Job.objects.filter(job_schedule=schedule).exists():
            removed += JobSchedule.objects.filter(
                pk=schedule.pk, state=JobSchedule.State.DELETING
            ).delete()[0]
    return removed


# --- the scheduling pass -----------------------------------------------------------------


def run_job_schedules() -> int:
    """Make the jobs that are due and complete the schedules that have nothing left to run
    (the sweep calls this every second). Each schedule is one transaction with its row
    locked, so two sweeps never make the same job. Returns how many jobs it made."""
    t = now()
    due = JobSchedule.objects.filter(state=JobSchedule.State.ACTIVE).filter(
        Q(next_run_time__lte=t) | Q(next_run_time__isnull=True)
    )
    made = 0
    for pk in list(due.values_list("pk", flat=True)):
        try:
            with transaction.atomic():
                locked = (
                    JobSchedule.objects.select_for_update(skip_locked=True)
                    .filter(pk=pk, state=JobSchedule.State.ACTIVE)
                    .first()
                )
                if locked is not None:
                    made += _run(locked, t)
        except BatchError as error:
            # The job cannot be made (its auto pool is refused now, say): that run time's
            # opportunity is lost, as when its window passes, rather than retried every tick.
            log.warning(
                "job schedule %s: its job could not be made (%s); the run is skipped", pk, error
            )
            _skip_run(pk, t)
    return made


def _skip_run(pk: int, t: datetime) -> None:
    with transaction.atomic():
        schedule = (
            JobSchedule.objects.select_for_update()
            .filter(pk=pk, state=JobSchedule.State.ACTIVE)
            .first()
        )
        if schedule is None or schedule.next_run_time is None:
            return
        recurrence = Recurrence.of(schedule)
        schedule.next_run_time = (
            recurrence.due_from(schedule.next_run_time + recurrence.interval, t)
            if recurrence.interval is not None
            else None
        )
        schedule.save(update_fields=["next_run_time"])
        if (
            schedule.next_run_time is None
            and not Job.objects.filter(
                job_schedule=schedule, state__in=UNFINISHED_JOB_STATES
            ).exists()
        ):
            _complete(schedule)


def _run(schedule: JobSchedule, t: datetime) -> int:
    """One step of a locked active schedule at `t`: make its due job if it may, move past
    a lost opportunity, complete it when nothing is left. Returns the jobs made (0 or 1)."""
    if schedule.state != JobSchedule.State.ACTIVE:
        return 0
    recurrence = Recurrence.of(schedule)
    running = Job.objects.filter(job_schedule=schedule, state__in=UNFINISHED_JOB_STATES).exists()
    made = 0
    if schedule.next_run_time is not None and schedule.next_run_time <= t:
        due = recurrence.due_from(schedule.next_run_time, t)
        if due is not None and due <= t and not running:
            _make_job(schedule, t)
            running, made = True, 1
            due = (
                recurrence.due_from(due + recurrence.interval, t)
                if recurrence.interval is not None
                else None
            )
        if due != schedule.next_run_time:
            schedule.next_run_time = due
            schedule.save(
                update_fields=["next_run_time", "job_count", "recent_job_id", "auto_pool_id"]
            )
    if schedule.next_run_time is None and not running:
        _complete(schedule)
    return made


def _make_job(schedule: JobSchedule, t: datetime) -> Job:
    schedule.job_count += 1
    spec = dict(schedule.job_specification)
    spec["id"] = f"{schedule.schedule_id}:job-{schedule.job_count}"
    if "constraints" in spec:
        constraints = dict(spec["constraints"])
        if isinstance(constraints.get("maxWallClockTime"), str):
            constraints["maxWallClockTime"] = parse_duration(constraints["maxWallClockTime"])
        spec["constraints"] = constraints
    auto = (spec.get("poolInfo") or {}).get("autoPoolSpecification")
    if auto is None:
        job = insert_job(schedule.account, spec=spec)
    elif str(auto.get("poolLifetimeOption", "")).lower() == "jobschedule":
        if not Pool.objects.filter(
            account=schedule.account, id_key=schedule.auto_pool_id.lower(), state=Pool.State.ACTIVE
        ).exists():
            pool_spec, pool_id, keep_alive = auto_pool_spec(
                auto, lifetimes=("jobschedule",), path=AUTO
            )
            add_pool(schedule.account, spec=pool_spec, keep_alive=keep_alive)
            schedule.auto_pool_id = pool_id
        job = insert_job(schedule.account, spec=spec, pool_id=schedule.auto_pool_id)
    else:
        job = add_job_with_auto_pool(schedule.account, spec=spec)
    Job.objects.filter(pk=job.pk).update(job_schedule=schedule)
    job.job_schedule = schedule
    schedule.recent_job_id = job.job_id
    return job


def _complete(schedule: JobSchedule) -> None:
    schedule.move_to(JobSchedule.State.COMPLETED, now())
    schedule.end_time = schedule.state_transition_time
    schedule.next_run_time = None
    schedule.save()
    _end_auto_pool(schedule)


def _end_auto_pool(schedule: JobSchedule) -> None:
    """The schedule's jobschedule-lifetime auto pool goes with it unless keepAlive."""
    if not schedule.auto_pool_id:
        return
    pool = Pool.objects.filter(
        account=schedule.account,
        id_key=schedule.auto_pool_id.lower(),
        state=Pool.State.ACTIVE,
        keep_alive=False,
    ).first()
    if pool is not None:
        try:
            delete_pool(pool)
        except BatchError:  # deleted meanwhile
            pass


def format_next_run(schedule: JobSchedule) -> str | None:
    return format_datetime_wire(schedule.next_run_time)
