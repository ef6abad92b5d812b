"""Bulk actions: terminate, reactivate or delete a selection of tasks, or every task that
matches a filter, in the background with progress and a per-task outcome.

How it runs (one design, two ways in):
- `start_bulk_operation` records a BulkOperation (`pending`) and its audit record, and once
  the transaction commits starts a worker thread in the web process that runs it.
- The sweep (`manage.py sweep`, started by `serve`) runs `run_pending_bulk_operations`:
  it picks up any operation still `pending` (its thread never started) or `running` with
  no progress for STALE_AFTER (its process died), and resumes it from its cursor.
Either way each task goes through the same rules-layer operation as a single action, so a
refusal in bulk is the refusal a button would have shown, counted per error code. A batch
of tasks, their counts and outcomes, the cursor and the audit record commit together, so
an interrupted run resumes without acting on, counting or losing any task twice.

The scope is fixed when it is confirmed: a selection is its task ids; a filter is the
filter plus the highest task pk at that moment, so tasks added later are never touched.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta

from django.db import Error as DatabaseError
from django.db import connection, transaction

from tasks.errors import BatchError
from tasks.models import Attempt, AuditRecord, BulkOperation, Job, Task
from tasks.queries.task_list import TaskFilter, storable

from .actions import TASK_ACTIONS
from .audit import record_action
from .common import now

log = logging.getLogger(__name__)

# Tasks acted on per transaction: the counts and outcomes are written once per batch, and
# a batch holds the job's row (on SQLite, the write lock) while it runs, so it stays small.
# Measured on a loaded 2-core machine (about 20 ms a task): 25 tasks hold it about 0.5 s,
# and a run of 500 terminates or deletes took 0.85-1.06 times as long as with one commit
# per task (median of three, SQLite and PostgreSQL).
BATCH = 25
OUTCOME_CAP = 10_000  # per-task outcomes kept on the operation; counts are always complete
MAX_SELECTION = 1_000
STALE_AFTER = timedelta(minutes=2)


def scope_queryset(job: Job, scope: dict):
    """The tasks a bulk scope names (before the `pk > cursor` of a run). Raises the
    refusal of `scope_refusal` for a scope that cannot be read."""
    error = scope_refusal(scope)
    if error:
        raise error
    qs = Task.objects.filter(job=job)
    if "tasks" in scope:
        return qs.filter(id_key__in=[t.lower() for t in scope["tasks"]])
    qs = qs.filter(TaskFilter.from_params(scope.get("filter") or {}).where(job))
    return qs.filter(pk__lte=scope.get("max_pk", 0))


def scope_refusal(scope: dict) -> BatchError | None:
    """A selection of more than MAX_SELECTION tasks or with an id no database can compare
    (a NUL), or a filter with an error (which would act on more tasks than the one
    confirmed), is refused (400 InvalidPropertyValue)."""
    if "tasks" in scope:
        if len(scope["tasks"]) > MAX_SELECTION:
            return BatchError.invalid_property(
                "tasks",
                len(scope["tasks"]),
                f"Select at most {MAX_SELECTION} tasks, or act on the filter.",
            )
        if not all(storable(t) for t in scope["tasks"]):
            return BatchError.invalid_property("tasks", None, "A task id has no NUL character.")
        return None
    params = scope.get("filter") or {}
    f = TaskFilter.from_params(params)
    if f.errors:
        key = next(iter(f.errors))
        return BatchError.invalid_property(f"filter.{key}", params.get(key, ""), f.error_text())
    return None


def selection_scope(task_ids: list[str]) -> dict:
    return {"tasks": sorted(set(task_ids))}


def filter_scope(job: Job, params: dict) -> dict:
    """Fix a filter scope now: the filter and the newest task it may touch."""
    last = Task.objects.filter(job=job).order_by("-pk").values_list("pk", flat=True).first() or 0
    return {"filter": params, "max_pk": last}


def can_start_bulk_operation(*, action: str, scope: dict) -> BatchError | None:
    """An unknown action, or a scope `scope_refusal` refuses (400 InvalidPropertyValue)."""
    if action not in TASK_ACTIONS:
        return BatchError.invalid_property(
            "action", action, "Choose terminate, reactivate or delete."
        )
    return scope_refusal(scope)


def start_bulk_operation(
    job: Job, *, action: str, scope: dict, user, actor: str, total: int
) -> BulkOperation:
    """Record a bulk action and start it in the background after commit. `total` is the
    exact count the user confirmed. Raises the refusal of `can_start_bulk_operation`."""
    error = can_start_bulk_operation(action=action, scope=scope)
    if error:
        raise error
    with transaction.atomic():
        audit = record_action(
            job.account,
            user=user,
            actor=actor,
            action=f"bulk-{action}",
            scope={"job": job.job_id, **scope},
            outcome={"state": "pending", "total": total},
        )
        op = BulkOperation.objects.create(
            account=job.account,
            job=job,
            user=audit.user,
            action=action,
            scope={**scope, "cursor": 0, "confirmed": total},
            total=total,
            audit=audit,
        )
        transaction.on_commit(lambda: start_worker(op.pk))
    return op


STOPPABLE = (BulkOperation.State.PENDING, BulkOperation.State.RUNNING)


def can_stop_bulk_operation(op: BulkOperation) -> BatchError | None:
    """Only a bulk action that has not ended can be stopped."""
    if op.state in STOPPABLE:
        return None
    return BatchError(
        "BulkOperationEnded",
        f"The bulk action has already ended ({op.state}): there is nothing to stop.",
        409,
    )


def stop_bulk_operation(op: BulkOperation) -> BulkOperation:
    """Stop a pending or running bulk action: the batch in progress commits whole (each batch
    is one transaction, and this waits for its lock), then no further task is acted on; what
    was done stays done, counted and audited. Refuses one that has ended (409
    BulkOperationEnded)."""
    with transaction.atomic():
        locked = BulkOperation.objects.select_for_update().get(pk=op.pk)
        error = can_stop_bulk_operation(locked)
        if error:
            raise error
        locked.state = BulkOperation.State.STOPPED
        locked.finished = now()
        locked.save(update_fields=["state", "finished"])
        _audit_progress(locked, "stopped")
    return locked


def start_worker(op_pk: int) -> threading.Thread:
    thread = threading.Thread(target=_worker, args=(op_pk,), name=f"bulk-{op_pk}", daemon=True)
    thread.start()
    return thread


def _worker(op_pk: int) -> None:
    try:
        run_bulk_operation_resumed(op_pk)
    except Exception:  # a crashed worker leaves the op to the sweep; never kills the server
        log.exception("bulk operation %s failed", op_pk)
    finally:
        connection.close()


def run_bulk_operation_resumed(
    op_pk: int, *, stale_before=None, first_retry: float = 0.5, max_retry: float = 30.0
) -> BulkOperation | None:
    """run_bulk_operation, resumed after a database error (a restart, a failover) instead
    of left for STALE_AFTER: on a new connection, after 0.5 s, 1 s, 2 s, ... (at most
    max_retry), from the operation's cursor, until it ends. A runner that took the
    operation after the error (its beat is newer) keeps it: then this returns None, as
    when another runner has it from the start."""
    delay = first_retry
    while True:
        try:
            return run_bulk_operation(op_pk, stale_before=stale_before)
        except DatabaseError as e:
            failed_at = now()
            log.warning(
                "bulk operation %s: database error, resuming in %.1f s: %s", op_pk, delay, e
            )
            if not connection.in_atomic_block:  # never a caller's transaction
                with contextlib.suppress(Exception):
                    connection.close()
            time.sleep(delay)
            delay = min(max_retry, delay * 2)
            # Its beat is from before the error: take it up again unless another runner has since.
            stale_before = failed_at


def _claim(op_pk: int, *, stale_before=None) -> str | None:
    """Take a pending operation (or a stale running one) for a new runner: its token, or
    None. A runner acts only while the operation carries its token, so one that was taken
    for stale but is still alive stops at its next batch instead of acting twice."""
    with transaction.atomic():
        op = BulkOperation.objects.select_for_update().filter(pk=op_pk).first()
        if op is None or op.state not in STOPPABLE:
            return None
        if op.state == BulkOperation.State.RUNNING:
            beat = op.scope.get("beat")
            if stale_before is None or (beat and beat > stale_before.isoformat()):
                return None
        token = uuid.uuid4().hex
        op.state = BulkOperation.State.RUNNING
        op.scope = {**op.scope, "beat": now().isoformat(), "runner": token}
        op.save(update_fields=["state", "scope"])
    return token


def run_bulk_operation(op_pk: int, *, stale_before=None) -> BulkOperation | None:
    """Run (or resume) one bulk operation to the end; None if another runner has it.

    Each batch of BATCH tasks is one transaction: the tasks' own changes (each through
    its rules-layer operation, in a savepoint, so a refusal undoes only its task), the
    counts, the per-task outcomes, the cursor and the audit record's progress commit
    together or not at all. So however often a run is interrupted (a SIGKILL, a lost
    database connection), the run that resumes it starts at the first task not yet acted
    on, and every task is counted and audited exactly once."""
    token = _claim(op_pk, stale_before=stale_before)
    if token is None:
        return None
    op = BulkOperation.objects.select_related("job__account").get(pk=op_pk)
    try:
        base = scope_queryset(op.job, op.scope)
    except BatchError as error:
        return _fail(op_pk, token, error)
    while True:
        op, more = _run_batch(op_pk, token, base)
        if op is None or not more:
            return op


def _lock_own(op_pk: int, token: str) -> BulkOperation | None:
    """The operation, locked, while this runner still holds it; else None."""
    op = BulkOperation.objects.select_for_update().filter(pk=op_pk).first()
    if op is None or op.state != BulkOperation.State.RUNNING or op.scope.get("runner") != token:
        return None
    return op


def _run_batch(op_pk: int, token: str, base) -> tuple[BulkOperation | None, bool]:
    """Act on the next batch in one transaction: (the operation, whether tasks remain).
    Finishes the operation, in the same way, once no task is left."""
    with transaction.atomic():
        op = _lock_own(op_pk, token)
        if op is None:
            return None, False
        job = Job.objects.select_related("account").get(pk=op.job_id)
        pks = list(
            base.filter(pk__gt=op.scope.get("cursor", 0))
            .order_by("pk")
            .values_list("pk", flat=True)[:BATCH]
        )
        if not pks:
            _finish(op)
            return op, False
        tasks = _lock_batch(base, pks)
        operation, _ = TASK_ACTIONS[op.action]
        refused = Counter(op.scope.get("refused", {}))
        for pk in pks:
            task = tasks.get(pk)
            if task is None:  # gone, or out of the scope, since the batch was read: not acted on
                continue
            task.job = job
            try:
                operation(task)
                outcome = "ok"
                op.succeeded += 1
            except BatchError as error:
                outcome = error.code
                op.refused += 1
                refused[error.code] += 1
            op.done += 1
            if len(op.outcomes) < OUTCOME_CAP:
                op.outcomes[task.task_id] = outcome
        op.scope = {
            **op.scope,
            "cursor": pks[-1],
            "beat": now().isoformat(),
            "refused": dict(refused),
        }
        op.total = max(op.total, op.done)
        op.save(update_fields=["scope", "done", "succeeded", "refused", "outcomes", "total"])
        _audit_progress(op, "running")
    return op, True


def _lock_batch(base, pks: list[int]) -> dict[int, Task]:
    """Lock a batch's tasks that are still in the scope, and their running attempts, before
    any operation locks the job row: on PostgreSQL the batch then waits for an agent only
    while it holds no job lock that agent may need (agents skip locked tasks and attempts,
    then update the job's counters), the lock order that cannot deadlock."""
    tasks = {t.pk: t for t in base.select_for_update(of=("self",)).filter(pk__in=pks)}
    list(
        Attempt.objects.select_for_update()
        .filter(task_id__in=pks, outcome=Attempt.Outcome.RUNNING)
        .values_list("pk", flat=True)
    )
    return tasks


def _finish(op: BulkOperation) -> None:
    op.state = BulkOperation.State.DONE
    op.finished = now()
    op.total = op.done
    op.save(update_fields=["state", "finished", "total"])
    _audit_progress(op, "done")


def _fail(op_pk: int, token: str, error: BatchError) -> BulkOperation | None:
    """End an operation whose scope cannot be read (it acts on no task) with the reason."""
    with transaction.atomic():
        op = _lock_own(op_pk, token)
        if op is None:
            return None
        reason = dict(error.values).get("Reason") or error.message
        op.state = BulkOperation.State.FAILED
        op.finished = now()
        op.scope = {**op.scope, "error": f"{error.code}: {reason}"}
        op.save(update_fields=["state", "finished", "scope"])
        if op.audit_id:
            AuditRecord.objects.filter(pk=op.audit_id).update(
                outcome={
                    "state": "failed",
                    "confirmed": op.scope.get("confirmed"),
                    "total": op.done,
                    "refused": error.code,
                    "message": reason,
                }
            )
    return op


def _audit_progress(op: BulkOperation, state: str) -> None:
    """The audit record says how far the run got, in the transaction that got it there."""
    if op.audit_id:
        AuditRecord.objects.filter(pk=op.audit_id).update(
            outcome={
                "state": state,
                "confirmed": op.scope.get("confirmed"),
                "total": op.done,
                "succeeded": op.succeeded,
                "refused": op.scope.get("refused", {}),
            }
        )


def run_pending_bulk_operations() -> int:
    """The sweep's part: run every pending operation and resume stale running ones."""
    stale_before = now() - STALE_AFTER
    ran = 0
    pks = BulkOperation.objects.filter(
        state__in=[BulkOperation.State.PENDING, BulkOperation.State.RUNNING]
    ).values_list("pk", flat=True)
    for pk in list(pks):
        if run_bulk_operation_resumed(pk, stale_before=stale_before) is not None:
            ran += 1
    return ran
