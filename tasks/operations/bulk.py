"""Bulk actions: terminate, reactivate or delete a selection of tasks, or every task that
matches a filter, in the background with progress and a per-task outcome.

How it runs (one design, two ways in):
- `start_bulk_operation` records a BulkOperation (`pending`) and its audit record, and once
  the transaction commits starts a worker thread in the web process that runs it.
- The sweep (`manage.py sweep`, started by `serve`) runs `run_pending_bulk_operations`:
  it picks up any operation still `pending` (its thread never started) or `running` with
  no progress for STALE_AFTER (its process died), and resumes it from its cursor.
Either way each task goes through the same rules-layer operation as a single action, so a
refusal in bulk is the refusal a button would have shown, counted per error code.

The scope is fixed when it is confirmed: a selection is its task ids; a filter is the
filter plus the highest task pk at that moment, so tasks added later are never touched.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from datetime import timedelta

from django.db import Error as DatabaseError
from django.db import connection, transaction

from tasks.errors import BatchError
from tasks.models import AuditRecord, BulkOperation, Job, Task

from .actions import TASK_ACTIONS
from .audit import record_action
from .common import now

log = logging.getLogger(__name__)

CHUNK = 200
OUTCOME_CAP = 10_000  # per-task outcomes kept on the operation; counts are always complete
MAX_SELECTION = 1_000
STALE_AFTER = timedelta(minutes=2)


def scope_queryset(job: Job, scope: dict):
    """The tasks a bulk scope names (before the `pk > cursor` of a run)."""
    from tasks.listing import TaskFilter

    qs = Task.objects.filter(job=job)
    if "tasks" in scope:
        return qs.filter(id_key__in=[t.lower() for t in scope["tasks"]])
    qs = qs.filter(TaskFilter.from_params(scope.get("filter") or {}).where())
    return qs.filter(pk__lte=scope.get("max_pk", 0))


def selection_scope(task_ids: list[str]) -> dict:
    return {"tasks": sorted(set(task_ids))[:MAX_SELECTION]}


def filter_scope(job: Job, params: dict) -> dict:
    """Fix a filter scope now: the filter and the newest task it may touch."""
    last = Task.objects.filter(job=job).order_by("-pk").values_list("pk", flat=True).first() or 0
    return {"filter": params, "max_pk": last}


def start_bulk_operation(job: Job, *, action: str, scope: dict, user, actor: str, total: int) -> BulkOperation:
    """Record a bulk action and start it in the background after commit. `total` is the
    exact count the user confirmed. Raises BatchError for an unknown action."""
    if action not in TASK_ACTIONS:
        raise BatchError.invalid_property("action", action, "Unknown bulk action.")
    with transaction.atomic():
        audit = record_action(job.account, user=user, actor=actor, action=f"bulk-{action}",
                              scope={"job": job.job_id, **scope}, outcome={"state": "pending", "total": total})
        op = BulkOperation.objects.create(account=job.account, job=job, user=audit.user, action=action,
                                          scope={**scope, "cursor": 0, "confirmed": total}, total=total,
                                          audit=audit)
        transaction.on_commit(lambda: start_worker(op.pk))
    return op


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


def run_bulk_operation_resumed(op_pk: int, *, stale_before=None, first_retry: float = 0.5,
                               max_retry: float = 30.0) -> BulkOperation | None:
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
            log.warning("bulk operation %s: database error, resuming in %.1f s: %s", op_pk, delay, e)
            if not connection.in_atomic_block:  # never a caller's transaction
                with contextlib.suppress(Exception):
                    connection.close()
            time.sleep(delay)
            delay = min(max_retry, delay * 2)
            # Its beat is from before the error: take it up again unless another runner has since.
            stale_before = failed_at


def _claim(op_pk: int, *, stale_before=None) -> BulkOperation | None:
    """Take a pending operation (or a stale running one) for this runner, or None."""
    with transaction.atomic():
        op = BulkOperation.objects.select_for_update().filter(pk=op_pk).first()
        if op is None or op.state in (BulkOperation.State.DONE, BulkOperation.State.FAILED):
            return None
        if op.state == BulkOperation.State.RUNNING:
            beat = op.scope.get("beat")
            if stale_before is None or (beat and beat > stale_before.isoformat()):
                return None
        op.state = BulkOperation.State.RUNNING
        op.scope = {**op.scope, "beat": now().isoformat()}
        op.save(update_fields=["state", "scope"])
    return op


def run_bulk_operation(op_pk: int, *, stale_before=None) -> BulkOperation | None:
    """Run (or resume) one bulk operation to the end; None if another runner has it."""
    op = _claim(op_pk, stale_before=stale_before)
    if op is None:
        return None
    job = Job.objects.select_related("account").get(pk=op.job_id)
    operation, _ = TASK_ACTIONS[op.action]
    base = scope_queryset(job, op.scope)
    refused = Counter(op.scope.get("refused", {}))
    while True:
        chunk = list(base.filter(pk__gt=op.scope.get("cursor", 0)).order_by("pk")[:CHUNK])
        if not chunk:
            break
        for task in chunk:
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
        op.scope = {**op.scope, "cursor": chunk[-1].pk, "beat": now().isoformat(), "refused": dict(refused)}
        op.total = max(op.total, op.done)
        op.save(update_fields=["scope", "done", "succeeded", "refused", "outcomes", "total"])
    op.state = BulkOperation.State.DONE
    op.finished = now()
    op.total = op.done
    op.save(update_fields=["state", "finished", "total"])
    if op.audit_id:
        AuditRecord.objects.filter(pk=op.audit_id).update(outcome={
            "state": "done", "confirmed": op.scope.get("confirmed"), "total": op.done,
            "succeeded": op.succeeded, "refused": dict(refused),
        })
    return op


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
