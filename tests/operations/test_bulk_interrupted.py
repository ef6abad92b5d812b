"""A bulk action that is interrupted, however often and wherever, acts on, counts and audits
every task of its scope exactly once when it is resumed: the tasks' own changes, the
counts, the per-task outcome, the cursor and the audit record move in one transaction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings

from tasks.models import AuditRecord, BulkOperation, Task
from tasks.operations import bulk
from tasks.operations.bulk import (
    run_bulk_operation,
    run_pending_bulk_operations,
    start_bulk_operation,
)
from tasks.operations.common import now
from tasks.operations.tasks import add_task_collection
from tests.agents import ROOT, database_url, wait_for
from tests.factories import JobFactory, TaskFactory, UserFactory

RUNNER = (
    "from datetime import timedelta; from tasks.operations.bulk import run_bulk_operation; "
    "from tasks.operations.common import now; "
    "run_bulk_operation({pk}, stale_before=now() + timedelta(days=1))"
)


def add_tasks(job, count: int) -> None:
    for start in range(0, count, 100):
        ids = [f"t{i:05d}" for i in range(start, min(start + 100, count))]
        add_task_collection(
            job, specs=[{"id": i, "commandLine": "/bin/true"} for i in ids], ids=ids
        )


def start(job, action: str, scope: dict, total: int, monkeypatch) -> BulkOperation:
    """Confirm a bulk action without starting its worker thread here (a subprocess runs it)."""
    monkeypatch.setattr(bulk, "start_worker", lambda pk: None)
    return start_bulk_operation(
        job, action=action, scope=scope, user=UserFactory(), actor="tester", total=total
    )


def completed(job) -> int:
    return Task.objects.filter(job=job, state=Task.State.COMPLETED).count()


def run_in_subprocess_and_kill(op: BulkOperation, progress, *, after: int) -> None:
    """Run the operation in another process and SIGKILL it once `progress()` (tasks of the
    job acted on, committed one by one before the fix) has grown by `after`: between two
    tasks of a batch, where a crash lands."""
    before = progress()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "BATCHSITE_DATA_DIR": str(settings.DATA_DIR),
    }
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", RUNNER.format(pk=op.pk)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(
            lambda: proc.poll() is not None or progress() >= before + after,
            timeout=120,
            interval=0.01,
            message="the bulk run to make progress",
        )
        assert proc.poll() is None, proc.stderr.read().decode()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


@pytest.mark.slow
def test_a_terminate_killed_mid_run_again_and_again_counts_every_task_once(
    transactional_db, monkeypatch
):
    job = JobFactory()
    add_tasks(job, 1500)
    op = start(
        job, "terminate", {"filter": {"state": "active"}, "max_pk": 10**12}, 1500, monkeypatch
    )
    for after in (137, 211, 389):
        run_in_subprocess_and_kill(op, lambda: completed(job), after=after)
    monkeypatch.setattr(bulk, "STALE_AFTER", timedelta(0))
    assert run_pending_bulk_operations() == 1

    op.refresh_from_db()
    assert completed(job) == 1500
    assert (op.state, op.done, op.succeeded, op.refused, op.total) == ("done", 1500, 1500, 0, 1500)
    assert len(op.outcomes) == 1500 and set(op.outcomes.values()) == {"ok"}
    audit = AuditRecord.objects.get(pk=op.audit_id)
    assert audit.outcome == {
        "state": "done",
        "confirmed": 1500,
        "total": 1500,
        "succeeded": 1500,
        "refused": {},
    }


@pytest.mark.slow
def test_a_delete_killed_mid_run_counts_the_deleted_tasks(transactional_db, monkeypatch):
    job = JobFactory()
    add_tasks(job, 800)
    op = start(job, "delete", {"filter": {}, "max_pk": 10**12}, 800, monkeypatch)
    run_in_subprocess_and_kill(op, lambda: 800 - Task.objects.filter(job=job).count(), after=277)
    run_bulk_operation(op.pk, stale_before=now() + timedelta(days=1))

    op.refresh_from_db()
    assert not Task.objects.filter(job=job).exists()
    assert (op.done, op.succeeded, op.refused) == (800, 800, 0)
    assert AuditRecord.objects.get(pk=op.audit_id).outcome["succeeded"] == 800


class Crash(BaseException):
    """What a SIGKILL is to the code it interrupts: nothing after it runs (not even an
    `except Exception`)."""


@pytest.mark.django_db(transaction=True)
def test_a_crash_between_two_tasks_of_a_batch_leaves_nothing_half_counted(monkeypatch):
    job = JobFactory()
    for i in range(7):
        TaskFactory(job=job, task_id=f"f{i}", failed=True)
    op = start(
        job, "reactivate", {"filter": {"result": "failure"}, "max_pk": 10**12}, 7, monkeypatch
    )
    real, calls = bulk.TASK_ACTIONS["reactivate"], []

    def crashing(task, **kw):
        calls.append(task.task_id)
        if len(calls) == 5:
            raise Crash
        return real[0](task, **kw)

    monkeypatch.setattr(bulk, "BATCH", 3)
    monkeypatch.setitem(bulk.TASK_ACTIONS, "reactivate", (crashing, real[1]))
    with pytest.raises(Crash):
        run_bulk_operation(op.pk)
    op.refresh_from_db()
    # The first batch (3 tasks) is acted on and counted together; the crashed one is neither.
    assert (op.done, op.succeeded) == (3, 3)
    assert Task.objects.filter(job=job, state=Task.State.ACTIVE).count() == 3
    assert AuditRecord.objects.get(pk=op.audit_id).outcome["succeeded"] == 3

    monkeypatch.setitem(bulk.TASK_ACTIONS, "reactivate", real)
    run_bulk_operation(op.pk, stale_before=now() + timedelta(days=1))
    op.refresh_from_db()
    assert (op.state, op.done, op.succeeded, op.refused) == ("done", 7, 7, 0)
    assert sorted(op.outcomes) == [f"f{i}" for i in range(7)]
    assert AuditRecord.objects.get(pk=op.audit_id).outcome["succeeded"] == 7


@pytest.mark.django_db(transaction=True)
def test_a_runner_whose_run_was_taken_over_stops_before_acting_again(monkeypatch):
    """A runner thought dead (no beat for STALE_AFTER) but only slow: the one that resumed
    the run holds it now, and the slow one's next batch acts on nothing."""
    job = JobFactory()
    for i in range(4):
        TaskFactory(job=job, task_id=f"f{i}", failed=True)
    op = start(
        job, "reactivate", {"filter": {"result": "failure"}, "max_pk": 10**12}, 4, monkeypatch
    )
    slow = bulk._claim(op.pk)
    resumed = bulk._claim(op.pk, stale_before=now() + timedelta(days=1))
    base = bulk.scope_queryset(job, BulkOperation.objects.get(pk=op.pk).scope)
    assert bulk._run_batch(op.pk, slow, base) == (None, False)
    assert Task.objects.filter(job=job, state=Task.State.ACTIVE).count() == 0
    monkeypatch.setattr(bulk, "BATCH", 3)
    ran, more = bulk._run_batch(op.pk, resumed, base)
    assert more and (ran.done, ran.succeeded) == (3, 3)
