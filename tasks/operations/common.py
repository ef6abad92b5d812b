"""Helpers shared by the operations: the clock, locked checks, job-state refusals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

from tasks.errors import BatchError
from tasks.models import Job

# Called with the locked resource inside the operation's transaction, so an If-Match
# check and the write it guards are one atomic step (tasks.api.conditional builds them).
Precondition = Callable[[object], None] | None


def now() -> datetime:
    return timezone.now()


def lock_checked(queryset, missing: Callable[[], BatchError], precondition: Precondition, refusal):
    """Lock the one row of `queryset` (the 404 `missing()` makes when it is gone), then
    check the caller's condition (If-Match & co.) and the operation's rule on the locked
    row, so both judge what the write will change."""
    locked = queryset.select_for_update().first()
    if locked is None:
        raise missing()
    if precondition:
        precondition(locked)
    error = refusal(locked)
    if error:
        raise error
    return locked


def job_state_refusal(job: Job) -> BatchError | None:
    """Batch refuses new or changed tasks in a job that is completed, terminating or
    being deleted, with the job-state code (the codes Reactivate documents)."""
    if job.state == Job.State.COMPLETED:
        return BatchError.job_completed()
    if job.state == Job.State.TERMINATING:
        return BatchError.job_being_terminated()
    if job.state == Job.State.DELETING:
        return BatchError.job_being_deleted()
    return None
